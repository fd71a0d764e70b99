"""What dissolving SUMO's deadlocks changes: each controller's delay on the same seeds with
`--ignore-junction-blocker` never (-1) and at the env's default (JUNCTION_BLOCKER_S seconds), both
with teleports off, and, where the scenario sets a --time-to-teleport (cologne3), with it as well.

    python benchmarks/junction_deadlock.py --scenario cologne3 --controllers max_pressure,greedy,ckpt:RUN --seeds 4

A controller whose delay drops with the junction setting had episodes frozen by vehicles waiting
for each other inside a junction; with the teleports, by vehicles holding each other elsewhere
(cologne3's turnarounds). No signal can release either.
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
        scenario_teleport = load_scenario(args.scenario).time_to_teleport
        for name in controllers:
            make_controller(name)
    except UserError as exc:
        parser.exit(2, f"junction_deadlock.py: error: {exc}\n")
    settings = {  # label: (ignore_junction_blocker, time_to_teleport)
        "never": (-1, -1),
        f"{JUNCTION_BLOCKER_S} s": (JUNCTION_BLOCKER_S, -1),
    }
    if scenario_teleport > 0:
        settings[f"{JUNCTION_BLOCKER_S} s + teleports after {scenario_teleport} s"] = (
            JUNCTION_BLOCKER_S,
            scenario_teleport,
        )
    keys = [(name, seed, label) for name in controllers for seed in seeds for label in settings]
    tasks = [
        EpisodeTask(
            args.scenario,
            name,
            seed,
            {
                "demand_scale": args.demand_scale,
                "ignore_junction_blocker": settings[label][0],
                "time_to_teleport": settings[label][1],
            },
        )
        for name, seed, label in keys
    ]
    results = {key: r.metrics for key, r in zip(keys, run_episodes(tasks), strict=True)}
    print(
        f"{args.scenario}, demand {args.demand_scale:g}: delay (s/vehicle), arrived vehicles and teleports when "
        "SUMO never dissolves a deadlock inside a junction, when it does after "
        f"{JUNCTION_BLOCKER_S} s (teleports off), and with the scenario's own --time-to-teleport where it sets one"
    )
    columns = [f"{what}, {label}" for what in ("delay", "arrived", "teleports") for label in settings]
    print("| controller | seed | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for name in controllers:
        for seed in seeds:
            runs = [results[name, seed, label] for label in settings]
            cells = [f"{m['delay']:.2f}" for m in runs] + [f"{m['throughput']:.0f}" for m in runs]
            cells += [str(m["teleports"]) for m in runs]
            print(f"| {name} | {seed} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
