"""Is the env slower inside an env runner than in a bare process? Back to back, on one map:

    python benchmarks/env_in_runner.py [--scenario grid4x4] [--episodes 2] [--repeats 2]

  bare       the default `marlo train` env with random greens in 2 plain processes (train_throughput.py)
  in runner  the same env, stepped with random greens inside the 2 env runner processes of the
             default config (RLlib's loop bypassed), milliseconds per env step
  sampling   then the runners' `sample()` over the same number of whole episodes, and the share of
             it inside the env's step

The same traffic (random greens, whole episodes) inside and outside the runners separates what the
runner process costs the env from what the policy's traffic does. Prints one JSON line per repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any

from train_throughput import (
    PROCESSES,
    bare_env,
    catalog_maps,
    default_config,
    random_greens_ms,
    sample,
    start_marlo_ray,
)


def in_runner_ms(runner: Any, episodes: int) -> float:
    """On an env runner: its env stepped with random greens for whole episodes, ms per env step."""
    milliseconds = random_greens_ms(runner.env.envs[0].unwrapped.par_env, episodes, runner.worker_index)
    runner._needs_initial_reset = True  # RLlib's episode no longer matches the env: start a new one
    return milliseconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="grid4x4")
    parser.add_argument("--episodes", type=int, default=2, help="whole episodes per process and measurement")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    scenario = catalog_maps(parser, args.scenario)[0]
    if min(args.episodes, args.repeats) < 1:
        parser.exit(2, "env_in_runner.py: error: --episodes and --repeats must be positive\n")
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    import ray

    bare = bare_env(scenario, args.episodes)
    run = default_config(scenario, {})
    start_marlo_ray()
    try:
        algorithm = run.algorithm_config().build_algo()
        runners = algorithm.env_runner_group
        for _ in range(args.repeats):
            in_runner = runners.foreach_env_runner(lambda r: in_runner_ms(r, args.episodes), local_env_runner=False)
            steps = args.episodes * run.probe["episode_steps"] * PROCESSES
            sampled = sample(algorithm, steps, [1, 2])
            report = {
                "map": scenario,
                "bare_env_steps_per_s": bare,
                "bare_ms_per_step": 1000 * PROCESSES / bare,
                "in_runner_ms_per_step": in_runner,
                "sampling_env_steps_per_s": sampled.rate,
                "sampling_vs_bare": sampled.rate / bare,
                "env_share": sampled.env_share,
            }
            print(json.dumps(report), flush=True)
        algorithm.stop()
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
