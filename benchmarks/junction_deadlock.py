"""What dissolving SUMO's junction deadlocks changes: each controller's delay on the same seeds with
`--ignore-junction-blocker` never (-1) and at the env's default (JUNCTION_BLOCKER_S seconds).

    python benchmarks/junction_deadlock.py --scenario cologne3 --controllers max_pressure,greedy,ckpt:RUN --seeds 4

A controller whose delay drops with it had episodes frozen by vehicles waiting for each other inside
a junction, which no signal can release.
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--controllers", required=True, help="comma-separated: baselines' names or ckpt:RUN_DIR")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="SUMO seeds (default 0,1,2,3,4)")
    parser.add_argument("--demand-scale", type=float, default=1.0)
    args = parser.parse_args()
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.exit(2, f"junction_deadlock.py: error: --seeds takes integers, got {args.seeds}\n")
    if min(seeds) < 0:
        parser.exit(2, "junction_deadlock.py: error: --seeds must be integers >= 0\n")
    if not args.demand_scale > 0:
        parser.exit(2, f"junction_deadlock.py: error: --demand-scale must be positive, got {args.demand_scale}\n")

    from marlo_rllib.controllers import make_controller
    from marlo_rllib.env.traffic_signal_env import JUNCTION_BLOCKER_S
    from marlo_rllib.errors import UserError
    from marlo_rllib.evaluation.runner import EpisodeTask, run_episodes
    from marlo_rllib.scenarios import load_scenario

    controllers = args.controllers.split(",")
    try:
        load_scenario(args.scenario)
        for name in controllers:
            make_controller(name)
    except UserError as exc:
        parser.exit(2, f"junction_deadlock.py: error: {exc}\n")
    settings = (-1, JUNCTION_BLOCKER_S)
    tasks = [
        EpisodeTask(args.scenario, name, seed, {"demand_scale": args.demand_scale, "ignore_junction_blocker": s})
        for name in controllers
        for seed in seeds
        for s in settings
    ]
    results = {
        (t.controller, t.seed, t.env_options["ignore_junction_blocker"]): r
        for t, r in zip(tasks, run_episodes(tasks), strict=True)
    }
    print(f"{args.scenario}, demand {args.demand_scale:g}: delay (s/vehicle) and arrived vehicles")
    print(
        f"| controller | seed | delay, never | delay, {JUNCTION_BLOCKER_S} s | arrived, never | arrived, {JUNCTION_BLOCKER_S} s |"
    )
    print("|---|---|---|---|---|---|")
    for name in controllers:
        for seed in seeds:
            never, dissolved = (results[name, seed, s].metrics for s in settings)
            print(
                f"| {name} | {seed} | {never['delay']:.2f} | {dissolved['delay']:.2f} "
                f"| {never['throughput']:.0f} | {dissolved['throughput']:.0f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
