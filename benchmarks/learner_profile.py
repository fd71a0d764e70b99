"""Seconds the learner spends per training iteration (`learner_group.update`, under cProfile), for
the default `marlo train` config of a scenario and layout, with the profile's top entries.

    python benchmarks/learner_profile.py --scenario grid6 --policy central

One warm-up iteration, then --iterations timed ones (sampling and evaluation run but are not
counted). Prints the seconds per iteration and the global-state table's shape (central layout).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Any

from train_throughput import default_config, start_marlo_ray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="grid6")
    parser.add_argument("--policy", choices=["shared", "central"], default="central")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--top", type=int, default=20, help="profile entries to print, by own time")
    args = parser.parse_args()
    if args.iterations < 1:
        parser.exit(2, "learner_profile.py: error: --iterations must be at least 1\n")

    import ray

    from marlo_rllib.errors import UserError
    from marlo_rllib.layout import SHARED_MODULE

    try:
        run = default_config(args.scenario, {}, policy=args.policy)
    except UserError as error:
        parser.exit(2, f"learner_profile.py: error: {error}\n")
    start_marlo_ray()
    try:
        algorithm = run.algorithm_config().build_algo()
        algorithm.train()
        profile, spent, update = cProfile.Profile(), [0.0], algorithm.learner_group.update

        def profiled(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            profile.enable()
            try:
                return update(*a, **k)
            finally:
                profile.disable()
                spent[0] += time.perf_counter() - started

        algorithm.learner_group.update = profiled
        for _ in range(args.iterations):
            algorithm.train()
        print(f"{args.scenario} {args.policy}: learner {spent[0] / args.iterations:.2f} s per iteration")
        if args.policy == "central":
            print(
                "global-state table", tuple(algorithm.learner_group._learner.module[SHARED_MODULE].global_states.shape)
            )
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
        algorithm.stop()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
