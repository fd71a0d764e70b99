"""Sampling throughput of training vs the bare env, side by side in one run.

    python benchmarks/train_throughput.py [--scenario grid4x4] [--steps 4096] [--repeats 3]

  bare env   TrafficSignalEnv with random (masked) actions, one process per core, all at once
  training   marlo's PPO config (shared policy, 2 env runners): the env runners' `sample()`, i.e.
             the env plus RLlib's episode bookkeeping, connectors and the policy's forward pass,
             both runners at once; then whole training iterations (sampling + learning + evaluation)

The ratio training/bare is what the issue asks to be at least 0.85. RLlib's own per-step timers
(env step, module forward, connector pipelines) are printed to show where the time goes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor


def bare_env_rate(scenario: str, steps: int, seed: int) -> float:
    import numpy as np

    from marlo_rllib.env import TrafficSignalEnv

    env = TrafficSignalEnv(scenario, seed=seed, shared_spaces=True)
    rng = np.random.default_rng(seed)
    observations, _ = env.reset()
    started, done = time.perf_counter(), 0
    while done < steps:
        actions = {a: int(rng.choice(np.flatnonzero(o["action_mask"]))) for a, o in observations.items()}
        observations, _, _, truncated, _ = env.step(actions)
        done += 1
        if all(truncated.values()):
            observations, _ = env.reset()
    rate = steps / (time.perf_counter() - started)
    env.close()
    return rate


def bare_env(scenario: str, steps: int, processes: int) -> float:
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        return sum(pool.map(bare_env_rate, [scenario] * processes, [steps] * processes, range(processes)))


def training(scenario: str, steps: int, repeats: int, iterations: int) -> dict:
    import ray

    from marlo_rllib.config import compose
    from marlo_rllib.training.callbacks import TrafficMetricsCallback
    from marlo_rllib.training.rllib_config import build_config

    config = compose({"scenario": scenario}, {})
    env_config = config.env_config()
    agents: list[str] = []  # only an independent layout needs the agent ids
    ray.init(num_cpus=os.cpu_count() + 3, include_dashboard=False, log_to_driver=False)
    try:
        algorithm = build_config(config, env_config, agents, TrafficMetricsCallback).build_algo()
        runners = algorithm.env_runner_group
        per_runner = steps // runners.num_remote_env_runners()
        runners.foreach_env_runner(lambda r: r.sample(num_timesteps=per_runner), local_env_runner=False)  # warm-up
        rates = []
        for _ in range(repeats):
            started = time.perf_counter()
            runners.foreach_env_runner(lambda r: r.sample(num_timesteps=per_runner), local_env_runner=False)
            rates.append(per_runner * runners.num_remote_env_runners() / (time.perf_counter() - started))
        algorithm.train()  # its results also count the samples taken above
        results, started = [], time.perf_counter()
        for _ in range(iterations):
            results.append(algorithm.train())
        end_to_end = sum(r["env_runners"]["num_env_steps_sampled"] for r in results) / (time.perf_counter() - started)
        last = results[-1]
        timers = {
            k: last["env_runners"].get(k)
            for k in ("env_step_timer", "rlmodule_inference_timer", "connector_pipeline_timer")
        }
        learner = last["timers"]["learner_update_timer"]
        algorithm.stop()
    finally:
        ray.shutdown()
    return {
        "sampling": rates,
        "end_to_end": end_to_end,
        "timers_s": timers,
        "learner_update_s": learner,
        "batch": config.training["train_batch_size_per_learner"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="grid4x4")
    parser.add_argument("--steps", type=int, default=4096, help="env steps per sampling measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--iterations", type=int, default=2, help="whole training iterations to time (after one untimed)"
    )
    args = parser.parse_args()
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="ray", dir="/tmp"))

    processes = 2  # the 2 env runners
    bare = [bare_env(args.scenario, args.steps // processes, processes) for _ in range(args.repeats)]
    trained = training(args.scenario, args.steps, args.repeats, args.iterations)
    bare_rate, sampling_rate = statistics.median(bare), statistics.median(trained["sampling"])
    report = {
        "scenario": args.scenario,
        "cores": os.cpu_count(),
        "processes": processes,
        "bare_env_steps_per_s": [round(r, 1) for r in bare],
        "training_sampling_steps_per_s": [round(r, 1) for r in trained["sampling"]],
        "ratio_sampling_vs_bare": round(sampling_rate / bare_rate, 3),
        "training_end_to_end_steps_per_s": round(trained["end_to_end"], 1),
        "train_batch_env_steps": trained["batch"],
        "learner_update_s_per_iteration": round(trained["learner_update_s"], 2),
        "rllib_per_step_timers_ms": {k: round(1000 * v, 2) for k, v in trained["timers_s"].items() if v is not None},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
