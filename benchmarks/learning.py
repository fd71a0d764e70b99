"""Learning quality: train for a wall-clock budget, then compare the trained policy with
fixed-time and max-pressure on SUMO seeds training never used, at several demand scales.

    python benchmarks/learning.py --scenario grid4x4 --algo PPO --minutes 20

Training runs `marlo train` (the experiment YAML given by --config, scored on evaluation delay,
with the plateau stop turned off so that the wall-clock budget alone ends it);
training SUMO seeds start at 100000, so the evaluation seeds 0-4 are unseen. The comparison runs
`marlo benchmark --controllers fixed,max_pressure,ckpt:RUN` once per demand scale. Writes
its section of docs/LEARNING.md with the tables and a learning curve, and the raw files under docs/learning/.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sections import write_section

REPO = Path(__file__).resolve().parents[1]


def marlo(*args: str, log: Path | None = None) -> None:
    command = [sys.executable, "-m", "marlo_rllib.cli", *args]
    print("$ marlo " + " ".join(args), flush=True)
    with log.open("w") if log else open(os.devnull, "w") as stream:
        subprocess.run(
            command, cwd=REPO, check=True, stdout=stream if log else None, stderr=subprocess.STDOUT if log else None
        )


def parse_entry(entry: str) -> tuple[str, str | None, list[str]]:
    """ALGO[:LAYOUT][:key=value...] -> (ALGO, LAYOUT or None, ["training.key=value", ...])."""
    algo, *parts = entry.split(":")
    layouts = [part for part in parts if "=" not in part]
    if not algo:
        raise ValueError(f"--algos: {entry!r} names no algorithm")
    if len(layouts) > 1:
        raise ValueError(f"--algos: {entry} names more than one layout")
    return algo, layouts[0] if layouts else None, [f"training.{part}" for part in parts if "=" in part]


def parse_algos(parser: argparse.ArgumentParser, algos: str) -> list[tuple[str, tuple[str, str | None, list[str]]]]:
    """Each --algos entry with its parse_entry; an entry it refuses ends the script with one line and
    exit status 2, before anything is trained."""
    try:
        return [(entry, parse_entry(entry)) for entry in algos.split(",")]
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


def train_for_minutes(
    scenario: str, minutes: float, runs: Path, run_name: str, *flags: str, log: Path, reuse: bool = False
) -> Path:
    """`marlo train --scenario S --minutes M` with flags into a fresh runs/run_name; returns the run.
    reuse: keep a run there that finished under the same command (marlo at another commit included)."""
    run = runs / run_name
    args = [
        "train",
        "--scenario",
        scenario,
        *flags,
        "--minutes",
        str(minutes),
        "--out",
        str(runs),
        "--run-name",
        run_name,
    ]
    if reuse and (run / "state.json").exists():
        finished = json.loads((run / "state.json").read_text())["status"] == "finished"
        if finished and json.loads((run / "metadata.json").read_text())["command"] == "marlo " + " ".join(args):
            print(f"reusing {run}", flush=True)
            return run
    shutil.rmtree(run, ignore_errors=True)
    marlo(*args, log=log)
    return run


def delays(path: Path) -> dict[str, dict[str, float]]:
    aggregate = json.loads((path / "metrics.json").read_text())["aggregate"]
    return {
        controller: {m: summary[m]["mean"] for m in summary} | {"delay_ci": summary["delay"]["ci95"]}
        for controller, summary in aggregate.items()
    }


def plot_curve(rows: list[dict[str, str]], references: dict[str, float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [float(r["time_s"]) / 60 for r in rows if r["eval_delay"]]
    evaluated = [float(r["eval_delay"]) for r in rows if r["eval_delay"]]
    trained = [float(r["delay"]) for r in rows if r["eval_delay"]]
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(minutes, evaluated, marker="o", markersize=3, label="PPO, evaluation episode (greedy)")
    axes.plot(minutes, trained, alpha=0.5, label="PPO, training episodes (sampling)")
    for (name, value), style in zip(references.items(), ("--", ":"), strict=False):
        axes.axhline(value, linestyle=style, color="grey", label=f"{name} ({value:.1f} s, unseen seeds)")
    axes.set_xlabel("wall-clock minutes of training")
    axes.set_ylabel("mean delay per vehicle (s)")
    axes.set_ylim(0, min(max(evaluated + trained) * 1.05, 250))
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="grid4x4")
    parser.add_argument("--algo", default="PPO")
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--config", default="experiments/ppo_grid4x4.yaml")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--scales", default="0.8,1.0,1.2")
    parser.add_argument("--runs", default="checkpoints", help="where the training run goes (git-ignored)")
    parser.add_argument("--out", default="docs/learning")
    parser.add_argument("--doc", default="docs/LEARNING.md")
    parser.add_argument("--compare-only", action="store_true", help="reuse the last training run; redo the comparison")
    args = parser.parse_args()

    out = REPO / args.out / args.scenario
    run_name = f"learning_{args.algo}_{args.scenario}"
    run = REPO / args.runs / run_name
    if not args.compare_only:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        shutil.rmtree(run, ignore_errors=True)
        marlo(
            "train",
            "--scenario",
            args.scenario,
            "--algo",
            args.algo,
            "--config",
            args.config,
            "--minutes",
            str(args.minutes),
            "--timesteps",
            str(10**9),
            "--out",
            str(REPO / args.runs),
            "--run-name",
            run_name,
            "--set",
            f"stop.patience={10**9}",  # the budget is the wall clock only
            log=out / "train.log",
        )
    shutil.copy(run / "progress.csv", out / "progress.csv")
    shutil.copy(run / "config.yaml", out / "config.yaml")
    state = json.loads((run / "state.json").read_text())

    scales = [float(s) for s in args.scales.split(",")]
    results = {}
    for scale in scales:
        folder = out / f"scale_{scale:g}"
        marlo(
            "benchmark",
            "--scenario",
            args.scenario,
            "--controllers",
            f"fixed,max_pressure,ckpt:{run}",
            "--seeds",
            args.seeds,
            "--demand-scale",
            str(scale),
            "--out",
            str(folder),
        )
        results[scale] = delays(folder)
    policy = f"ckpt:{run}"

    rows = list(csv.DictReader((out / "progress.csv").open()))
    reference = results[1.0] if 1.0 in results else results[scales[0]]
    max_pressure = reference["max_pressure"]["delay"]
    below = next((r for r in rows if r["eval_delay"] and float(r["eval_delay"]) < max_pressure), None)
    plot_curve(
        rows,
        {"fixed-time": reference["fixed"]["delay"], "max-pressure": max_pressure},
        out / "learning_curve.png",
        f"{args.algo} (shared) on {args.scenario}, 2 env runners",
    )

    lines = [
        f"# Learning: {args.algo} with a shared policy on {args.scenario}",
        "",
        "Generated by",
        "",
        f"    python benchmarks/learning.py --scenario {args.scenario} --algo {args.algo} --minutes {args.minutes:g}",
        "",
        f"Training: `{args.config}` with a budget of {args.minutes:g} wall-clock minutes on this machine (2 cores, no GPU), "
        f"2 env runners; {state['timesteps']} env steps in {state['iteration']} iterations and "
        f"{state['time_s'] / 60:.1f} minutes; it ended on: {state.get('stop_reason')}. The evaluated checkpoint "
        f"is the run's best by evaluation delay (iteration {state['best']['iteration']}, "
        f"{state['best']['timesteps']} env steps).",
        "",
        f"Comparison: `marlo benchmark` on SUMO seeds {args.seeds}, which training never used (its seeds start at "
        "100000), one episode of 3600 s per seed, mean ± 95% CI over the seeds; delay in seconds per vehicle.",
        "",
        "| demand scale | fixed-time | max-pressure | trained policy | policy vs max-pressure |",
        "|---|---|---|---|---|",
    ]
    for scale, result in results.items():
        ours, mp = result[policy]["delay"], result["max_pressure"]["delay"]
        lines.append(
            f"| {scale:g} | {result['fixed']['delay']:.2f} ± {result['fixed']['delay_ci']:.2f} | "
            f"{mp:.2f} ± {result['max_pressure']['delay_ci']:.2f} | "
            f"{ours:.2f} ± {result[policy]['delay_ci']:.2f} | {100 * (ours - mp) / mp:+.1f}% |"
        )
    beaten = [scale for scale, result in results.items() if result[policy]["delay"] < result["max_pressure"]["delay"]]
    lines += [
        "",
        f"The trained policy beats max-pressure at demand scales: {', '.join(f'{s:g}' for s in beaten) or 'none'} "
        f"(of {', '.join(f'{s:g}' for s in scales)}).",
        "",
        (
            "Evaluation delay during training first dropped below max-pressure's "
            f"({max_pressure:.2f} s) after {float(below['time_s']) / 60:.1f} minutes of training "
            f"(iteration {below['iteration']}, {below['timesteps']} env steps)."
            if below
            else f"Evaluation delay during training never dropped below max-pressure's ({max_pressure:.2f} s)."
        ),
        "",
        f"![learning curve](learning/{args.scenario}/learning_curve.png)",
        "",
        "The curve's evaluation points are single greedy episodes on evaluation seeds (from 105000), so they are",
        "noisier than the table. Full tables (all metrics) are in "
        f"`docs/learning/{args.scenario}/scale_*/comparison.md`; the training log is `progress.csv` there.",
        "",
    ]
    write_section(REPO / args.doc, f"learning {args.algo} {args.scenario}", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
