"""Env steps per second on grid4x4, side by side, each in its own process:

  raw SUMO   the `sumo` binary running the net's fixed-time programs (no Python in the loop)
  sumo-rl    sumo-rl's own multi-agent SumoEnvironment on libsumo, random actions (the env its
             PettingZoo wrapper steps; the wrapper itself needs a name newer pettingzoo dropped)
  marlo      TrafficSignalEnv on libsumo, random actions

Same net, demand, SUMO seed and 5 s steps. One env step = 5 simulated seconds for all three.

    python benchmarks/env_speed.py [--scenario grid4x4] [--seconds 3600] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

DELTA = 5


def run_raw(scenario: str, seconds: int, seed: int) -> float:
    from marlo_rllib import sumo
    from marlo_rllib.scenarios import load_scenario

    spec = load_scenario(scenario)
    cmd = [
        sumo.binary("sumo"),
        "--net-file",
        str(spec.net),
        "--route-files",
        ",".join(map(str, spec.routes)),
        "--begin",
        str(spec.begin),
        "--end",
        str(spec.begin + seconds),
        "--seed",
        str(seed),
        "--time-to-teleport",
        "-1",
        "--no-step-log",
        "true",
        "--no-warnings",
        "true",
        "--duration-log.disable",
        "true",
    ]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


def run_sumo_rl(scenario: str, seconds: int, seed: int) -> float:
    os.environ["LIBSUMO_AS_TRACI"] = "1"
    from marlo_rllib import sumo
    from marlo_rllib.scenarios import load_scenario

    sumo.sumo_home()  # sumo-rl reads SUMO_HOME at import
    from sumo_rl import SumoEnvironment

    spec = load_scenario(scenario)
    env = SumoEnvironment(
        net_file=str(spec.net),
        route_file=",".join(map(str, spec.routes)),
        begin_time=spec.begin,
        num_seconds=seconds,
        delta_time=DELTA,
        yellow_time=2,
        min_green=5,
        max_green=50,
        sumo_seed=seed,
        use_gui=False,
        sumo_warnings=False,
        single_agent=False,
    )
    started = time.perf_counter()
    env.reset(seed=seed)
    done = False
    while not done:
        _, _, dones, _ = env.step({a: env.action_spaces(a).sample() for a in env.ts_ids})
        done = dones["__all__"]
    elapsed = time.perf_counter() - started
    env.close()
    return elapsed


def run_marlo(scenario: str, seconds: int, seed: int) -> float:
    from marlo_rllib.env import TrafficSignalEnv

    env = TrafficSignalEnv(scenario, episode_seconds=seconds, timing={"delta_time": DELTA})
    started = time.perf_counter()
    env.reset(seed=seed)
    while env.agents:
        env.step({a: env.action_space(a).sample() for a in env.agents})
    elapsed = time.perf_counter() - started
    env.close()
    return elapsed


RUNNERS = {"raw SUMO": run_raw, "sumo-rl": run_sumo_rl, "marlo": run_marlo}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="grid4x4")
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="episodes per contender; the median is reported")
    parser.add_argument("--one", choices=list(RUNNERS), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:  # child process: one episode of one contender
        print(json.dumps({"seconds": RUNNERS[args.one](args.scenario, args.seconds, args.seed)}))
        return

    steps = args.seconds // DELTA
    rates: dict[str, float] = {}
    for name in RUNNERS:
        walls = []
        for _ in range(args.repeats):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    name,
                    "--scenario",
                    args.scenario,
                    "--seconds",
                    str(args.seconds),
                    "--seed",
                    str(args.seed),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            walls.append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
        rates[name] = steps / statistics.median(walls)

    print(
        f"{args.scenario}, {args.seconds} s episodes ({steps} env steps of {DELTA} s), SUMO seed {args.seed}, "
        f"median of {args.repeats}"
    )
    print("| contender | env steps/s |\n|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} |")
    print(f"\nmarlo / sumo-rl: {rates['marlo'] / rates['sumo-rl']:.2f}x")
    print(f"marlo / raw SUMO: {rates['marlo'] / rates['raw SUMO']:.0%}")


if __name__ == "__main__":
    main()
