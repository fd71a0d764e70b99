"""Training throughput against the bare env and the plain pipeline, side by side in one run.

    python benchmarks/train_throughput.py [--maps grid4x4,cologne8,grid6] [--steps 4096] [--repeats 3] [--bare-episodes 2]

For each map, one after the other (never two heavy jobs at once):

  bare env    the default `marlo train` env with random (masked) greens, whole episodes, 2 processes
              at once (the 2 env runners)
  sampling    the default `marlo train` config (PPO, shared policy, 2 env runners): the env runners'
              `sample()` (the env plus RLlib's episode bookkeeping, connectors and forward pass),
              with both runners and then with one (the scale-out), and the share of it spent in the env
  whole loop  whole training iterations (sampling + learning + evaluation), with RLlib's timers of
              each part and the peak memory (RSS of the driver and every Ray process it started)
  plain       sumo-rl + stock RLlib PPO (benchmarks/plain_pipeline.py): its whole training loop,
              as its users run it (4 env runners on the same 2 cores)

Writes the section "throughput" of docs/BENCHMARKS.md and docs/results/throughput.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from sections import write_section

REPO = Path(__file__).resolve().parents[1]
PROCESSES = 2  # the default number of env runners
VECTOR_ENVS = 2  # simulations per env runner in the vector measurement


def bare_env_rate(scenario: str, episodes: int, worker: int) -> float:
    """Env steps per second of the default `marlo train` env (its env config, env runner `worker`'s
    SUMO seeds) over whole episodes, so that every part of an episode weighs as much as in training."""
    from ray.rllib.env.env_context import EnvContext

    from marlo_rllib.config import compose
    from marlo_rllib.env.rllib import RLlibTrafficSignalEnv

    env_config = compose({"scenario": scenario}, {}).env_config()
    env = RLlibTrafficSignalEnv(EnvContext(env_config, worker_index=worker, num_workers=PROCESSES)).par_env
    rate = 1000 / random_greens_ms(env, episodes, worker)
    env.close()
    return rate


def random_greens_ms(env: Any, episodes: int, seed: int) -> float:
    """Milliseconds per env step of `episodes` whole episodes of a TrafficSignalEnv with random (masked) greens."""
    import numpy as np

    rng = np.random.default_rng(seed)
    started, steps = time.perf_counter(), 0
    for _ in range(episodes):
        observations, _ = env.reset()
        while env.agents:
            actions = {a: int(rng.choice(np.flatnonzero(o["action_mask"]))) for a, o in observations.items()}
            observations, *_ = env.step(actions)
            steps += 1
    return 1000 * (time.perf_counter() - started) / steps


def bare_env(scenario: str, episodes: int) -> float:
    with ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool:
        workers = range(1, PROCESSES + 1)
        return sum(pool.map(bare_env_rate, [scenario] * PROCESSES, [episodes] * PROCESSES, workers))


class PeakMemory:
    """Polls the summed RSS of this process and all its descendants (Ray's GCS, raylet and workers)."""

    def __init__(self) -> None:
        import psutil

        self.me, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        import psutil

        while not self._stop.wait(0.5):
            total = 0
            for process in [self.me, *self.me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(owner: Any, method: str, spent: dict[str, float], part: str) -> None:
    """Wraps owner.method so that its wall-clock time adds up in spent[part]."""
    original = getattr(owner, method)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - started

    setattr(owner, method, wrapper)


def replay_env_class(env_config: dict[str, Any], episode_steps: int) -> type:
    """A SUMO-free stand-in with the agents, spaces and first observations of the env `env_config`
    builds, for RLlib's own cost per env step."""
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    from marlo_rllib.env.rllib import RLlibTrafficSignalEnv

    env = RLlibTrafficSignalEnv(env_config)
    observations, _ = env.reset()
    agent = next(iter(observations))
    spaces = (env.get_observation_space(agent), env.get_action_space(agent))
    env.close()

    class Replay(MultiAgentEnv):
        def __init__(self, config: dict | None = None) -> None:
            super().__init__()
            self.agents = self.possible_agents = list(observations)
            self.observation_spaces = {a: spaces[0] for a in self.agents}
            self.action_spaces = {a: spaces[1] for a in self.agents}
            self.t = 0

        def reset(self, *, seed=None, options=None):
            self.t = 0
            return dict(observations), {}

        def step(self, actions):
            self.t += 1
            done = self.t >= episode_steps
            rewards = {a: 0.0 for a in self.agents}
            return dict(observations), rewards, {"__all__": False}, {"__all__": done}, {}

    return Replay


def runner_ms_per_step(config: Any, env_config: dict[str, Any], episode_steps: int, steps: int) -> float:
    """The env runner's own milliseconds per env step (episodes, connectors, forward pass, metrics): marlo's
    runner as training configures it, on a SUMO-free env, one torch thread as in a runner."""
    import torch

    from marlo_rllib.training.callbacks import TrafficMetricsCallback
    from marlo_rllib.training.rllib_config import build_config

    replay = replay_env_class(env_config, episode_steps)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    algorithm_config = build_config(config, env_config, [], TrafficMetricsCallback)
    algorithm_config.environment(replay, env_config={}).env_runners(num_env_runners=0).evaluation(
        evaluation_interval=None, evaluation_num_env_runners=0
    )
    algorithm = algorithm_config.build_algo()
    try:
        runner = algorithm.env_runner
        runner.sample(num_timesteps=64)  # warm-up
        started = time.perf_counter()
        runner.sample(num_timesteps=steps)
        return 1000 * (time.perf_counter() - started) / steps
    finally:
        algorithm.stop()
        torch.set_num_threads(threads)


def start_marlo_ray() -> None:
    """A local Ray with room for the learner, 2 env runners and the evaluation runner."""
    import ray

    ray.init(num_cpus=(os.cpu_count() or 1) + 3, include_dashboard=False, log_to_driver=False)


def timed_sample(runner: Any, steps: int) -> tuple[float, float]:
    """On an env runner: its `sample()` of `steps` env steps; (seconds, seconds of them inside the env's step)."""
    in_env = 0.0
    env, step = runner.env, runner.env.step

    def timed_step(actions: Any) -> Any:
        nonlocal in_env
        started = time.perf_counter()
        try:
            return step(actions)
        finally:
            in_env += time.perf_counter() - started

    env.step = timed_step
    started = time.perf_counter()
    try:
        runner.sample(num_timesteps=steps)
    finally:
        del env.step
    return time.perf_counter() - started, in_env


class Sampled(NamedTuple):
    rate: float  # env steps per second of all runners together
    env_share: float  # of the runners' sampling time, the part inside the env's step (SUMO and marlo's env)


def sample(algorithm: Any, steps: int, runners: list[int]) -> Sampled:
    """The runners' `sample()` (each takes its share of `steps`), run at once."""
    per_runner = steps // PROCESSES
    started = time.perf_counter()
    timings = algorithm.env_runner_group.foreach_env_runner(
        lambda r: timed_sample(r, per_runner), remote_worker_ids=runners, local_env_runner=False
    )
    rate = per_runner * len(runners) / (time.perf_counter() - started)
    return Sampled(rate, sum(t[1] for t in timings) / sum(t[0] for t in timings))


class DefaultRun(NamedTuple):
    """The default `marlo train` experiment of a scenario, its env config and what the training
    runner reads off the env before building the algorithm (prepare_run)."""

    config: Any
    env_config: dict[str, Any]
    probe: dict[str, Any]  # the bare env's speed, what sizes fragments
    agents: list[str]
    state_dim: int

    def algorithm_config(self) -> Any:
        from marlo_rllib.training.callbacks import TrafficMetricsCallback
        from marlo_rllib.training.rllib_config import build_config

        return build_config(
            self.config,
            self.env_config,
            self.agents,
            TrafficMetricsCallback,
            state_dim=self.state_dim,
            probe=self.probe,
        )


def default_config(scenario: str, overrides: dict[str, Any], policy: str = "shared") -> DefaultRun:
    """The default `marlo train --scenario SCENARIO --policy POLICY` experiment, with `overrides`."""
    from marlo_rllib.config import compose
    from marlo_rllib.env.rllib import RLlibTrafficSignalEnv
    from marlo_rllib.training.runner import probe_speed

    config = compose({"scenario": scenario, "policy": policy}, overrides)
    env_config = config.env_config()
    env = RLlibTrafficSignalEnv(env_config).par_env
    try:
        return DefaultRun(
            config, env_config, probe_speed(env), list(env.possible_agents), int(env.state_space.shape[0])
        )
    finally:
        env.close()


def vector_sampling(scenario: str, steps: int, repeats: int, envs: int) -> list[float]:
    """Sampling with `envs` simulations per env runner (each in its own process), 2 runners."""
    import ray

    run = default_config(scenario, {"resources": {"envs_per_env_runner": envs}})
    start_marlo_ray()
    try:
        algorithm = run.algorithm_config().build_algo()
        sample(algorithm, steps, [1, 2])  # warm-up
        rates = [sample(algorithm, steps, [1, 2]).rate for _ in range(repeats)]
        algorithm.stop()
    finally:
        ray.shutdown()
    return rates


def training_rate(algorithm: Any, iterations: int) -> tuple[float, float]:
    """Env steps per second over `iterations` training iterations, and the seconds they took."""
    started = time.perf_counter()
    results = [algorithm.train() for _ in range(iterations)]
    seconds = time.perf_counter() - started
    return sum(r["env_runners"]["num_env_steps_sampled"] for r in results) / seconds, seconds


def marlo_training(scenario: str, steps: int, repeats: int, iterations: int) -> dict[str, Any]:
    import ray

    from marlo_rllib.config import compose

    run = default_config(scenario, {})
    parallel = run._replace(config=compose({"scenario": scenario}, {"evaluation": {"parallel": True}}))
    with PeakMemory() as memory:
        start_marlo_ray()
        try:
            algorithm = run.algorithm_config().build_algo()
            sample(algorithm, steps, [1, 2])  # warm-up
            both = [sample(algorithm, steps, [1, 2]) for _ in range(repeats)]
            one = [sample(algorithm, steps, [1]) for _ in range(repeats)]
            algorithm.train()  # untimed: its results also count the samples taken above
            spent = {"learning": 0.0, "evaluation": 0.0}
            timed(algorithm.learner_group, "update", spent, "learning")
            timed(algorithm, "evaluate", spent, "evaluation")
            whole_loop, seconds = training_rate(algorithm, iterations)
            algorithm.stop()
            algorithm = parallel.algorithm_config().build_algo()
            algorithm.train()
            whole_loop_parallel_evaluation, _ = training_rate(algorithm, iterations)
            algorithm.stop()
            overhead = runner_ms_per_step(run.config, run.env_config, run.probe["episode_steps"], 1024)
        finally:
            ray.shutdown()
    return {
        "sampling_2_runners": [b.rate for b in both],
        "sampling_1_runner": [o.rate for o in one],
        "env_share": statistics.median(b.env_share for b in both),
        "whole_loop": whole_loop,
        "whole_loop_parallel_evaluation": whole_loop_parallel_evaluation,
        "seconds_per_iteration": seconds / iterations,
        "learner_s": spent["learning"] / iterations,
        "evaluation_s": spent["evaluation"] / iterations,
        "rest_s": (seconds - spent["learning"] - spent["evaluation"]) / iterations,
        "peak_rss_gib": memory.peak / 2**30,
        "runner_ms_per_env_step": overhead,
        "batch_env_steps": run.config.training["train_batch_size_per_learner"],
    }


def plain_training(scenario: str, seconds: float) -> dict[str, Any]:
    environment = dict(os.environ)  # plain_pipeline switches traci to libsumo and sumo-rl moves SUMO_HOME
    import ray
    from plain_pipeline import plain_config, start_ray

    config, shared = plain_config(scenario)
    start_ray()
    try:
        algorithm = config.build_algo()
        first = algorithm.train()  # untimed: the runners' start
        sampled, started, iterations = first["num_env_steps_sampled_lifetime"], time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            result = algorithm.train()
            iterations += 1
        rate = (result["num_env_steps_sampled_lifetime"] - sampled) / (time.perf_counter() - started)
        algorithm.stop()
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(environment)
    return {"whole_loop": rate, "iterations": iterations, "shared": shared}


def table(reports: list[dict[str, Any]], command: str) -> list[str]:
    lines = [
        "## Training throughput",
        "",
        "Generated by",
        "",
        f"    {command}",
        "",
        "Env steps per second, each map in one run, measured one after the other on 2 cores. bare: "
        "the default `marlo train` env (its env config and SUMO seeds) with random greens in 2 processes, "
        "over whole episodes; sampling: the env runners' `sample()` under the default `marlo train` config "
        "(PPO, shared policy, 2 env runners); env share: of the runners' sampling time, the part inside the "
        "env's step (SUMO and marlo's env), which does not depend on how heavy the policy's traffic is; whole loop: "
        "training iterations (sampling, learning, one evaluation episode every 2nd); evaluation beside: the "
        "same with `evaluation.parallel` (the episode runs beside the next iteration); plain: sumo-rl + stock RLlib "
        "PPO (`benchmarks/plain_pipeline.py`, 4 env runners, batch 512), its whole loop. "
        f"{VECTOR_ENVS} sims per runner: the same sampling with `--envs-per-env-runner {VECTOR_ENVS}` "
        "(each simulation in its own process).",
        "",
        "| map | bare | sampling, 2 runners | 1 runner | sampling / bare | env share "
        f"| {VECTOR_ENVS} sims per runner | its sampling / bare "
        "| whole loop | whole loop / bare | evaluation beside | its whole loop / bare | plain whole loop "
        "| marlo / plain |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r['map']} | {r['bare']:.0f} | {r['sampling_2_runners']:.0f} | {r['sampling_1_runner']:.0f} "
            f"| {r['sampling_vs_bare']:.2f} | {r['env_share']:.2f} | {r['sampling_vector']:.0f} | {r['sampling_vector_vs_bare']:.2f} "
            f"| {r['whole_loop']:.0f} | {r['whole_loop_vs_bare']:.2f} "
            f"| {r['whole_loop_parallel_evaluation']:.0f} | {r['whole_loop_parallel_evaluation'] / r['bare']:.2f} "
            f"| {r['plain_whole_loop']:.0f} | {r['marlo_vs_plain']:.2f} |"
        )
    lines += [
        "",
        "Where a whole-loop iteration's time goes (learning: the learner group's update; evaluation: "
        "`Algorithm.evaluate`; the rest is sampling and weight sync), the sampling speed-up from 1 to 2 "
        "env runners, and the peak memory of the training run (RSS of the driver and every process it started):",
        "",
        "| map | batch (env steps) | s per iteration | sampling and the rest (s) | learning (s) | evaluation (s) "
        "| scale-out 1 → 2 runners | peak RSS (GiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r['map']} | {r['batch_env_steps']} | {r['seconds_per_iteration']:.1f} | {r['rest_s']:.1f} "
            f"| {r['learner_s']:.1f} | {r['evaluation_s']:.1f} | {r['scale_out']:.2f}× | {r['peak_rss_gib']:.2f} |"
        )
    lines += [
        "",
        "The env runner's own cost per env step (episodes, connectors, forward pass, metrics: marlo's runner as "
        "training configures it, on a SUMO-free env with the map's agents, spaces and observations, one torch "
        "thread), against the bare env's cost per step in each of its 2 processes. The ceiling is what sampling "
        "/ bare could reach if SUMO and the runner shared a runner's core with nothing else:",
        "",
        "| map | bare env ms per step | runner ms per step | ceiling of sampling / bare |",
        "|---|---|---|---|",
    ]
    for r in reports:
        bare_ms, runner_ms = 1000 * PROCESSES / r["bare"], r["runner_ms_per_env_step"]
        lines.append(f"| {r['map']} | {bare_ms:.2f} | {runner_ms:.2f} | {bare_ms / (bare_ms + runner_ms):.2f} |")
    return lines


def catalog_maps(parser: argparse.ArgumentParser, maps: str) -> list[str]:
    """The comma-separated catalog maps; exits 2 in one line on an unknown one or none."""
    from marlo_rllib.scenarios import catalog

    names = [m.strip() for m in maps.split(",") if m.strip()]
    unknown = [m for m in names if m not in catalog()]
    if unknown or not names:
        parser.exit(2, f"{parser.prog}: error: unknown map {unknown[0] if unknown else '(none)'}\n")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", default="grid4x4,cologne8,grid6")
    parser.add_argument("--steps", type=int, default=4096, help="env steps per sampling measurement")
    parser.add_argument("--bare-episodes", type=int, default=2, help="whole episodes per bare env process")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=3, help="whole training iterations timed (after one)")
    parser.add_argument("--plain-seconds", type=float, default=120.0, help="wall clock of the plain loop timed")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ as it is")
    args = parser.parse_args()
    maps = catalog_maps(parser, args.maps)
    if min(args.steps, args.bare_episodes, args.repeats, args.iterations) < 1 or not args.plain_seconds > 0:
        parser.exit(
            2,
            "train_throughput.py: error: --steps, --bare-episodes, --repeats, --iterations and --plain-seconds "
            "must be positive\n",
        )
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="ray", dir="/tmp"))

    reports = []
    for scenario in maps:
        bare = statistics.median(bare_env(scenario, args.bare_episodes) for _ in range(args.repeats))
        marlo = marlo_training(scenario, args.steps, args.repeats, args.iterations)
        vector = statistics.median(vector_sampling(scenario, args.steps, args.repeats, VECTOR_ENVS))
        plain = plain_training(scenario, args.plain_seconds)
        sampling = statistics.median(marlo["sampling_2_runners"])
        report = {
            "map": scenario,
            "bare": bare,
            **marlo,
            "sampling_2_runners": sampling,
            "sampling_1_runner": statistics.median(marlo["sampling_1_runner"]),
            "sampling_vs_bare": sampling / bare,
            "sampling_vector": vector,
            "sampling_vector_vs_bare": vector / bare,
            "whole_loop_vs_bare": marlo["whole_loop"] / bare,
            "plain_whole_loop": plain["whole_loop"],
            "plain_iterations": plain["iterations"],
            "marlo_vs_plain": marlo["whole_loop"] / plain["whole_loop"],
            "scale_out": sampling / statistics.median(marlo["sampling_1_runner"]),
        }
        reports.append(report)
        print(json.dumps(report), flush=True)
        if not args.no_docs:
            (REPO / "docs" / "results" / "throughput.json").write_text(json.dumps(reports, indent=1) + "\n")
            command = "python benchmarks/train_throughput.py" + (
                f" --maps {args.maps}" if args.maps != parser.get_default("maps") else ""
            )
            write_section(REPO / "docs" / "BENCHMARKS.md", "throughput", table(reports, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
