"""MAPPO (local actors, centralized critic) against shared PPO: same scenarios, same wall-clock
budget, same training seed, evaluated together on SUMO seeds training never used.

    python benchmarks/mappo_vs_ppo.py --scenarios grid4x4,arterial4x4 --minutes 5

MAPPO runs with the global state as one vector for the critic (`critic.input=concat`), with each
junction's part through one shared encoder (`critic.input=pooled`) and with the junction's own
observation beside the global state (`critic.input=agent_specific`); `--variants` picks a subset
(shared PPO always runs, as the yardstick; `--reuse` keeps finished runs of the same command). All
use the PPO CPU preset, 2 env runners and checkpoints scored on evaluation delay (a --minutes
budget has no plateau stop). The cost of the centralized critic is read from the same runs
(seconds per training iteration), and the env's share of it (building the global state every
step) is timed on the bare env of each scenario and of grid6, with the global state's bytes per
train batch.
Writes its section of docs/LEARNING.md and the raw files under docs/learning/mappo_vs_ppo/.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import time
from pathlib import Path

from learning import REPO, delays, marlo, train_for_minutes
from sections import write_section

from marlo_rllib.algorithms.ppo import PRESETS

PRESET_BATCH = PRESETS["cpu"]["train_batch_size_per_learner"]  # env steps per PPO train batch
VARIANTS = {
    "shared": ["--policy", "shared"],
    "concat": ["--policy", "central", "--set", "critic.input=concat"],
    "pooled": ["--policy", "central", "--set", "critic.input=pooled"],
    "agent_specific": ["--policy", "central", "--set", "critic.input=agent_specific"],
}


def seconds_per_iteration(run: Path) -> float:
    times = [float(r["time_s"]) for r in csv.DictReader((run / "progress.csv").open())]
    return statistics.median(b - a for a, b in zip([0.0, *times], times, strict=False))


def env_step_cost(scenario: str, steps: int) -> dict[str, float]:
    """Milliseconds per env step without and with the global state in the infos, on the bare env."""
    from marlo_rllib.env import TrafficSignalEnv

    result = {}
    for with_state in (False, True):
        env = TrafficSignalEnv(scenario, shared_spaces=True, state_in_infos=with_state)
        env.reset(seed=0)
        actions = {a: 0 for a in env.agents}
        start = time.perf_counter()
        for _ in range(steps):
            env.step(actions)
        result["with" if with_state else "without"] = 1000 * (time.perf_counter() - start) / steps
        result["state_dim"], result["agents"] = env.state_space.shape[0], len(env.possible_agents)
        env.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="grid4x4,arterial4x4")
    parser.add_argument("--minutes", type=float, default=5, help="training budget of each run")
    parser.add_argument("--seed", default="0", help="training seed of every run")
    parser.add_argument("--seeds", default="0,1,2", help="evaluation SUMO seeds")
    parser.add_argument("--runs", default="checkpoints")
    parser.add_argument("--out", default="docs/learning/mappo_vs_ppo")
    parser.add_argument("--doc", default="docs/LEARNING.md")
    parser.add_argument("--section", default="mappo vs ppo", help="the doc's section to write")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument(
        "--reuse",
        default="",
        help="comma-separated variants whose finished run in --runs (same command) is evaluated, not trained again",
    )
    args = parser.parse_args()
    variants = {"shared": VARIANTS["shared"]}
    for variant in args.variants.split(","):
        if variant not in VARIANTS:
            parser.exit(2, f"mappo_vs_ppo.py: error: unknown variant {variant}; valid: {', '.join(VARIANTS)}\n")
        variants[variant] = VARIANTS[variant]
    for variant in filter(None, args.reuse.split(",")):
        if variant not in variants:
            parser.exit(2, f"mappo_vs_ppo.py: error: --reuse {variant} is not a variant of this run\n")

    out = REPO / args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    scenarios = args.scenarios.split(",")
    rows, costs = [], []
    for scenario in scenarios:
        runs = {}
        for variant, flags in variants.items():
            runs[variant] = train_for_minutes(
                scenario,
                args.minutes,
                REPO / args.runs,
                f"mappo_vs_ppo_{variant}_{scenario}",
                *("--algo", "PPO", *flags, "--seed", args.seed),
                log=out / f"train_{variant}_{scenario}.log",
                reuse=variant in args.reuse.split(","),
            )
            shutil.copy(runs[variant] / "progress.csv", out / f"progress_{variant}_{scenario}.csv")
        folder = out / f"comparison_{scenario}"
        marlo(
            "benchmark",
            "--scenario",
            scenario,
            "--seeds",
            args.seeds,
            "--out",
            str(folder),
            "--controllers",
            ",".join(["fixed", "max_pressure", *(f"ckpt:{run}" for run in runs.values())]),
        )
        result = delays(folder)
        states = {p: json.loads((run / "state.json").read_text()) for p, run in runs.items()}
        rows.append((scenario, result, runs, states))
    for scenario in dict.fromkeys([*scenarios, "grid6"]):
        costs.append((scenario, env_step_cost(scenario, steps=200)))

    mappo = [v for v in variants if v != "shared"]
    lines = [
        f"## MAPPO (centralized critic) against shared PPO: {', '.join(scenarios)}, {args.minutes:g} minutes",
        "",
        "Generated by",
        "",
        f"    python benchmarks/mappo_vs_ppo.py --scenarios {args.scenarios} --minutes {args.minutes:g} "
        f"--seeds {args.seeds} --variants {','.join(variants)} --out {args.out} --section '{args.section}'"
        + (f" --reuse {args.reuse}" if args.reuse else ""),
        "",
        "Runs per scenario: shared PPO and MAPPO with the global state as one critic input (concat), with a "
        "junction encoder pooled over junctions (pooled), or with the junction's own observation beside the "
        f"global state (agent_specific), as listed. PPO CPU preset, training seed {args.seed}, "
        f"{args.minutes:g} wall-clock minutes on this machine (2 cores, 2 env runners), best checkpoint by evaluation "
        "delay; evaluated on SUMO seeds "
        f"{args.seeds} (unseen in training), one 3600 s episode each, delay in s/vehicle, mean ± 95% CI.",
        "",
        "| scenario | fixed-time | max-pressure | "
        + " | ".join(f"MAPPO {v}" if v != "shared" else "PPO shared" for v in variants)
        + f" | {' / '.join(mappo)} vs PPO | env steps {' / '.join(variants)} | s per iteration {' / '.join(variants)} |",
        "|---|---|---|" + "---|" * (len(variants) + 3),
    ]
    for scenario, result, runs, states in rows:
        cell = {name: f"{r['delay']:.2f} ± {r['delay_ci']:.2f}" for name, r in result.items()}
        trained = [result[f"ckpt:{run}"] for run in runs.values()]
        ppo = trained[0]["delay"]
        lines.append(
            f"| {scenario} | {cell['fixed']} | {cell['max_pressure']} | "
            + " | ".join(f"{r['delay']:.2f} ± {r['delay_ci']:.2f}" for r in trained)
            + " | "
            + " / ".join(f"{100 * (r['delay'] - ppo) / ppo:+.1f}%" for r in trained[1:])
            + " | "
            + " / ".join(str(states[v]["timesteps"]) for v in runs)
            + " | "
            + " / ".join(f"{seconds_per_iteration(run):.1f}" for run in runs.values())
            + " |"
        )
    lines += [
        "",
        f"Seconds per iteration: the median over the run (sampling {PRESET_BATCH} env steps, learner update, "
        "an evaluation episode every 4096 env steps). The global state's own cost, on the bare env (200 steps of 5 s, all greens held):",
        "",
        "| scenario | junctions | state size | ms per env step without / with the state | state per train batch |",
        "|---|---|---|---|---|",
    ]
    for scenario, cost in costs:
        megabytes = PRESET_BATCH * cost["state_dim"] * 4 / 2**20
        lines.append(
            f"| {scenario} | {cost['agents']} | {cost['state_dim']} | {cost['without']:.2f} / {cost['with']:.2f} | "
            f"{megabytes:.1f} MiB |"
        )
    lines += [
        "",
        f"The state per train batch is float32, one row per env step ({PRESET_BATCH}): episodes, the object store "
        "and the learner hold each step's state once, and every agent step carries its row number.",
    ]
    write_section(REPO / args.doc, args.section, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
