"""Algorithms side by side: each trains on the same scenario for the same wall-clock budget with
its CPU preset, then all are evaluated together with fixed-time and max-pressure on SUMO seeds
training never used.

    python benchmarks/algorithms.py --scenario grid4x4 --minutes 5

Each run is `marlo train --algo A --minutes M` (2 env runners, checkpoints scored on evaluation
delay; a --minutes budget has no plateau stop). Env steps per second = env steps sampled /
wall-clock seconds of the run, learner updates included. The comparison is one `marlo benchmark`
with every run's best checkpoint, fixed-time and max-pressure. Writes its section of docs/LEARNING.md,
and the learning curves (evaluation delay against wall-clock minutes) and raw files under
docs/learning/algorithms/<scenario>/.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

from learning import REPO, delays, marlo, parse_algos, train_for_minutes
from sections import write_section


def plot_curves(progress: dict[str, Path], references: dict[str, float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    highest = max(references.values())
    for algo, csv_path in progress.items():
        rows = [r for r in csv.DictReader(csv_path.open()) if r["eval_delay"]]
        minutes = [float(r["time_s"]) / 60 for r in rows]
        evaluated = [float(r["eval_delay"]) for r in rows]
        axes.plot(minutes, evaluated, marker="o", markersize=3, label=algo)
        highest = max([highest, *evaluated])
    for (name, value), style in zip(references.items(), ("--", ":"), strict=False):
        axes.axhline(value, linestyle=style, color="grey", label=f"{name} ({value:.1f} s, unseen seeds)")
    axes.set_xlabel("wall-clock minutes of training")
    axes.set_ylabel("evaluation episode delay (s/vehicle)")
    axes.set_ylim(0, min(highest * 1.05, 3 * max(references.values())))
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def finished(run: Path) -> bool:
    state = run / "state.json"
    return state.is_file() and json.loads(state.read_text()).get("status") == "finished"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="grid4x4")
    parser.add_argument(
        "--algos",
        default="PPO,APPO,IMPALA,DQN,SAC",
        help="comma-separated ALGO[:LAYOUT][:key=value...] (e.g. SAC:independent where junctions differ, "
        "IMPALA:num_epochs=2 for a training setting; default: shared, the preset)",
    )
    parser.add_argument("--minutes", type=float, default=5, help="training budget of each algorithm")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--runs", default="checkpoints", help="where the training runs go (git-ignored)")
    parser.add_argument("--out", default="docs/learning/algorithms")
    parser.add_argument("--doc", default="docs/LEARNING.md")
    parser.add_argument("--section", help="the doc's section to write (default: algorithms SCENARIO)")
    parser.add_argument("--keep", action="store_true", help="reuse finished runs of the same names (after a crash)")
    args = parser.parse_args()
    entries = parse_algos(parser, args.algos)

    out = REPO / args.out / args.scenario
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, Path] = {}
    for entry, (name, layout, settings) in entries:
        label = f"{name} ({', '.join(filter(None, [layout, *settings]))})" if entry != name else name
        run_name = f"algorithms_{entry.replace(':', '_').replace('=', '')}_{args.scenario}"
        runs[label] = REPO / args.runs / run_name
        if not (args.keep and finished(runs[label])):
            train_for_minutes(
                args.scenario,
                args.minutes,
                REPO / args.runs,
                run_name,
                *("--algo", name, "--policy", layout or "shared"),
                *(item for setting in settings for item in ("--set", setting)),
                log=out / f"train_{run_name}.log",
            )
        shutil.copy(runs[label] / "progress.csv", out / f"progress_{run_name}.csv")
    controllers = ",".join(["fixed", "max_pressure", *(f"ckpt:{run}" for run in runs.values())])
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
    fixed, pressure = results["fixed"], results["max_pressure"]
    curves = f"learning_curves_{args.scenario}.png"
    plot_curves(
        {label: out / f"progress_{run.name}.csv" for label, run in runs.items()},
        {"fixed-time": fixed["delay"], "max-pressure": pressure["delay"]},
        out / curves,
        f"{args.scenario}: {args.minutes:g} minutes per algorithm, 2 cores",
    )

    lines = [
        f"## Algorithms side by side on {args.scenario}",
        "",
        "Generated by",
        "",
        f"    python benchmarks/algorithms.py --scenario {args.scenario} --minutes {args.minutes:g} --algos {args.algos}"
        f" --seeds {args.seeds}" + (f" --out {args.out} --section '{args.section}'" if args.section else ""),
        "",
        f"Each algorithm trained with its CPU preset (`marlo algos`) and a shared policy (unless named) for {args.minutes:g} "
        "wall-clock minutes on this machine (2 cores, no GPU, 2 env runners). Env steps/s counts the whole run, "
        "learner updates included. Delay is the run's best checkpoint (by evaluation delay) on SUMO seeds "
        f"{args.seeds}, which training never used; one 3600 s episode per seed, mean ± 95% CI, seconds per vehicle.",
        "",
        "| algorithm | env steps | iterations | env steps/s | best at env steps | delay | vs max-pressure | vs fixed-time |",
        "|---|---|---|---|---|---|---|---|",
        f"| fixed-time | | | | | {fixed['delay']:.2f} ± {fixed['delay_ci']:.2f} | | |",
        f"| max-pressure | | | | | {pressure['delay']:.2f} ± {pressure['delay_ci']:.2f} | | |",
    ]
    for algo, run in runs.items():
        state = json.loads((run / "state.json").read_text())
        result = results[f"ckpt:{run}"]
        lines.append(
            f"| {algo} | {state['timesteps']} | {state['iteration']} | {state['timesteps'] / state['time_s']:.1f} | "
            f"{state['best']['timesteps']} | {result['delay']:.2f} ± {result['delay_ci']:.2f} | "
            f"{result['delay'] / pressure['delay']:.3f} | "
            f"{100 * (result['delay'] - fixed['delay']) / fixed['delay']:+.1f}% |"
        )
    lines += [
        "",
        f"![learning curves]({Path(args.out).relative_to(Path(args.doc).parent)}/{args.scenario}/{curves})",
        "",
        "The curves' points are single greedy evaluation episodes on evaluation seeds (from 105000), noisier "
        "than the table.",
        f"Training logs and the full comparison (all metrics): `{args.out}/{args.scenario}/`.",
    ]
    write_section(REPO / args.doc, args.section or f"algorithms {args.scenario}", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
