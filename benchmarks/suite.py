"""The standing benchmark: what the default `marlo train` gives on each map, against the classic
controllers and against the plain sumo-rl + stock RLlib PPO pipeline, on held-out seeds.

    python benchmarks/suite.py --maps grid4x4,cologne8 --minutes 20

Per map:
- `marlo train --scenario MAP --minutes M` exactly as a user types it (training SUMO seeds start
  at 100000), and its `best` checkpoint;
- on grid4x4, cologne8 and arterial4x4, the plain contender (benchmarks/plain_pipeline.py) for
  the same wall-clock budget, its final weights;
- `marlo benchmark` with fixed, actuated, max-pressure, greedy and the policy on SUMO seeds 0-4 at
  demand scales 0.8, 1.0 and 1.2 (grid6: also its evaluation-only demand), the plain policy on the
  same seeds; mean ± 95% CI, delay relative to max-pressure.
Each map's section of docs/RESULTS.md is rewritten as soon as the map is done; raw files go to
docs/results/MAP/. A map whose training already finished in --work is not trained again, and an
evaluation already run in --work for the same command and checkpoint is not run again.

With `--timing resco`, marlo trains and every controller runs at RESCO's decision timing (10 s
decisions, 3 s yellows; 5 s and 2 s on arterial4x4), without the plain contender, and a section
"suite MAP resco" sets the results beside RESCO's published delays.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sections import write_section

REPO = Path(__file__).resolve().parents[1]
MAPS = (
    "grid4x4",
    "arterial4x4",
    "cologne1",
    "cologne3",
    "cologne8",
    "ingolstadt1",
    "ingolstadt7",
    "ingolstadt21",
    "grid6",
)
PLAIN_MAPS = ("grid4x4", "cologne8", "arterial4x4")
# RESCO's published delays (Ault & Sharon 2021, read off delays.png of their repository, about ±5%), SUMO 1.9
RESCO_PUBLISHED = {
    "grid4x4": 34,
    "arterial4x4": 650,
    "cologne1": 27,
    "cologne3": 18,
    "cologne8": 22,
    "ingolstadt1": 20,
    "ingolstadt7": 31,
    "ingolstadt21": 67,
}
BASELINES = ("fixed", "actuated", "max_pressure", "greedy")
SCALES = (0.8, 1.0, 1.2)
RESULTS = REPO / "docs" / "RESULTS.md"
# Importing plain_pipeline switches traci to libsumo, and libsumo then points SUMO_HOME at its own
# data folder: the commands run here get the environment as it was before.
CLEAN_ENV = dict(os.environ)


def run(command: list[str], log: Path) -> None:
    print("$ " + " ".join(command), flush=True)
    env = {**CLEAN_ENV, "RAY_TMPDIR": tempfile.mkdtemp(prefix="ray", dir="/tmp")}
    try:
        with log.open("w") as stream:
            subprocess.run(command, cwd=REPO, env=env, stdout=stream, stderr=subprocess.STDOUT, check=True)
    finally:
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)


def marlo(*args: str) -> list[str]:
    return [sys.executable, "-m", "marlo_rllib.cli", *args]


def timing_args(name: str, resco: bool) -> list[str]:
    """marlo train's overrides for RESCO's timing."""
    from marlo_rllib.evaluation.runner import resco_timing

    return (
        [arg for key, value in resco_timing(name).items() for arg in ("--set", f"env.timing.{key}={value}")]
        if resco
        else []
    )


def train_marlo(name: str, minutes: float, work: Path, resco: bool) -> Path:
    run_dir = work / "marlo"
    state = run_dir / "state.json"
    if not (state.exists() and json.loads(state.read_text())["status"] == "finished"):
        shutil.rmtree(run_dir, ignore_errors=True)
        run(
            marlo(
                "train",
                "--scenario",
                name,
                "--minutes",
                str(minutes),
                "--out",
                str(work),
                "--run-name",
                "marlo",
                *timing_args(name, resco),
            ),
            work / "train.log",
        )
    return run_dir


def train_plain(name: str, minutes: float, work: Path) -> Path:
    out = work / "plain"
    if not (out / "plain.json").exists():
        run(
            [
                sys.executable,
                str(REPO / "benchmarks" / "plain_pipeline.py"),
                "train",
                "--scenario",
                name,
                "--minutes",
                str(minutes),
                "--out",
                str(out),
            ],
            work / "plain_train.log",
        )
    return out


def evaluate(
    name: str,
    run_dir: Path,
    plain: Path | None,
    seeds: list[int],
    scale: float,
    traffic: str | None,
    work: Path,
    resco: bool,
) -> dict[str, dict[str, float]]:
    """controller -> {delay, ci, ... every metric's mean} at one demand (scale, traffic)."""
    from marlo_rllib.evaluation.report import mean_ci

    label = f"scale_{scale:g}" + (f"_{traffic}" if traffic else "")
    out = work / label
    policy = f"ckpt:{run_dir}"
    command = marlo(
        "benchmark",
        "--scenario",
        name,
        "--controllers",
        ",".join([*BASELINES, policy]),
        "--seeds",
        ",".join(map(str, seeds)),
        "--demand-scale",
        str(scale),
        "--out",
        str(out),
        *(["--traffic", traffic] if traffic else []),
        *(["--timing", "resco"] if resco else []),
    )
    # An evaluation is reused while its command and the checkpoint it scored are the same.
    request = {"command": command[1:], "best": json.loads((run_dir / "state.json").read_text())["best"]}
    done = out / "request.json"
    if not ((out / "metrics.json").is_file() and done.is_file() and json.loads(done.read_text()) == request):
        done.unlink(missing_ok=True)
        run(command, work / f"{label}.log")
        done.write_text(json.dumps(request, indent=1) + "\n")
    aggregate = json.loads((out / "metrics.json").read_text())["aggregate"]
    rows = {
        ("marlo" if c == policy else c): {m: s["mean"] for m, s in summary.items()} | {"ci": summary["delay"]["ci95"]}
        for c, summary in aggregate.items()
    }
    if plain is not None and traffic is None:
        cached = out / "plain.json"  # reused while newer than the plain run's weights and on the same seeds
        fresh = cached.is_file() and cached.stat().st_mtime > (plain / "plain.json").stat().st_mtime
        episodes = json.loads(cached.read_text()) if fresh else []
        if [e["seed"] for e in episodes] != seeds:
            # imported only here: it makes every later `import traci` in this process (and its children) libsumo's
            from plain_pipeline import evaluate as evaluate_plain

            episodes = evaluate_plain(name, plain, seeds, scale)
        mean, ci = mean_ci([e["delay"] for e in episodes])
        rows["plain"] = {
            "delay": mean,
            "ci": ci,
            **{m: mean_ci([e[m] for e in episodes])[0] for m in ("trip_time", "waiting_time", "throughput")},
        }
        (out / "plain.json").write_text(json.dumps(episodes, indent=1) + "\n")
    return rows


def demand_key(scale: float, traffic: str | None = None) -> str:
    """A row of a map's tables: the demand scale, and the traffic when it is not the training one."""
    return f"{scale:g}" + (f" ({traffic})" if traffic else "")


def evaluated_iterations(run_dir: Path) -> list[dict[str, str]]:
    """The rows of a run's progress.csv that carry an evaluation delay, in order."""
    import csv

    with (run_dir / "progress.csv").open() as rows:
        return [row for row in csv.DictReader(rows) if row["eval_delay"]]


def plot_curve(run_dir: Path, references: dict[str, float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = evaluated_iterations(run_dir)
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(
        [float(r["time_s"]) / 60 for r in rows],
        [float(r["eval_delay"]) for r in rows],
        "o-",
        label="marlo (evaluation episode)",
    )
    for (label, value), style in zip(references.items(), ("--", ":", "-."), strict=False):
        axis.axhline(value, linestyle=style, color="gray", label=f"{label} ({value:.1f} s)")
    axis.set(xlabel="training wall-clock (minutes)", ylabel="delay (s/vehicle)", title=title)
    axis.set_yscale("log")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def minutes_to_reach(run_dir: Path, delay: float) -> tuple[float, int] | None:
    """Wall-clock minutes and iteration at which training's evaluation episode first scored `delay` or less."""
    for row in evaluated_iterations(run_dir):
        if float(row["eval_delay"]) <= delay:
            return float(row["time_s"]) / 60, int(row["iteration"])
    return None


def write_map(
    name: str,
    tables: dict[str, dict],
    run_dir: Path,
    plain: Path | None,
    command: str,
    minutes: float,
    seeds: list[int],
    resco: bool,
) -> None:
    label = f"{name} resco" if resco else name
    docs = REPO / "docs" / "results" / label.replace(" ", "_")
    docs.mkdir(parents=True, exist_ok=True)
    shutil.copy(run_dir / "progress.csv", docs / "progress.csv")
    (docs / "tables.json").write_text(json.dumps(tables, indent=1) + "\n")
    state = json.loads((run_dir / "state.json").read_text())
    best = state.get("best") or {}
    plain_info = json.loads((plain / "plain.json").read_text()) if plain else None
    from marlo_rllib.scenarios import load_scenario

    # the demand training's evaluation episodes ran: a table row only if it is not the default one
    evaluated_traffic = json.loads((run_dir / "metadata.json").read_text())["env_config"].get(
        "evaluation_traffic_scenario"
    )
    default_traffic = next(iter(load_scenario(name).training_traffic), None)
    evaluated = demand_key(1.0, None if evaluated_traffic == default_traffic else evaluated_traffic)
    base = tables[evaluated]
    plot_curve(
        run_dir,
        {
            "max-pressure": base["max_pressure"]["delay"],
            "fixed-time": base["fixed"]["delay"],
            **({"plain (final)": base["plain"]["delay"]} if "plain" in base else {}),
        },
        docs / "learning_curve.png",
        f"{label}: evaluation delay while training (demand {evaluated})",
    )
    train = " ".join(["marlo train --scenario", name, "--minutes", f"{minutes:g}", *timing_args(name, resco)])
    lines = [
        f"## {name}" + (" at RESCO's timing" if resco else ""),
        "",
        "Generated by",
        "",
        f"    {command}",
        "",
        f"marlo: `{train}` (all other settings default), {state['timesteps']} env steps in "
        f"{state['iteration']} iterations, {state['time_s'] / 60:.1f} minutes; evaluated: its best checkpoint "
        f"(iteration {best.get('iteration')}, {best.get('timesteps')} env steps, by evaluation delay).",
    ]
    chosen = state.get("actions")
    if chosen:
        from marlo_rllib.training.actions import describe_delays

        lines.append(
            f"It acts {chosen['actions']}, as the run chose after training (evaluation.actions auto; mean delay "
            f"{describe_delays(chosen)} on training-side SUMO seeds {', '.join(map(str, chosen['seeds']))})."
        )
    reached = minutes_to_reach(run_dir, base["max_pressure"]["delay"])
    target = f"max-pressure's mean delay ({base['max_pressure']['delay']:.2f} s) at that demand"
    lines.append(
        f"Its greedy evaluation episode during training (demand {evaluated}) first scored {target} after {reached[0]:.1f} minutes "
        f"(iteration {reached[1]})."
        if reached
        else f"Its greedy evaluation episode during training (demand {evaluated}) never scored {target} within the budget."
    )
    if plain_info:
        lines.append(
            f"plain: sumo-rl's SumoEnvironment + stock RLlib PPO (sumo-rl's example settings, "
            f"{'one shared module' if plain_info['shared'] else 'one module per junction'}), "
            f"{int(plain_info['env_steps'])} env steps in {plain_info['iterations']} iterations; its final weights."
        )
    lines += [
        "",
        f"Delay in s/vehicle on SUMO seeds {','.join(map(str, seeds))} (never used in training), one episode "
        "each, mean ± 95% CI; the last columns compare with max-pressure (and marlo with plain).",
        "",
    ]
    if resco:
        lines += [
            f"Every controller at {' '.join(timing_args(name, resco)[1::2])}. RESCO's published delay for {name}: "
            f"{RESCO_PUBLISHED[name]} s (SUMO 1.9, read off their delays.png, about ±5%); this run's SUMO is "
            "newer and its car-following and insertion differ, so compare orders of magnitude, not digits.",
            "",
        ]
    controllers = [*BASELINES, "marlo", *(["plain"] if plain_info else [])]
    lines += [
        "| demand | "
        + " | ".join(controllers)
        + " | marlo vs max-pressure |"
        + (" marlo vs plain |" if plain_info else "")
        + (" marlo vs RESCO |" if resco else ""),
        "|---" * (len(controllers) + 2 + bool(plain_info) + resco) + "|",
    ]
    for demand, rows in tables.items():
        cells = [f"{rows[c]['delay']:.2f} ± {rows[c]['ci']:.2f}" if c in rows else "-" for c in controllers]
        ratio = f"{rows['marlo']['delay'] / rows['max_pressure']['delay']:.3f}"
        versus = (
            f" {rows['marlo']['delay'] / rows['plain']['delay']:.3f} |"
            if plain_info and "plain" in rows
            else (" - |" if plain_info else "")
        )
        published = (
            f" {rows['marlo']['delay'] / RESCO_PUBLISHED[name]:.3f} |"
            if resco and demand == "1"
            else (" - |" if resco else "")
        )
        lines.append(f"| {demand} | " + " | ".join(cells) + f" | {ratio} |" + versus + published)
    lines += [
        "",
        f"![learning curve](results/{docs.name}/learning_curve.png)",
        "",
        f"Raw: `docs/results/{docs.name}/` (progress.csv, tables.json with every metric's mean).",
    ]
    write_section(RESULTS, f"suite {label}", lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", default=",".join(MAPS), help=f"comma-separated, of {', '.join(MAPS)}")
    parser.add_argument("--minutes", type=float, default=20.0, help="training wall-clock budget per run (default 20)")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="evaluation SUMO seeds")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain contender")
    parser.add_argument("--work", default="runs/suite", help="training runs and raw evaluations (default runs/suite)")
    parser.add_argument(
        "--timing",
        choices=("scenario", "resco"),
        default="scenario",
        help="resco: RESCO's decision timing, and a table against RESCO's published delays",
    )
    args = parser.parse_args()
    maps = [m.strip() for m in args.maps.split(",") if m.strip()]
    resco = args.timing == "resco"
    unknown = [m for m in maps if m not in (RESCO_PUBLISHED if resco else MAPS)]
    if unknown or not maps:
        valid = ", ".join(RESCO_PUBLISHED if resco else MAPS)
        parser.exit(
            2,
            f"suite.py: error: unknown map {', '.join(unknown) or '(none)'}; valid{' with --timing resco' if resco else ''}: {valid}\n",
        )
    if not args.minutes > 0:
        parser.exit(2, f"suite.py: error: --minutes must be positive, got {args.minutes}\n")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.exit(2, f"suite.py: error: --seeds takes integers separated by commas, got {args.seeds!r}\n")
    if not seeds or min(seeds) < 0:
        parser.exit(2, "suite.py: error: --seeds must be integers >= 0\n")
    command = "python benchmarks/suite.py " + " ".join(sys.argv[1:])
    from marlo_rllib.scenarios import load_scenario

    for name in maps:
        work = (REPO / args.work / (f"{name}_resco" if resco else name)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        run_dir = train_marlo(name, args.minutes, work, resco)
        plain = train_plain(name, args.minutes, work) if name in PLAIN_MAPS and not (args.no_plain or resco) else None
        tables = {
            demand_key(scale): evaluate(name, run_dir, plain, seeds, scale, None, work, resco) for scale in SCALES
        }
        for traffic in load_scenario(name).evaluation_traffic:
            tables[demand_key(1.0, traffic)] = evaluate(name, run_dir, plain, seeds, 1.0, traffic, work, resco)
        write_map(name, tables, run_dir, plain, command, args.minutes, seeds, resco)
        print(
            f"{name}: "
            + ", ".join(
                f"{k}: marlo {v['marlo']['delay']:.1f} / max-pressure {v['max_pressure']['delay']:.1f}"
                for k, v in tables.items()
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
