"""The `marlo` command (also `python atc_cli.py`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from marlo_rllib import interrupts
from marlo_rllib.config import ExperimentConfig, describe
from marlo_rllib.errors import UserError
from marlo_rllib.layout import POLICY_LAYOUTS
from marlo_rllib.offline import COLLECT_SEED
from marlo_rllib.run_dir import writable_dir

if TYPE_CHECKING:
    from marlo_rllib.evaluation.plan import EvaluationPlan

SCHEDULERS = ("asha", "pbt", "none")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit status 2 (argparse prints the whole usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _scenarios_list(args: argparse.Namespace) -> None:
    from marlo_rllib.scenarios import catalog, load_scenario_file, summarize_net

    rows = []
    for name, path in catalog().items():
        spec = load_scenario_file(path)
        if spec.network is not None:  # counted from the spec: listing never builds
            junctions = agents = str(spec.network.signalised_junctions)
        else:
            assert spec.net is not None
            net = summarize_net(spec.net)
            junctions, agents = str(net.junctions), str(net.traffic_lights)
        rows.append((name, junctions, agents, str(spec.episode_seconds), spec.description))
    header = ("name", "junctions", "agents", "episode_s", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[4])


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip())


def _algos(args: argparse.Namespace) -> None:
    from marlo_rllib.algorithms import ALGORITHMS, get_algorithm
    from marlo_rllib.algorithms.spec import CAPABILITIES

    algorithms = [get_algorithm(name) for name in ALGORITHMS]
    _table(
        [("algorithm", *CAPABILITIES)]
        + [(a.name, *("yes" if getattr(a, c) else "no" for c in CAPABILITIES)) for a in algorithms]
    )
    for algorithm in algorithms:
        print(
            f"\n{algorithm.name} presets ({algorithm.config_class().__name__}.training() names and the "
            f"model's hidden layers; rollout fragment {algorithm.rollout_fragment_length} env steps)"
        )
        cpu, gpu = (
            _flat({**algorithm.presets[d], "model.fcnet_hiddens": list(algorithm.hidden_layers[d])})
            for d in ("cpu", "gpu")
        )
        _table([("key", "cpu", "gpu")] + [(key, str(cpu.get(key)), str(gpu.get(key))) for key in sorted({*cpu, *gpu})])
        if algorithm.caution:
            print(f"caution: {algorithm.caution}")


def _flat(settings: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in settings.items():
        flat.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def _scenarios_show(args: argparse.Namespace) -> None:
    from marlo_rllib.env import check_names
    from marlo_rllib.scenarios import load_scenario, summarize_net

    spec = load_scenario(args.name)
    check_names(spec)
    spec = spec.materialize()
    data = json.loads(spec.model_dump_json(exclude_none=True))
    traffic = data.pop("traffic")
    if traffic:  # the YAML's name for them; net, routes and begin above are the first one's
        data["scenarios"] = traffic
    assert spec.net is not None
    net = summarize_net(spec.net)
    data["source"] = str(spec.source)
    data["junctions"], data["agents"] = net.junctions, net.traffic_lights
    print(yaml.safe_dump(data, sort_keys=False).rstrip())


def _scenarios_build(args: argparse.Namespace) -> None:
    import hashlib

    from marlo_rllib.scenarios import load_scenario
    from marlo_rllib.scenarios.generate import build

    spec = load_scenario(args.name)
    if spec.network is None:
        raise UserError(
            f"{spec.name} is not generated: it uses the files {spec.net} and {', '.join(map(str, spec.routes))}"
        )
    started = time.perf_counter()
    folder, hit = build(spec.name, spec.network, spec.traffic, force=args.force)
    print(f"{spec.name}: {'cache hit' if hit else 'built'} in {time.perf_counter() - started:.1f} s: {folder}")
    for path in sorted(folder.glob("*.xml")):
        print(f"  {hashlib.sha256(path.read_bytes()).hexdigest()[:16]}  {path.name}")


def _scenarios_check(args: argparse.Namespace) -> int:
    from marlo_rllib.evaluation.scenario_check import check_scenario
    from marlo_rllib.scenarios import load_scenario

    spec = load_scenario(args.name)
    report = check_scenario(spec, args.seconds)
    errors = 0
    for traffic, findings in report.items():
        label = f"{spec.name}" + (f" / {traffic}" if traffic else "")
        if not findings:
            print(f"{label}: ok")
        for finding in findings:
            print(f"{label}: {finding.level}: {finding.message}")
            errors += finding.level == "error"
    return 1 if errors else 0


def _seeds(args: argparse.Namespace) -> list[int]:
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--seeds takes integers separated by commas, got {args.seeds!r}") from None
        if not seeds:
            raise UserError("--seeds is empty")
    else:
        if args.episodes < 1:
            raise UserError(f"--episodes must be at least 1, got {args.episodes}")
        seeds = list(range(args.seed, args.seed + args.episodes))
    return seeds


def _evaluation_plan(args: argparse.Namespace, controllers: list[str]) -> EvaluationPlan:
    from marlo_rllib.evaluation.plan import plan_evaluation

    return plan_evaluation(
        args.scenario,
        controllers,
        _seeds(args),
        args.out,
        demand_scale=args.demand_scale,
        seconds=args.seconds,
        traffic=args.traffic,
        timing=args.timing,
        workers=args.workers,
        command="marlo " + " ".join(sys.argv[1:]),
    )


def _eval(args: argparse.Namespace) -> None:
    from marlo_rllib.evaluation.plan import evaluate
    from marlo_rllib.evaluation.report import TABLE_METRICS

    controller = args.controller or f"ckpt:{args.checkpoint}"
    plan = _evaluation_plan(args, [controller])
    summary = evaluate(plan)
    print(f"{plan.spec.name}: {controller}, {len(plan.tasks)} episodes, seeds {plan.context['seeds']} (mean ± 95% CI)")
    for metric in TABLE_METRICS:
        print(f"  {metric:<14} {summary[metric]['mean']:10.2f} ± {summary[metric]['ci95']:.2f}")
    print(f"wrote {plan.out / 'metrics.json'} and {plan.out / 'metrics.csv'}")


def _benchmark(args: argparse.Namespace) -> None:
    from marlo_rllib.evaluation.plan import benchmark
    from marlo_rllib.evaluation.report import markdown_table

    plan = _evaluation_plan(args, [c.strip() for c in args.controllers.split(",") if c.strip()])
    aggregates = benchmark(plan)
    print(f"{plan.spec.name}: seeds {plan.context['seeds']}, mean ± 95% CI, {plan.context['wall_seconds']} s")
    print(markdown_table(aggregates))
    print(f"wrote {plan.out}/comparison.md, comparison.csv, bars.png, heatmap_*.png, metrics.json, metrics.csv")


def _collect(args: argparse.Namespace) -> None:
    from marlo_rllib.offline.collect import collect

    behaviours = [name.strip() for name in args.policy.split(",") if name.strip()]
    out = Path(args.out)
    info = collect(
        args.scenario,
        behaviours,
        args.episodes,
        out,
        epsilon=args.epsilon,
        seed=args.seed,
        gamma=args.gamma,
        episode_seconds=args.seconds,
        demand_scale=args.demand_scale,
        workers=args.workers,
        npz=args.format == "npz",
    )
    print(
        f"{info['scenario']}: {info['episodes']} episodes, {info['rows']} transitions "
        f"({len(info['spaces']['agents'])} junctions x {info['steps_per_episode']} steps per episode) "
        f"in {info['wall_seconds']} s"
    )
    for behaviour in info["behaviours"]:
        print(
            f"  {behaviour['name']:<24} delay {behaviour['mean_delay']:8.2f} s  mean reward {behaviour['mean_reward']:8.3f}"
        )
    print(
        f"  {'all (the dataset)':<24} delay {info['behaviour_mean_delay']:8.2f} s  mean reward {info['mean_reward']:8.3f}"
    )
    print(
        f"wrote {out / 'dataset.json'} and {out / 'data'}/*.parquet"
        + (f", {out / 'dataset.npz'}" if args.format == "npz" else "")
    )


def _adapt(args: argparse.Namespace) -> None:
    from marlo_rllib.adaptation.adapt import adapt, plan_adaptation

    plan = plan_adaptation(
        args.checkpoint,
        args.scenario,
        args.out,
        dataset=args.dataset,
        demand_scale=args.demand_scale,
        traffic=args.traffic,
        drift_at=args.drift_at,
        buckets=args.buckets,
        episodes_per_bucket=args.episodes_per_bucket,
        ratio=args.ratio,
        seed=args.seed,
        reference_episodes=args.reference_episodes,
        mmd_samples=args.mmd_samples,
        finetune_minutes=args.finetune_minutes,
        adopt=args.adopt,
        workers=args.workers,
    )
    try:
        rows = adapt(plan)
    finally:
        print(f"log: {plan.out / 'adapt.csv'}, plot: {plan.out / 'adapt.png'}")
    fine_tuned = [r["finetuned"] for r in rows if r["adopted"]]
    print(
        f"{len(rows)} buckets, {sum(bool(r['triggered']) for r in rows)} triggered; policy in force: "
        + (fine_tuned[-1] if fine_tuned else f"{plan.checkpoint} (no fine-tuned policy deployed)")
    )


def _composed(args: argparse.Namespace) -> ExperimentConfig:
    """The resolved experiment of a train or tune command line: defaults < preset < --config < flags and --set."""
    from marlo_rllib.config import compose, deep_merge, parse_set, read_experiment

    overrides = parse_set(args.set or [])
    flags = {
        "scenario": args.scenario,
        "algorithm": args.algo,
        "policy": args.policy,
        "seed": args.seed,
        "dataset": args.dataset,
        "resources": {
            "gpu": True if args.gpu else None,
            "num_env_runners": args.num_env_runners,
            "envs_per_env_runner": args.envs_per_env_runner,
            "num_learners": args.num_learners,
            "num_gpus_per_learner": args.num_gpus_per_learner,
            "ray_address": args.address,
        },
        "stop": {"timesteps": args.timesteps, "minutes": args.minutes},
        "checkpoint": {"every": args.checkpoint_every},
    }
    flags = {
        k: ({kk: vv for kk, vv in v.items() if vv is not None} if isinstance(v, dict) else v) for k, v in flags.items()
    }
    flags = {k: v for k, v in flags.items() if v not in (None, {})}
    experiment = read_experiment(args.config) if args.config else {}
    return compose(experiment, deep_merge(overrides, flags))


def _train(args: argparse.Namespace) -> int:
    from marlo_rllib.algorithms import get_algorithm as algorithm_spec
    from marlo_rllib.training.runner import prepare_run, resume_run, train

    command = "marlo " + " ".join(sys.argv[1:])
    if args.resume:
        settings = {
            "--scenario": args.scenario,
            "--algo": args.algo,
            "--config": args.config,
            "--set": args.set,
            "--resume-from": args.resume_from,
            "--policy": args.policy,
            "--gpu": args.gpu,
            "--num-env-runners": args.num_env_runners,
            "--envs-per-env-runner": args.envs_per_env_runner,
            "--seed": args.seed,
            "--num-learners": args.num_learners,
            "--num-gpus-per-learner": args.num_gpus_per_learner,
            "--checkpoint-every": args.checkpoint_every,
            "--run-name": args.run_name,
            "--dataset": args.dataset,
        }
        fixed = [flag for flag, value in settings.items() if value not in (None, False)]
        if fixed:
            raise UserError(f"--resume continues a run as it was configured; drop {', '.join(fixed)}")
        run_dir = Path(args.resume).resolve()
        config, restore, steps = resume_run(
            run_dir, timesteps=args.timesteps, minutes=args.minutes, address=args.address
        )
        weights = None
        print(f"resuming {run_dir} from {restore.name} at {steps} env steps")
    else:
        config = _composed(args)
        restore = None
        run_dir, weights = prepare_run(config, writable_dir(Path(args.out)), args.run_name, command, args.resume_from)
        print(f"training {config.algorithm} ({config.policy} policy) on {config.scenario}: {run_dir}")
        if caution := algorithm_spec(config.algorithm).caution:
            print(f"caution: {caution}", file=sys.stderr)
    state = train(run_dir, config, restore=restore, weights=weights, debug=args.debug)
    best = state.get("best") or {}
    print(
        f"{state['status']}: {state.get('stop_reason') or state.get('error', '')}; "
        f"{state['timesteps']} env steps in {state['time_s']:.0f} s"
    )
    if best:
        print(f"best checkpoint: {run_dir / best['checkpoint']} ({best['metric']} score {best['score']:.2f})")
    chosen = state.get("actions")
    if chosen and chosen["checkpoint"] == best.get("checkpoint"):
        from marlo_rllib.training.actions import describe_delays

        print(f"it acts {chosen['actions']}: mean delay {describe_delays(chosen)} on SUMO seeds {chosen['seeds']}")
    if state["status"] == "failed":
        print(f"marlo: training failed: {state.get('error')}", file=sys.stderr)
        return 1
    return 130 if state["status"] == "interrupted" else 0


def _tune(args: argparse.Namespace) -> int:
    from marlo_rllib.config import parse_set, read_experiment
    from marlo_rllib.training.runner import prepare_run
    from marlo_rllib.training.search import read_search
    from marlo_rllib.training.tuning import check_space, tune_search

    if args.num_samples < 1:
        raise UserError(f"--num-samples must be at least 1, got {args.num_samples}")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise UserError(f"--max-concurrent must be at least 1, got {args.max_concurrent}")
    config = _composed(args)
    space = read_search(args.search)
    check_space(
        space,
        read_experiment(args.config) if args.config else {},
        parse_set(args.set or [])
        | {"scenario": config.scenario, "algorithm": config.algorithm, "policy": config.policy},
    )
    command = "marlo " + " ".join(sys.argv[1:])
    name = args.run_name or f"tune_{config.algorithm}_{config.scenario}_{time.strftime('%Y%m%d-%H%M%S')}"
    search_dir, _ = prepare_run(config, writable_dir(Path(args.out)), name, command)
    print(f"searching {', '.join(space)} for {config.algorithm} on {config.scenario}: {search_dir}")
    rows = tune_search(
        search_dir,
        config,
        space,
        num_samples=args.num_samples,
        scheduler=args.scheduler,
        max_concurrent=args.max_concurrent,
        debug=args.debug,
    )
    searched = list(rows[0])[9:]
    for row in rows:
        values = ", ".join(
            f"{key}={row[key]:.4g}" if isinstance(row[key], float) else f"{key}={row[key]}" for key in searched
        )
        print(
            f"{row['trial']}: {row['status']}, {row['metric']} score {row['score']:.2f} after {row['timesteps']} env steps; {values}"
        )
    best = rows[0]
    print(f"best: {best['trial']} (score {best['score']:.2f}), checkpoint {best['checkpoint']}")
    print(
        f"summary: {search_dir / 'summary.csv'}; repeat the best with: marlo train --config {search_dir / 'best_config.yaml'}"
    )
    return 0


def _submit(args: argparse.Namespace) -> int:
    from marlo_rllib import cluster

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.slurm:
        script = cluster.render_slurm(
            command,
            nodes=args.nodes,
            cpus_per_node=args.cpus_per_node,
            gpus_per_node=args.gpus_per_node,
            time_limit=args.time,
            setup=args.setup,
        )
        _check_marlo_command(command)
        if args.output:
            output = Path(args.output)
            if output.exists():
                raise UserError(f"--output {output} exists; remove it or name another file")
            try:
                output.write_text(script)
            except OSError as exc:
                raise UserError(f"cannot write --output {output}: {exc.strerror}") from None
            print(f"wrote {args.output}; submit it with: sbatch {args.output}")
        else:
            print(script, end="")
        return 0
    if not args.address:
        raise UserError("submit needs --address http://HOST:8265 (or --slurm to render a SLURM script)")
    chosen = [flag for flag in ("status", "logs", "stop") if getattr(args, flag)]
    if bool(command) == bool(chosen) or len(chosen) > 1:
        raise UserError("submit takes either a marlo command after --, or one of --status, --logs, --stop JOB_ID")
    if chosen:
        jobs, job_id = cluster.client(args.address), getattr(args, chosen[0])
        if chosen[0] == "status":
            print(cluster.call("status", jobs.get_job_status, job_id).value)
        elif chosen[0] == "logs":
            print(cluster.call("logs", jobs.get_job_logs, job_id), end="")
        else:
            print(f"{job_id}: {'stopping' if cluster.call('stop', jobs.stop_job, job_id) else 'already ended'}")
        return 0
    job_id, status = cluster.submit(args.address, command, follow=not args.no_follow)
    print(f"{job_id}: {status}")
    return {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 130}.get(status, 0)


def _check_marlo_command(command: list[str]) -> None:
    """A command for the cluster gets the checks it would get here, before anything is submitted."""
    if command[:1] != ["train"]:
        return
    args = build_parser().parse_args(command)  # a usage mistake exits 2 with argparse's one line
    if not args.resume:
        _composed(args).env_config()  # the scenario and its timing resolve


def _add_evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", required=True, help="catalog name or path of a scenario YAML")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="first SUMO seed; episode i uses seed + i")
    parser.add_argument("--seeds", help="explicit SUMO seeds, e.g. 1,2,3 (overrides --episodes and --seed)")
    parser.add_argument("--out", required=True, help="folder for metrics.json, metrics.csv (and plots)")
    parser.add_argument(
        "--timing",
        choices=("scenario", "resco"),
        default="scenario",
        help="resco: 10 s decisions with 3 s yellow (5 s and 2 s on arterial4x4)",
    )
    parser.add_argument("--demand-scale", type=float, default=1.0, help="SUMO's --scale on the scenario's demand")
    parser.add_argument("--traffic", help="a generated scenario's traffic demand by name (default: its first)")
    parser.add_argument("--seconds", type=int, default=None, help="episode length (default: the scenario's)")
    parser.add_argument("--workers", type=int, default=None, help="parallel episodes (default: one per CPU)")


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
    build = scenario_commands.add_parser("build", help="generate a scenario's network and demands into the cache")
    build.add_argument("name", help="catalog name or path of a generated scenario YAML")
    build.add_argument("--force", action="store_true", help="rebuild even on a cache hit")
    build.set_defaults(run=_scenarios_build)
    check = scenario_commands.add_parser("check", help="look for broken signals, empty demand, jams under fixed time")
    check.add_argument("name", help="catalog name or path of a scenario YAML")
    check.add_argument("--seconds", type=int, help="length of the fixed-time episode (default: the scenario's)")
    check.set_defaults(run=_scenarios_check)

    commands.add_parser("algos", help="the algorithms, what each can do, and their CPU/GPU presets").set_defaults(
        run=_algos
    )

    train = commands.add_parser("train", help="train a policy with RLlib under Ray Tune")
    tune = commands.add_parser("tune", help="search RLlib training parameters with Ray Tune")
    for run_parser in (train, tune):
        run_parser.add_argument("--scenario", help="catalog name or path of a scenario YAML")
        run_parser.add_argument("--algo", help=describe("algorithm"))
        run_parser.add_argument(
            "--policy",
            choices=POLICY_LAYOUTS,
            help="shared: one module for all junctions; independent: one each; "
            "central: shared actor, centralized critic",
        )
        run_parser.add_argument("--dataset", help=describe("dataset"))
        run_parser.add_argument("--gpu", action="store_true", help=describe("resources.gpu"))
        run_parser.add_argument("--num-env-runners", type=int, help=describe("resources.num_env_runners"))
        run_parser.add_argument("--envs-per-env-runner", type=int, help=describe("resources.envs_per_env_runner"))
        run_parser.add_argument("--num-learners", type=int, help=describe("resources.num_learners"))
        run_parser.add_argument("--num-gpus-per-learner", type=float, help=describe("resources.num_gpus_per_learner"))
        run_parser.add_argument("--address", help=describe("resources.ray_address"))
        run_parser.add_argument("--timesteps", type=int, help=describe("stop.timesteps"))
        run_parser.add_argument("--minutes", type=float, help=describe("stop.minutes"))
        run_parser.add_argument("--config", help="experiment YAML (see experiments/)")
        run_parser.add_argument(
            "--set", action="append", metavar="KEY=VALUE", help="override any setting, e.g. training.lr=1e-4"
        )
        run_parser.add_argument("--checkpoint-every", type=int, help=describe("checkpoint.every"))
        run_parser.add_argument("--seed", type=int, help=describe("seed"))
        run_parser.add_argument("--out", default="checkpoints", help="parent folder of the run directory")
        run_parser.add_argument("--run-name", help="run directory name (default <algo>_<scenario>_<timestamp>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its latest checkpoint")
    train.add_argument("--resume-from", metavar="CHECKPOINT", help="start a new run from an old run's weights")
    train.set_defaults(run=_train)
    tune.add_argument("--search", required=True, help="search-space YAML (see experiments/search/)")
    tune.add_argument(
        "--num-samples", type=int, default=4, help="trials to sample (each grid point counts once per sample)"
    )
    tune.add_argument("--scheduler", choices=SCHEDULERS, default="asha", help="trial scheduler (default asha)")
    tune.add_argument("--max-concurrent", type=int, help="trials at once (default: as many as the cluster fits)")
    tune.set_defaults(run=_tune)

    submit = commands.add_parser("submit", help="run a marlo command as a job on a Ray cluster (Ray's Jobs SDK)")
    submit.add_argument("--address", help="the cluster's dashboard, e.g. http://HOST:8265")
    submit.add_argument(
        "--no-follow", action="store_true", help="return after submitting instead of following the logs"
    )
    submit.add_argument("--status", metavar="JOB_ID", help="print a job's status")
    submit.add_argument("--logs", metavar="JOB_ID", help="print a job's logs")
    submit.add_argument("--stop", metavar="JOB_ID", help="stop a job")
    submit.add_argument("--slurm", action="store_true", help="render experiments/cluster/slurm_ray.sbatch instead")
    submit.add_argument("--nodes", type=int, default=2, help="--slurm: nodes, one Ray node each (default 2)")
    submit.add_argument("--cpus-per-node", type=int, default=16, help="--slurm: CPUs per node (default 16)")
    submit.add_argument("--gpus-per-node", type=int, default=0, help="--slurm: GPUs per node (default 0)")
    submit.add_argument("--time", default="04:00:00", help="--slurm: wall-clock limit (default 04:00:00)")
    submit.add_argument("--setup", default="source .venv/bin/activate", help="--slurm: shell line run first")
    submit.add_argument("--output", help="--slurm: write the script here instead of printing it")
    submit.add_argument(
        "command", nargs=argparse.REMAINDER, help="-- then the marlo command, e.g. -- train --scenario grid6"
    )
    submit.set_defaults(run=_submit)

    collect = commands.add_parser("collect", help="record an offline dataset from behaviour controllers on SUMO")
    collect.add_argument("--scenario", required=True, help="catalog name or path of a scenario YAML")
    collect.add_argument(
        "--policy",
        required=True,
        help="behaviours, comma-separated: random, fixed, actuated, max_pressure, greedy, ckpt:PATH",
    )
    collect.add_argument("--episodes", type=int, default=10, help="episodes per behaviour (default 10)")
    collect.add_argument("--epsilon", type=float, default=0.0, help="chance that a junction's action is a random green")
    collect.add_argument("--out", required=True, help="dataset folder, e.g. datasets/grid4x4_mp")
    collect.add_argument(
        "--seed",
        type=int,
        default=COLLECT_SEED,
        help=f"first SUMO seed; episode i uses seed + i (default {COLLECT_SEED})",
    )
    collect.add_argument(
        "--gamma", type=float, default=0.99, help="discount of the recorded returns-to-go (default 0.99)"
    )
    collect.add_argument("--seconds", type=int, default=None, help="episode length (default: the scenario's)")
    collect.add_argument("--demand-scale", type=float, default=1.0, help="SUMO's --scale on the scenario's demand")
    collect.add_argument("--workers", type=int, default=None, help="parallel episodes (default: one per CPU)")
    collect.add_argument(
        "--format",
        choices=("parquet", "npz"),
        default="parquet",
        help="npz: also write dataset.npz (observations, actions, rewards, next_observations, dones)",
    )
    collect.set_defaults(run=_collect)

    adapt = commands.add_parser("adapt", help="deploy a policy, watch its states drift (MMD), fine-tune when they do")
    adapt.add_argument(
        "--checkpoint", required=True, help="the deployed policy: a run directory (its best) or a checkpoint in one"
    )
    adapt.add_argument("--scenario", required=True, help="the scenario it was trained on")
    adapt.add_argument("--out", required=True, help="folder for the buckets, the log, the plot and the fine-tuned runs")
    adapt.add_argument(
        "--dataset",
        help="the offline data the policy was trained from (default: an offline run's own; "
        "else episodes of the policy on its training demand)",
    )
    adapt.add_argument("--demand-scale", type=float, help="the drifted demand: SUMO's --scale (default: the run's)")
    adapt.add_argument("--traffic", help="the drifted demand: a generated scenario's traffic demand by name")
    adapt.add_argument(
        "--drift-at",
        type=int,
        default=2,
        help="first bucket on the drifted demand; the ones before run on the training demand (default 2)",
    )
    adapt.add_argument("--buckets", type=int, default=10, help="buckets of deployment (default 10)")
    adapt.add_argument("--episodes-per-bucket", type=int, default=1, help="SUMO episodes in a bucket (default 1)")
    adapt.add_argument(
        "--ratio",
        type=float,
        default=1.5,
        help="fine-tune when a bucket's MMD exceeds ratio x the previous bucket's (default 1.5)",
    )
    adapt.add_argument(
        "--finetune-minutes", type=float, default=10.0, help="wall clock of one fine-tuning (default 10)"
    )
    adapt.add_argument(
        "--adopt",
        default="better",
        help="better: deploy a fine-tuned policy only if it beats the deployed one on the triggering "
        "bucket's demand and seeds; always: deploy it anyway (default better)",
    )
    adapt.add_argument(
        "--seed", type=int, default=1000, help="first SUMO seed of the reference and deployment episodes"
    )
    adapt.add_argument(
        "--reference-episodes",
        type=int,
        default=2,
        help="episodes recorded on the training demand when there is no --dataset (default 2)",
    )
    adapt.add_argument(
        "--mmd-samples", type=int, default=1000, help="observations per bucket the MMD compares (default 1000)"
    )
    adapt.add_argument("--workers", type=int, default=None, help="parallel episodes (default: one per CPU)")
    adapt.set_defaults(run=_adapt)

    evaluate = commands.add_parser("eval", help="evaluate one controller over several episodes")
    which = evaluate.add_mutually_exclusive_group(required=True)
    which.add_argument("--controller", help="fixed, actuated, max_pressure, greedy, random or ckpt:PATH")
    which.add_argument("--checkpoint", help="a trained policy: a checkpoint or a run directory (its best)")
    _add_evaluation_arguments(evaluate)
    evaluate.set_defaults(run=_eval)

    benchmark = commands.add_parser("benchmark", help="compare controllers on the same demand seeds")
    benchmark.add_argument("--controllers", default="fixed,actuated,max_pressure,greedy")
    _add_evaluation_arguments(benchmark)
    benchmark.set_defaults(run=_benchmark)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with interrupts.recorded():
            status = args.run(args)
    except UserError as exc:
        if args.debug:
            raise
        print(f"marlo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("marlo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `marlo algos | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
