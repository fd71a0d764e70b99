"""Offline RL: CQL and BC trained on the same recorded dataset with the same budget, against the
behaviour that recorded it, max-pressure and fixed-time.

    python benchmarks/offline.py --scenario grid4x4 --episodes 4 --timesteps 768000

1. `marlo collect` records max-pressure with epsilon = 0.2 and random (`--episodes` each) on SUMO
   seeds 50000, 50001, ...
2. `marlo train --algo A --dataset D` for each algorithm with the same number of transitions
   trained on (`--timesteps`); evaluation on SUMO every `--eval-interval` iterations picks the best
   checkpoint.
3. One `marlo benchmark` of fixed-time, max-pressure, random and every best checkpoint on seeds
   training never used, plus `marlo collect` of the epsilon-mixed behaviours on those same seeds
   (the dataset's behaviour, measured where the policies are).

Target: CQL's delay is no worse than the dataset's own average behaviour (the mean delay of its
episodes). Writes its section of docs/LEARNING.md and the raw files under docs/learning/offline/.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from learning import REPO, delays, marlo, parse_algos
from sections import write_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="grid4x4")
    parser.add_argument("--episodes", type=int, default=4, help="recorded episodes per behaviour")
    parser.add_argument("--epsilon", type=float, default=0.2)
    parser.add_argument(
        "--algos",
        default="CQL,BC",
        help="comma-separated ALGO or ALGO:key=value:key=value (training settings, e.g. CQL:alpha=0.1:gamma=0.95)",
    )
    parser.add_argument("--timesteps", type=int, default=768_000, help="transitions each algorithm trains on")
    parser.add_argument("--eval-interval", type=int, default=5, help="training iterations between SUMO evaluations")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--runs", default="checkpoints", help="where the dataset and the runs go (git-ignored)")
    parser.add_argument("--out", default="docs/learning/offline")
    parser.add_argument("--doc", default="docs/LEARNING.md")
    args = parser.parse_args()
    entries = parse_algos(parser, args.algos)

    out = REPO / args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    behaviours = "max_pressure,random"
    dataset = REPO / args.runs / f"offline_dataset_{args.scenario}"
    shutil.rmtree(dataset, ignore_errors=True)
    marlo(
        "collect",
        "--scenario",
        args.scenario,
        "--policy",
        behaviours,
        "--episodes",
        str(args.episodes),
        "--epsilon",
        str(args.epsilon),
        "--out",
        str(dataset),
        log=out / "collect.log",
    )
    info = json.loads((dataset / "dataset.json").read_text())
    shutil.copy(dataset / "dataset.json", out / "dataset.json")

    runs: dict[str, Path] = {}
    for entry, (algo, _, settings) in entries:
        runs[entry] = REPO / args.runs / f"offline_{entry.replace(':', '_').replace('=', '')}_{args.scenario}"
        shutil.rmtree(runs[entry], ignore_errors=True)
        marlo(
            "train",
            "--algo",
            algo,
            *(item for setting in settings for item in ("--set", setting)),
            "--dataset",
            str(dataset),
            "--timesteps",
            str(args.timesteps),
            "--out",
            str(REPO / args.runs),
            "--run-name",
            runs[entry].name,
            "--set",
            f"stop.patience={10**9}",
            "--set",
            f"evaluation.interval={args.eval_interval}",
            log=out / f"train_{runs[entry].name}.log",
        )
        shutil.copy(runs[entry] / "progress.csv", out / f"progress_{runs[entry].name}.csv")

    seeds = [int(s) for s in args.seeds.split(",")]
    behaviour_on_seeds = out / "behaviour_on_evaluation_seeds"
    marlo(
        "collect",
        "--scenario",
        args.scenario,
        "--policy",
        behaviours,
        "--episodes",
        str(len(seeds)),
        "--seed",
        str(seeds[0]),
        "--epsilon",
        str(args.epsilon),
        "--out",
        str(behaviour_on_seeds),
        log=out / "collect_on_evaluation_seeds.log",
    )
    shutil.rmtree(behaviour_on_seeds / "data")  # the statistics are in its dataset.json
    measured = json.loads((behaviour_on_seeds / "dataset.json").read_text())
    controllers = ",".join(["fixed", "max_pressure", "random", *(f"ckpt:{run}" for run in runs.values())])
    marlo(
        "benchmark",
        "--scenario",
        args.scenario,
        "--controllers",
        controllers,
        "--seeds",
        args.seeds,
        "--out",
        str(out / "comparison"),
    )
    results = delays(out / "comparison")
    average = measured["behaviour_mean_delay"]
    episode_seconds = json.loads((out / "comparison" / "metrics.json").read_text())["episode_seconds"]

    def row(name: str, delay: float, ci: float | None = None) -> str:
        spread = f" ± {ci:.2f}" if ci is not None else ""
        return f"| {name} | {delay:.2f}{spread} | {100 * (delay - average) / average:+.1f}% |"

    lines = [
        f"## Offline RL on {args.scenario}: CQL and BC from a recorded dataset",
        "",
        "Generated by",
        "",
        f"    python benchmarks/offline.py --scenario {args.scenario} --episodes {args.episodes} "
        f"--timesteps {args.timesteps} --algos {args.algos}",
        "",
        f"The dataset: {info['episodes']} episodes ({info['rows']} junction transitions) of max-pressure with "
        f"epsilon = {args.epsilon} and of random greens, {args.episodes} each, on SUMO seeds {info['seeds'][0]}+. "
        f"Each algorithm trained one shared policy on {args.timesteps} transitions (its CPU preset, `marlo algos`), "
        f"evaluated on SUMO every {args.eval_interval} iterations to pick its best checkpoint. All rows below are "
        f"measured on seeds {args.seeds}, which neither recording nor training used: one "
        f"{episode_seconds} s episode per seed, mean ± 95% CI, seconds per vehicle. "
        "The behaviour rows are the epsilon-mixed controllers that recorded the dataset; their average is the "
        "dataset's own average behaviour, the target CQL must not fall behind.",
        "",
        "| controller | delay | vs the dataset's average behaviour |",
        "|---|---|---|",
    ]
    for behaviour in measured["behaviours"]:
        mixed = f"{behaviour['name']} (epsilon {args.epsilon})" if behaviour["name"] != "random" else "random"
        lines.append(row(f"behaviour: {mixed}", behaviour["mean_delay"]))
    lines.append(row("**the dataset's average behaviour**", average))
    for name in ("fixed", "max_pressure", "random"):
        lines.append(row(name if name != "fixed" else "fixed-time", results[name]["delay"], results[name]["delay_ci"]))
    for entry, run in runs.items():
        state = json.loads((run / "state.json").read_text())
        result = results[f"ckpt:{run}"]
        lines.append(
            row(
                f"**{entry.replace(':', ', ')}** (best at {state['best']['timesteps']} transitions)",
                result["delay"],
                result["delay_ci"],
            )
        )
    lines += ["", f"Dataset statistics, training logs and the full comparison (all metrics): `{args.out}/`."]
    write_section(REPO / args.doc, f"offline {args.scenario}", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
