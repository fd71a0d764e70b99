"""How a controller switches, junction by junction, over one episode: the share of the decisions
where a switch was allowed (the green had run min_green) that switched, and the halting vehicles on
the junction's incoming lanes (mean over the episode, and at its end).

    python benchmarks/switching.py --scenario ingolstadt21 --controller ckpt:runs/suite/ingolstadt21/marlo --seed 0

A policy that switches at nearly every allowed decision runs a fixed short cycle, whatever it sees.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--controller", required=True, help="a baseline's name or ckpt:RUN_DIR")
    parser.add_argument("--seed", type=int, default=0, help="SUMO seed (default 0)")
    parser.add_argument("--demand-scale", type=float, default=1.0)
    args = parser.parse_args()
    if not args.demand_scale > 0:
        parser.exit(2, f"switching.py: error: --demand-scale must be positive, got {args.demand_scale}\n")

    from marlo_rllib.controllers import make_controller
    from marlo_rllib.env import TrafficSignalEnv
    from marlo_rllib.errors import UserError

    try:
        controller = make_controller(args.controller)
        options = {"demand_scale": args.demand_scale, **controller.env_options}
        env = TrafficSignalEnv(args.scenario, seed=args.seed, **options)
    except UserError as exc:
        parser.exit(2, f"switching.py: error: {exc}\n")
    try:
        observations, infos = env.reset(seed=args.seed)
        controller.reset(env, seed=args.seed)
        agents = list(env.possible_agents)
        allowed, switched = dict.fromkeys(agents, 0), dict.fromkeys(agents, 0)
        halting: dict[str, list[float]] = {agent: [] for agent in agents}
        while env.agents:
            actions = controller.act(observations, infos)
            for agent, action in actions.items():
                signal = env.signals[agent]
                if signal.green_time >= env.timing.min_green:
                    allowed[agent] += 1
                    switched[agent] += int(int(action) != signal.green)
            observations, _, _, _, infos = env.step(actions)
            for agent in agents:
                halting[agent].append(float(env.traffic[agent].in_halting.sum()))
        delay = next(iter(infos.values()))["metrics"]["delay"]
    finally:
        env.close()
    print(f"{args.scenario}, {args.controller}, seed {args.seed}, demand {args.demand_scale:g}: delay {delay:.1f} s")
    print("| junction | greens | switched / allowed | halting, mean | halting, end |")
    print("|---|---|---|---|---|")
    for agent in agents:
        share = switched[agent] / max(allowed[agent], 1)
        print(
            f"| {agent[:40]} | {env.junctions[agent].n_greens} | {share:.2f} "
            f"| {np.mean(halting[agent]):.1f} | {halting[agent][-1]:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
