"""Online adaptation under demand drift: the frozen policy against the one `marlo adapt` fine-tuned,
and max-pressure, on the drifted demand and held-out SUMO seeds; and a no-drift control that
counts how often the trigger fires when nothing changed.

    python benchmarks/adapt.py --scenario grid4x4 --demand-scale 1.4 --frozen runs/suite/grid4x4/marlo
    python benchmarks/adapt.py --scenario grid6 --traffic evening_heldout

Without --frozen, the frozen policy is the default `marlo train --scenario S --minutes 20`. With
--oracle, a policy trained from scratch on the drifted demand for the same minutes joins the table:
what training on the new demand reaches at all, the yardstick for what fine-tuning could win. Steps
already done in --work are reused. Writes the section "adapt MAP" of docs/LEARNING.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

from levers import marlo
from sections import write_section

REPO = Path(__file__).resolve().parents[1]
LEARNING = REPO / "docs" / "LEARNING.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="grid4x4")
    parser.add_argument("--demand-scale", type=float, default=None, help="the drifted demand's SUMO --scale")
    parser.add_argument("--traffic", default=None, help="the drifted demand: a generated scenario's traffic by name")
    parser.add_argument("--frozen", default=None, help="the deployed run (default: train one for --minutes)")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget of the frozen policy")
    parser.add_argument("--oracle", action="store_true", help="also train from scratch on the drifted demand")
    parser.add_argument("--finetune-minutes", type=float, default=10.0)
    parser.add_argument("--buckets", type=int, default=6, help="buckets of the drift run (the control runs 10)")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="held-out evaluation seeds")
    parser.add_argument("--work", default=None, help="folder for the runs (default runs/adapt/SCENARIO)")
    args = parser.parse_args()
    if args.demand_scale is None and args.traffic is None:
        parser.exit(2, "adapt.py: error: name the drift: --demand-scale and/or --traffic\n")
    work = Path(args.work or REPO / "runs" / "adapt" / args.scenario).resolve()
    work.mkdir(parents=True, exist_ok=True)
    frozen = Path(args.frozen).resolve() if args.frozen else work / "frozen"
    drift = [
        *(["--demand-scale", str(args.demand_scale)] if args.demand_scale else []),
        *(["--traffic", args.traffic] if args.traffic else []),
    ]
    drift_settings = [
        *(["--set", f"env.demand_scale={args.demand_scale}"] if args.demand_scale else []),
        *(["--set", f"env.traffic_scenario={args.traffic}"] if args.traffic else []),
    ]
    trainings: dict[str, list[str]] = {} if args.frozen else {"frozen": []}
    if args.oracle:
        trainings["oracle"] = drift_settings
    for name, settings in trainings.items():
        if not (work / name / "state.json").is_file():
            train = ["train", "--scenario", args.scenario, "--minutes", str(args.minutes), *settings]
            marlo([*train, "--out", str(work), "--run-name", name], work / f"{name}.log")
    common = ["adapt", "--checkpoint", str(frozen), "--scenario", args.scenario]
    if not (work / "control" / "adapt.csv").is_file():
        marlo([*common, "--buckets", "10", "--out", str(work / "control")], work / "control.log")
    if not (work / "drift" / "adapt.csv").is_file():
        marlo(
            [
                *common,
                *drift,
                "--buckets",
                str(args.buckets),
                "--finetune-minutes",
                str(args.finetune_minutes),
                "--out",
                str(work / "drift"),
            ],
            work / "drift.log",
        )
    control = list(csv.DictReader((work / "control" / "adapt.csv").open()))
    log = list(csv.DictReader((work / "drift" / "adapt.csv").open()))
    fine_tuned = next((row for row in reversed(log) if row["finetuned"]), None)
    names = {f"ckpt:{frozen}": "frozen"}
    if fine_tuned:
        deployed = fine_tuned["adopted"] == "True"
        names[f"ckpt:{fine_tuned['finetuned']}"] = "adapted" if deployed else "fine-tuned, not deployed"
    if args.oracle:
        names[f"ckpt:{work / 'oracle'}"] = "oracle"
    names["max_pressure"] = "max_pressure"
    controllers = list(names)
    evaluation = work / "eval"
    scored = evaluation / "metrics.json"
    if not scored.is_file() or not set(controllers) <= set(json.loads(scored.read_text())["aggregate"]):
        marlo(
            [
                "benchmark",
                "--scenario",
                args.scenario,
                *drift,
                "--seeds",
                args.seeds,
                "--controllers",
                ",".join(controllers),
                "--out",
                str(evaluation),
            ],
            work / "eval.log",
        )
    aggregate = json.loads((evaluation / "metrics.json").read_text())["aggregate"]
    rows = {names[c]: aggregate[c]["delay"] for c in controllers}

    drift_text = " ".join(drift)
    lines = [
        f"## Online adaptation on {args.scenario}: {drift_text}",
        "",
        "Generated by",
        "",
        f"    python benchmarks/adapt.py --scenario {args.scenario} {drift_text}"
        + (f" --frozen {args.frozen}" if args.frozen else f" --minutes {args.minutes:g}")
        + (" --oracle" if args.oracle else "")
        + f" --finetune-minutes {args.finetune_minutes:g} --buckets {args.buckets}",
        "",
        f"The frozen policy: {frozen.name} (trained on the scenario's own demand). `marlo adapt` deploys it for "
        f"{args.buckets} buckets of one SUMO episode, the first two on the training demand, the rest on {drift_text}; "
        f"MMD to 2 reference episodes on the training demand, ratio 1.5, {args.finetune_minutes:g} minutes of "
        f"fine-tuning per trigger; a fine-tuned policy is deployed only if it beats the one in force on the "
        f"triggering bucket's seeds (`--adopt better`), so without one the adapted policy is the frozen one. "
        f"Evaluation on {drift_text}, held-out SUMO seeds {args.seeds}, mean ± 95% CI."
        + (
            f" The oracle: the default `marlo train` for {args.minutes:g} minutes from scratch on {drift_text}."
            if args.oracle
            else ""
        ),
        "",
        "| controller | delay (s) | vs frozen | vs max-pressure |",
        "|---|---|---|---|",
    ]
    for name, delay in rows.items():
        lines.append(
            f"| {name} | {delay['mean']:.2f} ± {delay['ci95']:.2f} | {delay['mean'] / rows['frozen']['mean']:.3f} | "
            f"{delay['mean'] / rows['max_pressure']['mean']:.3f} |"
        )
    lines += [
        "",
        "Deployment log (drift run):",
        "",
        "| bucket | demand | delay (s) | MMD | fine-tuned | its delay on the bucket's seeds (s) | deployed |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in log:
        demand = f"{row['demand_scale']} {row['traffic']}".strip()
        lines.append(
            f"| {row['bucket']} | {demand} | {float(row['delay']):.2f} | {float(row['mmd']):.4f} | "
            f"{'yes' if row['triggered'] == 'True' else ''} | {row['finetuned_delay']} | "
            f"{'yes' if row['adopted'] == 'True' else ''} |"
        )
    fired = sum(row["triggered"] == "True" for row in control)
    mmds = ", ".join(f"{float(row['mmd']):.4f}" for row in control)
    lines += [
        "",
        f"No-drift control (10 buckets on the training demand): the trigger fired in {fired} of {len(control)}; "
        f"MMDs {mmds}.",
    ]
    plot = REPO / "docs" / "learning" / f"adapt_{args.scenario}.png"
    shutil.copyfile(work / "drift" / "adapt.png", plot)
    lines += ["", f"![MMD and delay per bucket of the drift run]({plot.relative_to(LEARNING.parent)})"]
    write_section(LEARNING, f"adapt {args.scenario}", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
