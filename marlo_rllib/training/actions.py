"""After training: does the best checkpoint control better greedy or sampling its own distribution?

A policy-gradient policy that has not become confident can be near-uniform between keeping and
switching at a junction; its argmax then switches at every allowed decision, a fixed short cycle
(ingolstadt21's suite run: 449.6 s of delay greedy, 77.2 s sampled on its choice seeds, docs/RESULTS.md).
Where the policy is confident, greedy is better (the demo on grid4x4: 33.8 s against 48.5). With evaluation.actions auto,
the best checkpoint runs both ways on SUMO seeds that neither training nor its evaluations used,
and the lower mean delay wins; the choice goes into the checkpoint (ACTIONS_FILE), where
load_controller reads it, and into state.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from marlo_rllib.config import ExperimentConfig

EPISODES = 2  # per way of acting; the two ways differ by far more than seeds where it matters
MODES = ("greedy", "sample")


def choice_env(env_config: dict[str, Any]) -> tuple[str, list[int], dict[str, Any]]:
    """(scenario, seeds, TrafficSignalEnv options) of the choice's episodes: the evaluation's env
    on seeds between training's and the evaluations' (SEED_STRIDE // 4 above training's base)."""
    from marlo_rllib.env.rllib import SEED_STRIDE
    from marlo_rllib.training.rllib_config import evaluation_env_config

    options = evaluation_env_config(env_config)
    scenario = options.pop("scenario")
    options.pop("evaluation_traffic_scenario", None)
    options.pop("seed_base")
    base = env_config["seed_base"] + SEED_STRIDE // 4
    return scenario, [base + i for i in range(EPISODES)], options


def describe_delays(choice: dict[str, Any]) -> str:
    """'greedy 33.83 s, sample 48.47 s' of a choice."""
    return ", ".join(f"{mode} {delay:.2f} s" for mode, delay in choice["delay"].items())


def choose_actions(run_dir: Path, config: ExperimentConfig, state: dict[str, Any]) -> dict[str, Any] | None:
    """Runs the best checkpoint greedy and sampled; writes and returns the choice (None: no choice
    to make: evaluation.actions is set, the algorithm is a Q-learner, or there is no best yet)."""
    from marlo_rllib.algorithms import get_algorithm
    from marlo_rllib.controllers.policy import ACTIONS_FILE
    from marlo_rllib.evaluation import EpisodeTask, run_episodes

    best = state.get("best")
    if config.evaluation.actions != "auto" or get_algorithm(config.algorithm).q_learner or not best:
        return None
    checkpoint = run_dir / best["checkpoint"]
    scenario, seeds, options = choice_env(config.env_config())
    tasks = [EpisodeTask(scenario, f"ckpt-{mode}:{checkpoint}", seed, options) for mode in MODES for seed in seeds]
    results = run_episodes(tasks, progress=False)
    delay = {
        mode: sum(r.metrics["delay"] for r in results if r.controller.startswith(f"ckpt-{mode}:")) / len(seeds)
        for mode in MODES
    }
    choice = {"actions": min(MODES, key=lambda mode: delay[mode]), "delay": delay, "seeds": seeds}
    (checkpoint / ACTIONS_FILE).write_text(json.dumps(choice, indent=2) + "\n")
    return {**choice, "checkpoint": best["checkpoint"]}
