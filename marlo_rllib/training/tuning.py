"""`marlo tune`: a Ray Tune hyperparameter search over RLlib training parameters.

Every trial is a marlo run like `marlo train`'s: the same env, band stopper, checkpoint policy,
and its own run directory (config.yaml with the sampled values, progress.csv, state.json, best),
so `load_controller(trial_dir)` works and `marlo train --config best_config.yaml` repeats the
best trial. The search writes summary.csv (every trial), summary.json and best_config.yaml.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from typing import Any

import yaml

from marlo_rllib.config import ExperimentConfig, compose, deep_merge
from marlo_rllib.errors import UserError
from marlo_rllib.run_dir import new_state, save_state
from marlo_rllib.training.runner import (
    callbacks_class,
    checkpoint_config,
    init_ray,
    make_recorder,
    make_stopper,
)
from marlo_rllib.training.search import nested, tune_domain


def check_space(space: dict[str, tuple[str, list[Any]]], experiment: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Only RLlib training parameters are searched; every value must compose into a valid config."""
    for key, (kind, values) in space.items():
        if not key.startswith("training.") or key.count(".") != 1:
            raise UserError(f"search key {key!r}: only training.<RLlib parameter> keys can be searched")
        # a range is sampled as floats: both ends must be valid, as floats (an integer key is refused)
        for value in values if kind in ("choice", "grid") else [float(v) for v in values]:
            try:
                compose(experiment, deep_merge(overrides, nested({key: value})))
            except UserError as exc:
                raise UserError(f"search key {key!r}: {exc}") from None


def _scheduler(name: str, metric: str, mode: str, space: dict[str, tuple[str, list[Any]]]) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    if name == "asha":
        return ASHAScheduler(metric=metric, mode=mode, time_attr="training_iteration", grace_period=2)
    if name == "pbt":
        mutations = {
            key.split(".", 1)[1]: tune_domain(kind, values) for key, (kind, values) in space.items() if kind != "grid"
        }
        if not mutations:
            raise UserError("--scheduler pbt needs at least one uniform, loguniform or choice key to perturb")
        return PopulationBasedTraining(
            metric=metric,
            mode=mode,
            time_attr="training_iteration",
            perturbation_interval=2,
            hyperparam_mutations=mutations,
        )
    return FIFOScheduler()


def tune_search(
    search_dir: Path,
    config: ExperimentConfig,
    space: dict[str, tuple[str, list[Any]]],
    *,
    num_samples: int,
    scheduler: str,
    max_concurrent: int | None,
    debug: bool = False,
) -> list[dict]:
    """Runs the search; returns the summary rows, best first."""
    import ray
    from ray import tune

    from marlo_rllib.training.rllib_config import build_config

    metadata = json.loads((search_dir / "metadata.json").read_text())
    env_config = config.env_config()

    def rllib_config(settings: ExperimentConfig) -> Any:
        return build_config(
            settings,
            env_config,
            list(metadata["spaces"]),
            callbacks_class(None, None),
            state_dim=metadata.get("state_dim"),
            probe=metadata.get("probe"),
        )

    base = rllib_config(config)  # RLlib validates only concrete values: resources come from the base config
    domains = {key.split(".", 1)[1]: tune_domain(*spec) for key, spec in space.items()}
    algorithm_config = rllib_config(config.model_copy(update={"training": {**config.training, **domains}}))
    names = {key: key.split(".", 1)[1] for key in space}
    metric, mode = (
        ("evaluation/env_runners/delay", "min")
        if config.stop.metric == "delay"
        else ("evaluation/env_runners/episode_return_mean", "max")
    )
    stopper = make_stopper(config, probe=metadata.get("probe"))
    records: dict[str, tuple[Path, dict, float]] = {}

    def record_of(trial: Any) -> tuple[Path, dict, float]:
        if trial.trial_id not in records:
            run_dir = Path(trial.path)  # the trial folder under storage_path, where its checkpoints land
            run_dir.mkdir(parents=True, exist_ok=True)
            sampled = {key: trial.config.get(name, trial.config.get(name.rstrip("_"))) for key, name in names.items()}
            trial_config = deep_merge(config.model_dump(), nested(sampled))
            (run_dir / "config.yaml").write_text(yaml.safe_dump(trial_config, sort_keys=False))
            shutil.copy(search_dir / "metadata.json", run_dir / "metadata.json")
            state = new_state(status="running", segments=1, sampled=sampled)
            save_state(run_dir, state)
            records[trial.trial_id] = (run_dir, state, 0.0)
        return records[trial.trial_id]

    try:
        init_ray(config, base, debug)
        per_trial = base.algo_class.default_resource_request(base).required_resources
        available = ray.cluster_resources()
        for resource, amount in per_trial.items():
            if amount > available.get(resource, 0):
                raise UserError(
                    f"one trial needs {amount:g} {resource}, the cluster has {available.get(resource, 0):g}; "
                    "lower resources.num_env_runners or the learners' share"
                )
        fits = int(min(available.get(r, 0) // a for r, a in per_trial.items() if a > 0))
        concurrent = min(max_concurrent or fits, fits) if fits > 0 else 1
        print(
            f"search: {num_samples} sample(s), {concurrent} trial(s) at a time "
            f"({', '.join(f'{a:g} {r}' for r, a in per_trial.items())} each)",
            flush=True,
        )
        tuner = tune.Tuner(
            algorithm_config.algo_class,
            param_space=algorithm_config,
            tune_config=tune.TuneConfig(
                num_samples=num_samples,
                max_concurrent_trials=concurrent,
                scheduler=_scheduler(scheduler, metric, mode, space),
            ),
            run_config=tune.RunConfig(
                name="trials",
                storage_path=str(search_dir),
                stop=stopper,
                verbose=0,
                checkpoint_config=checkpoint_config(config),
                callbacks=[make_recorder(config, stopper, record_of, quiet=True)],
            ),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()
    rows = []
    for index in range(len(results)):
        result = results[index]
        trial_id = (result.metrics or {}).get("trial_id")
        if trial_id not in records:
            continue
        run_dir, state, _ = records[trial_id]
        state["status"] = "failed" if result.error else "finished"
        save_state(run_dir, state)
        best = state.get("best") or {}
        rows.append(
            {
                "trial": run_dir.name,
                "status": state["status"],
                "score": best.get("score", -math.inf),
                "metric": config.stop.metric,
                "iterations": state["iteration"],
                "timesteps": state["timesteps"],
                "checkpoint": str(run_dir / best["checkpoint"]) if best else "",
                "run_dir": str(run_dir),
                **state["sampled"],
            }
        )
    rows.sort(key=lambda row: row["score"], reverse=True)
    write_summary(search_dir, rows)
    return rows


def write_summary(search_dir: Path, rows: list[dict]) -> None:
    if not rows:
        raise UserError(f"no trial of the search in {search_dir} reported a result")
    with (search_dir / "summary.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (search_dir / "summary.json").write_text(json.dumps({"best": rows[0], "trials": rows}, indent=2) + "\n")
    shutil.copy(Path(rows[0]["run_dir"]) / "config.yaml", search_dir / "best_config.yaml")
