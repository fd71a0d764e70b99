"""The `marlo` command (also `python atc_cli.py`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Sequence

import yaml

from marlo_rllib.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit status 2 (argparse prints the whole usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _scenarios_list(args: argparse.Namespace) -> None:
    from marlo_rllib.scenarios import catalog, load_scenario_file, summarize_net

    rows = []
    for name, path in catalog().items():
        spec = load_scenario_file(path)
        net = summarize_net(spec.net)
        rows.append((name, str(net.junctions), str(net.traffic_lights), str(spec.episode_seconds), spec.description))
    header = ("name", "junctions", "agents", "episode_s", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4])


def _scenarios_show(args: argparse.Namespace) -> None:
    from marlo_rllib.scenarios import load_scenario, summarize_net

    spec = load_scenario(args.name)
    data = json.loads(spec.model_dump_json())
    net = summarize_net(spec.net)
    data["source"] = str(spec.source)
    data["junctions"], data["agents"] = net.junctions, net.traffic_lights
    print(yaml.safe_dump(data, sort_keys=False).rstrip())


def _simulate(args: argparse.Namespace) -> None:
    from marlo_rllib.env import TrafficSignalEnv

    env = TrafficSignalEnv(
        args.scenario,
        seed=args.seed,
        episode_seconds=args.seconds,
        shared_spaces=True,
        program="fixed" if args.controller == "fixed" else None,
    )
    try:
        observations, _ = env.reset(seed=args.seed)
        started, steps, infos = time.perf_counter(), 0, {}
        while env.agents:
            actions = {
                agent: env.action_space(agent).sample(mask=obs["action_mask"])
                for agent, obs in observations.items()
                if agent in env.agents
            }
            observations, _, _, _, infos = env.step(actions)
            steps += 1
        elapsed = time.perf_counter() - started
    finally:
        env.close()
    metrics = next(iter(infos.values()))["metrics"]
    print(f"{args.scenario}: {args.controller} control, {len(env.possible_agents)} junctions, "
          f"{steps} env steps in {elapsed:.1f} s ({steps / elapsed:.0f} steps/s), SUMO seed {args.seed}")
    for name, value in metrics.items():
        print(f"  {name:<14} {value:10.2f}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="marlo", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    scenarios = commands.add_parser("scenarios", help="list and inspect scenarios")
    scenario_commands = scenarios.add_subparsers(dest="scenarios_command", required=True, parser_class=_Parser)
    scenario_commands.add_parser("list", help="table of the scenarios").set_defaults(run=_scenarios_list)
    show = scenario_commands.add_parser("show", help="print a scenario's resolved spec")
    show.add_argument("name", help="catalog name or path of a scenario YAML")
    show.set_defaults(run=_scenarios_show)

    simulate = commands.add_parser("simulate", help="run one episode with fixed-time or random signals")
    simulate.add_argument("--scenario", default="grid4x4")
    simulate.add_argument("--controller", choices=("random", "fixed"), default="random")
    simulate.add_argument("--seconds", type=int, default=None, help="episode length (default: the scenario's)")
    simulate.add_argument("--seed", type=int, default=0, help="SUMO seed")
    simulate.set_defaults(run=_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except UserError as exc:
        if args.debug:
            raise
        print(f"marlo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("marlo: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
