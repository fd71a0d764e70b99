"""Runs controllers for whole episodes on real SUMO, one process per episode at a time.

libsumo holds one simulation per process, so parallel episodes run in a process pool; every
(controller, seed) pair of a comparison uses the same SUMO seed, so the comparison is paired.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from marlo_rllib import interrupts

# RESCO's decision settings (Ault & Sharon, 2021): 10 s decisions and 3 s yellows; 5 s and 2 s on arterial4x4.
RESCO_TIMING = {"arterial4x4": {"delta_time": 5, "yellow_time": 2}}
RESCO_DEFAULT_TIMING = {"delta_time": 10, "yellow_time": 3}


def resco_timing(scenario_name: str) -> dict[str, int]:
    return RESCO_TIMING.get(scenario_name, RESCO_DEFAULT_TIMING)


@dataclass(frozen=True)
class EpisodeTask:
    scenario: str
    controller: str
    seed: int
    env_options: dict[str, Any] = field(default_factory=dict)
    epsilon: float = 0.0  # chance that a junction's action is replaced by a random real green
    record_to: str | None = None  # a Parquet file for the episode's transitions (marlo collect)
    gamma: float = 0.99  # discount of the recorded returns-to-go


@dataclass
class EpisodeResult:
    controller: str
    seed: int
    metrics: dict[str, float]
    agents: list[str]
    queue_trace: np.ndarray  # (decisions, agents): halting vehicles on each junction's incoming lanes
    switch_allowed: np.ndarray  # (agents,): decisions where the green had run min_green
    switched: np.ndarray  # (agents,): those of them that chose another green
    rows: int = 0  # transitions recorded
    reward_sum: float = 0.0  # their rewards, summed


def run_episode(task: EpisodeTask) -> EpisodeResult:
    from marlo_rllib.controllers import make_controller
    from marlo_rllib.env import TrafficSignalEnv
    from marlo_rllib.offline.dataset import TransitionRecorder, epsilon_mix

    controller = make_controller(task.controller)
    # A trained policy's own settings (observation, decision timing) win over the comparison's.
    env = TrafficSignalEnv(task.scenario, seed=task.seed, **{**task.env_options, **controller.env_options})
    rng = np.random.default_rng([task.seed, 1])  # not the stream RandomGreens draws from
    recorder = (
        TransitionRecorder(env, f"{task.controller}@{task.seed}", task.controller, task.gamma)
        if task.record_to
        else None
    )
    try:
        observations, infos = env.reset(seed=task.seed)
        controller.reset(env, seed=task.seed)
        trace = []
        agents = list(env.possible_agents)
        allowed, switched = np.zeros(len(agents), int), np.zeros(len(agents), int)
        while env.agents:
            interrupts.check()
            actions = controller.act(observations, infos)
            if task.epsilon:
                actions = epsilon_mix(actions, env, rng, task.epsilon)
            for i, agent in enumerate(agents):
                signal = env.signals[agent]
                if agent in actions and signal.green_time >= env.timing.min_green:
                    allowed[i] += 1
                    switched[i] += int(actions[agent]) != signal.green
            after, rewards, terminations, truncations, infos = env.step(actions)
            if recorder:
                recorder.add(observations, actions, rewards, after, terminations, truncations)
            observations = after
            trace.append([float(env.traffic[a].in_halting.sum()) for a in agents])
        metrics = next(iter(infos.values()))["metrics"]
        rows, reward_sum = recorder.write(Path(task.record_to)) if recorder and task.record_to else (0, 0.0)
        return EpisodeResult(
            task.controller, task.seed, metrics, agents, np.array(trace), allowed, switched, rows, reward_sum
        )
    finally:
        env.close()


def run_episodes(
    tasks: list[EpisodeTask], workers: int | None = None, progress: bool | None = None
) -> list[EpisodeResult]:
    """Results in the order of `tasks`. workers=1 runs here, in this process. progress: a bar on
    stderr (None: when stderr is a terminal)."""
    workers = min(workers or os.cpu_count() or 1, len(tasks))
    progress = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(tasks), desc="episodes", unit="ep", disable=not progress, leave=False)
    results: list[EpisodeResult | None] = [None] * len(tasks)
    try:
        if workers <= 1:
            for i, task in enumerate(tasks):
                results[i] = run_episode(task)
                bar.update()
        else:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(run_episode, task): i for i, task in enumerate(tasks)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
    finally:
        bar.close()
    return [r for r in results if r is not None]
