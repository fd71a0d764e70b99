"""How a controller switches, junction by junction, over one episode: the share of the decisions
where a switch was allowed (the green had run min_green) that switched, and the halting vehicles on
the junction's incoming lanes (mean over the episode, and at its end).

    python benchmarks/switching.py --scenario ingolstadt21 --controller ckpt:runs/suite/ingolstadt21/marlo --seed 0

A policy that switches at nearly every allowed decision runs a fixed short cycle, whatever it sees.
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--controller", required=True, help="a baseline's name or ckpt:RUN_DIR")
    parser.add_argument("--seed", type=int, default=0, help="SUMO seed (default 0)")
    parser.add_argument("--demand-scale", type=float, default=1.0)
    args = parser.parse_args()
    if not args.demand_scale > 0:
        parser.exit(2, f"switching.py: error: --demand-scale must be positive, got {args.demand_scale}\n")

    from marlo_rllib.errors import UserError
    from marlo_rllib.evaluation.runner import EpisodeTask, run_episode

    task = EpisodeTask(args.scenario, args.controller, args.seed, {"demand_scale": args.demand_scale})
    try:
        result = run_episode(task)
    except UserError as exc:
        parser.exit(2, f"switching.py: error: {exc}\n")
    delay = result.metrics["delay"]
    print(f"{args.scenario}, {args.controller}, seed {args.seed}, demand {args.demand_scale:g}: delay {delay:.1f} s")
    print("| junction | switched / allowed | halting, mean | halting, end |")
    print("|---|---|---|---|")
    for i, agent in enumerate(result.agents):
        share = result.switched[i] / max(result.switch_allowed[i], 1)
        halting = result.queue_trace[:, i]
        print(f"| {agent[:40]} | {share:.2f} | {halting.mean():.1f} | {halting[-1]:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
