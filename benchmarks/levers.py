"""Learning levers, screened at an equal env-step budget (or, with --minutes, wall clock): each
variant is the default `marlo train` plus a few `--set` overrides, its best checkpoint evaluated on
held-out SUMO seeds next to the classic controllers.

    python benchmarks/levers.py --scenario cologne8 --timesteps 100000 --work runs/levers/cologne8
    python benchmarks/levers.py --scenario cologne8 --minutes 20 --variants acc_wait,phase_obs --screen wallclock

A step budget keeps the screen fair when the machine is shared; --minutes judges at equal wall
clock, as the suite (benchmarks/suite.py) judges the defaults. Variants already trained
and evaluated in --work are reused. Writes the section "levers MAP" (or "levers MAP SCREEN") of
docs/LEARNING.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sections import write_section

REPO = Path(__file__).resolve().parents[1]
LEARNING = REPO / "docs" / "LEARNING.md"
BASELINES = ("fixed", "max_pressure", "greedy")
NO_ID = ["--set", "env.agent_id=false"]
GAMMA_95 = ["--set", "training.gamma=0.95", "--set", "training.lambda_=0.9", *NO_ID]
SEED_004_GAMMA = ["--set", "training.gamma=0.995", "--set", "training.lambda_=0.95", *NO_ID]
PLAIN_OPTIMISER = [
    f"--set=training.{key}={value}"
    for key, value in (
        ("lr", "2.0e-5"),
        ("clip_param", 0.4),
        ("entropy_coeff", 0.1),
        ("vf_loss_coeff", 0.25),
        ("train_batch_size_per_learner", 512),
        ("minibatch_size", 64),
        ("num_epochs", 10),
    )
    # a 512-env-step batch: evaluate every 8th iteration, at the default's cadence of 4096 env steps
] + ["--set=evaluation.interval=8"]
MORE_UPDATES = [
    "--set=training.train_batch_size_per_learner=2048",
    "--set=training.minibatch_size=256",
    "--set=training.num_epochs=10",
]
SMALL_NET = ["--set", "model.fcnet_hiddens=[64, 64]"]
NO_PENDING = ["--set", "env.reward_params={pending: 0}"]
BATCH_4096 = ["--set=training.train_batch_size_per_learner=4096", "--set=evaluation.interval=1"]
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "gamma995": ("gamma 0.995, lambda 0.95 (the preset before this screen)", SEED_004_GAMMA),
    "gamma95": ("gamma 0.95, lambda 0.9", GAMMA_95),
    "gamma95_queue": ("gamma 0.95, lambda 0.9, reward queue", [*GAMMA_95, "--set", "env.reward=queue"]),
    "gamma95_indep": ("gamma 0.95, lambda 0.9, one module per junction", [*GAMMA_95, "--policy", "independent"]),
    "gamma95_id": (
        "gamma 0.95, lambda 0.9, junction one-hot in the observation (the default now)",
        ["--set", "training.gamma=0.95", "--set", "training.lambda_=0.9", "--set", "env.agent_id=true"],
    ),
    "lr_decay": (
        "the default, lr 5e-4 decaying linearly to 5e-5 over 300k env steps",
        ["--set", "training.lr=[[0, 5.0e-4], [300000, 5.0e-5]]"],
    ),
    "acc_wait": (
        "the default, reward diff-accumulated-waiting (sumo-rl's diff-waiting-time)",
        ["--set", "env.reward=diff-accumulated-waiting"],
    ),
    "acc_wait_long_green": (
        "acc_wait, greens never cut (max_green 1000 s, as sumo-rl ignores its max_green)",
        ["--set", "env.reward=diff-accumulated-waiting", "--set", "env.timing.max_green=1000"],
    ),
    "indep": ("the default, one module per junction", ["--policy", "independent"]),
    "plain_optim": (
        "the default, the plain pipeline's PPO settings (lr 2e-5, clip 0.4, entropy 0.1, vf 0.25, "
        "batch 512, minibatch 64, 10 epochs), evaluated every 8 iterations",
        PLAIN_OPTIMISER,
    ),
    "phase_obs": ("the default, observation phase (per green: what it serves)", ["--set", "env.observation=phase"]),
    "lane_obs": (
        "the default, observation default (sumo-rl's per-lane densities and queues; the default before phase)",
        ["--set", "env.observation=default"],
    ),
    "pressure_obs": (
        "the default, observation pressure (per incoming lane: its density minus its exits')",
        ["--set", "env.observation=pressure"],
    ),
    "phase_model": (
        "observation phase, one network scoring every green (model.encoder phase, FRAP-like)",
        ["--set", "env.observation=phase", "--set", "model.encoder=phase"],
    ),
    "phase_more_updates": (
        "phase_model with more_updates' optimiser (batch 2048, minibatch 256, 10 epochs)",
        ["--set", "env.observation=phase", "--set", "model.encoder=phase", *MORE_UPDATES],
    ),
    "no_id": ("the default without the junction one-hot (env.agent_id false)", ["--set", "env.agent_id=false"]),
    "whole_budget": (
        "the default, trained for the whole budget (no plateau stop: stop.patience 1000)",
        ["--set", "stop.patience=1000"],
    ),
    "more_updates": (
        "the default, batch 2048, minibatch 256, 10 epochs (6.7x the updates per env step)",
        MORE_UPDATES,
    ),
    "default": ("the default", []),
    # with a `default` run of an earlier tree copied into --work: the same settings on today's code
    "rerun": ("the default, trained again on this tree", []),
    "small_net": ("the default with hidden layers of 64 and 64 (not 256 and 256)", SMALL_NET),
    "small_net_more_updates": (
        "small_net, minibatch 512, 10 epochs (3.3x the default's updates per env step)",
        [*SMALL_NET, "--set=training.minibatch_size=512", "--set=training.num_epochs=10"],
    ),
    "adv_per_junction": (
        "the default, PPO advantages standardised per junction, not over the shared module's batch",
        ["--set", "training.advantages_per_junction=true"],
    ),
    "no_pending": (
        "the default reward blind to vehicles SUMO cannot insert (env.reward_params {pending: 0}, sumo-rl's)",
        NO_PENDING,
    ),
    "demand_range": (
        "the default, each training episode's demand scale drawn from [0.7, 1.3] (evaluated during training at 1.0)",
        ["--set", "env.demand_scale=[0.7, 1.3]"],
    ),
    "pressure_reward": (
        "the default, reward pressure (minus the vehicles on the incoming lanes, plus those on the outgoing)",
        ["--set", "env.reward=pressure"],
    ),
    "time_loss_reward": (
        "the default, reward time-loss (minus the time SUMO says the approaching vehicles lost in the step)",
        ["--set", "env.reward=time-loss"],
    ),
    "half_batch": (
        "the default, batches of 2,048 env steps (not 4,096), evaluated every 2nd iteration (the same cadence)",
        ["--set=training.train_batch_size_per_learner=2048", "--set=evaluation.interval=2"],
    ),
    "batch_4096": (
        "batches of 4,096 env steps, evaluated every iteration (the CPU preset before the batch screens)",
        BATCH_4096,
    ),
    "suite_defaults": (
        "the defaults of the suite's first runs (248d460): 256 x 256, batches of 4,096 evaluated every iteration, "
        "no pending reward term",
        ["--set=model.fcnet_hiddens=[256, 256]", *BATCH_4096, *NO_PENDING],
    ),
    "eval_every_2": (
        "the default, an evaluation episode every 2nd iteration (evaluation.interval 2), not every one",
        ["--set", "evaluation.interval=2"],
    ),
}


def marlo(args: list[str], log: Path) -> None:
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="ray", dir="/tmp")}
    try:
        with log.open("w") as stream:
            subprocess.run(
                [sys.executable, "-m", "marlo_rllib.cli", *args],
                cwd=REPO,
                env=env,
                stdout=stream,
                stderr=subprocess.STDOUT,
                check=True,
            )
    finally:
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)


def aggregate(path: Path) -> dict[str, dict]:
    """Each controller's summary, with its worst seed's delay (`worst_delay`)."""
    metrics = json.loads((path / "metrics.json").read_text())
    summary = metrics["aggregate"]
    for episode in metrics["episodes"]:
        row = summary[episode["controller"]]
        row["worst_delay"] = max(row.get("worst_delay", 0.0), episode["metrics"]["delay"])
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="cologne8")
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--minutes", type=float, default=None, help="a wall-clock budget instead of --timesteps")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--demands", default="1.0", help="comma-separated demand scales to evaluate at")
    parser.add_argument("--work", default=None, help="folder for the runs (default runs/levers/SCENARIO)")
    parser.add_argument("--screen", default="", help="names the section, so that screens of one map sit side by side")
    args = parser.parse_args()
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        parser.exit(
            2,
            f"levers.py: error: unknown variant {unknown[0] if unknown else '(none)'}; valid: {', '.join(VARIANTS)}\n",
        )
    if args.timesteps < 1:
        parser.exit(2, f"levers.py: error: --timesteps must be at least 1, got {args.timesteps}\n")
    if args.minutes is not None and not args.minutes > 0:
        parser.exit(2, f"levers.py: error: --minutes must be positive, got {args.minutes}\n")
    try:
        demands = [float(d) for d in args.demands.split(",")]
    except ValueError:
        demands = []
    if not demands or not all(0 < d < float("inf") for d in demands):
        parser.exit(2, f"levers.py: error: --demands must be positive numbers, got {args.demands!r}\n")
    budget = ["--minutes", f"{args.minutes:g}"] if args.minutes else ["--timesteps", str(args.timesteps)]
    work = Path(args.work or REPO / "runs" / "levers" / args.scenario)
    work.mkdir(parents=True, exist_ok=True)
    seeds = ["--seeds", args.seeds]

    def evaluate(controllers: str, out: Path, demand: float, log: Path) -> dict[str, dict]:
        """Evaluated once: the aggregate of `out` (at demand 1.0) or of `out`_DEMAND."""
        folder = out if demand == 1.0 else out.with_name(f"{out.name}_{demand:g}")
        if not (folder / "metrics.json").is_file():
            scale = ["--demand-scale", f"{demand:g}"]
            command = ["benchmark", "--scenario", args.scenario, "--controllers", controllers, *seeds, *scale]
            marlo([*command, "--out", str(folder)], log.with_name(f"{folder.name}.log"))
        return aggregate(folder)

    rows: dict[str, dict[float, dict]] = {name: {} for name in BASELINES}
    for demand in demands:
        baselines = evaluate(",".join(BASELINES), work / "baselines", demand, work / "baselines.log")
        for name in BASELINES:
            rows[name][demand] = baselines[name]
    last_progress: dict[str, dict[str, str]] = {}  # each variant's final progress.csv row
    for name in names:
        run = work / name
        if not (run / "state.json").is_file():
            marlo(
                [
                    "train",
                    "--scenario",
                    args.scenario,
                    *budget,
                    "--out",
                    str(work),
                    "--run-name",
                    name,
                    *VARIANTS[name][1],
                ],
                work / f"{name}.train.log",
            )
        rows[name] = {
            d: next(iter(evaluate(f"ckpt:{run}", run / "eval", d, work / f"{name}.eval.log").values())) for d in demands
        }
        with (run / "progress.csv").open() as progress:
            last_progress[name] = list(csv.DictReader(progress))[-1]
        print(name, ", ".join(f"{d:g}: {rows[name][d]['delay']['mean']:.2f}" for d in demands), flush=True)

    reference = {d: rows["max_pressure"][d]["delay"]["mean"] for d in demands}
    screen = f" --screen {shlex.quote(args.screen)}" if args.screen else ""
    lines = [
        "Generated by",
        "",
        f"    python benchmarks/levers.py --scenario {args.scenario} {' '.join(budget)}"
        f" --variants {','.join(names)}{screen}" + (f" --demands {args.demands}" if demands != [1.0] else ""),
        "",
        f"Each variant: `marlo train --scenario {args.scenario} {' '.join(budget)}` with the overrides named, "
        f"its best checkpoint (by evaluation delay); SUMO seeds {args.seeds} at demand "
        f"{', '.join(f'{d:g}' for d in demands)}, one episode each, mean ± 95% CI (the worst seed's delay in "
        "brackets). Minutes are wall clock on 2 cores (the machine was shared during some runs, so "
        "compare delays, not minutes).",
        "",
        "| controller | "
        + " | ".join(f"delay at {d:g} (s) | waiting (s) | vs max-pressure" for d in demands)
        + " | training minutes | env steps trained |",
        "|---|" + "---|---|---|" * len(demands) + "---|---|",
    ]
    for name, by_demand in rows.items():
        label = f"{name}: {VARIANTS[name][0]}" if name in VARIANTS else name
        cells = [
            f"{row['delay']['mean']:.2f} ± {row['delay']['ci95']:.2f} [{row['worst_delay']:.0f}] | "
            f"{row['waiting_time']['mean']:.2f} | {row['delay']['mean'] / reference[d]:.3f}"
            for d, row in by_demand.items()
        ]
        last = last_progress.get(name)
        trained = f"{float(last['time_s']) / 60:.1f} | {int(last['timesteps']):,}" if last else "- | -"
        lines.append(f"| {label} | {' | '.join(cells)} | {trained} |")
    title = f"levers {args.scenario}" + (f" {args.screen}" if args.screen else "")
    write_section(
        LEARNING,
        title,
        [f"## Learning levers on {args.scenario}" + (f": {args.screen}" if args.screen else ""), "", *lines],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
