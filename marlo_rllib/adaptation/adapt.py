"""`marlo adapt`: deploy a trained policy on SUMO, measure how far the states it meets drift from
the data it was trained on, and fine-tune it when they drift (seed 003's offline -> online loop).

    OUT/
        reference/      the states of the training data: --dataset (the run's own for offline runs),
                        else episodes of the policy on the demand it was trained on
        buckets/NN/     bucket NN's deployment episodes, as a marlo dataset (behaviour: the checkpoint in force)
        finetune_NN/    the fine-tuning that bucket NN triggered: a normal marlo run directory
        trials/NN/      the fine-tuned policy on bucket NN's demand and seeds, before it is deployed
        replay_NN/      (Q-learners) the prioritised sample that fine-tuning trained on, as a marlo dataset
        adapt.csv       one row per bucket: demand, seeds, delay, MMD, triggered, checkpoint in force
        adapt.png       MMD and delay against deployment time

The deployed world: buckets before `drift_at` run on the demand the policy was trained on, buckets
from `drift_at` on the drifted demand (--demand-scale, --traffic). After each bucket, its MMD to the
reference (features standardized by the reference, without the junction one-hot) is the mean over
MMD_DRAWS draws of the reference (drift.bucket_mmd); bucket j >= 2
fine-tunes when its MMD exceeds `ratio` x bucket j-1's. Online algorithms (PPO, APPO, ...) fine-tune
by training on the drifted demand from the checkpoint's weights; the Q-learners (DQN, CQL) train
offline on a sample of buckets 0..j plus the reference, drawn with priority |TD error| + epsilon.
With `adopt="better"` the fine-tuned policy replays bucket j (same demand, same seeds) and is
deployed only if its delay there is lower than the policy in force had; "always" deploys it anyway.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from marlo_rllib import interrupts
from marlo_rllib.adaptation.drift import Standardizer, bucket_mmd, triggers
from marlo_rllib.config import ExperimentConfig, middle_demand_scale
from marlo_rllib.errors import UserError

MMD_DRAWS = 5
PRIORITY_EPSILON = 1e-3
PRIORITY_ALPHA = 0.6  # P(row) ~ (|TD error| + epsilon)^alpha, as prioritised replay (Schaul et al., 2016)
Q_LEARNERS = ("DQN", "CQL")
ADOPT_RULES = ("better", "always")
LOG_FIELDS = (
    "bucket",
    "deployed_hours",
    "minutes",
    "demand_scale",
    "traffic",
    "seeds",
    "delay",
    "waiting_time",
    "mmd",
    "triggered",
    "checkpoint",
    "finetuned",
    "finetuned_delay",
    "adopted",
)


@dataclass(frozen=True)
class AdaptPlan:
    run_dir: Path  # the deployed policy's run
    checkpoint: Path  # the checkpoint deployed first
    config: ExperimentConfig  # the run's experiment
    out: Path
    demand_scale: float  # the drifted world's
    traffic: str | None
    drift_at: int
    buckets: int
    episodes_per_bucket: int
    ratio: float
    seed: int
    reference_episodes: int
    dataset: Path | None
    mmd_samples: int
    finetune_minutes: float
    adopt: str
    workers: int | None

    @property
    def algorithm(self) -> str:
        return self.config.algorithm


def plan_adaptation(
    checkpoint: str,
    scenario: str,
    out: str,
    *,
    dataset: str | None = None,
    demand_scale: float | None = None,
    traffic: str | None = None,
    drift_at: int = 2,
    buckets: int = 10,
    episodes_per_bucket: int = 1,
    ratio: float = 1.5,
    seed: int = 1000,
    reference_episodes: int = 2,
    mmd_samples: int = 1000,
    finetune_minutes: float = 10.0,
    adopt: str = "better",
    workers: int | None = None,
) -> AdaptPlan:
    """Checks every input before any simulation runs; a bad one is a UserError."""
    from marlo_rllib.algorithms import get_algorithm
    from marlo_rllib.config import check_seeds
    from marlo_rllib.offline.dataset import load_dataset
    from marlo_rllib.run_dir import load_run, resolve_checkpoint, run_dir_of
    from marlo_rllib.scenarios import load_scenario

    if not (math.isfinite(ratio) and ratio > 0):
        raise UserError(f"--ratio must be a positive number, got {ratio}")
    for name, value, low in (
        ("--buckets", buckets, 1),
        ("--episodes-per-bucket", episodes_per_bucket, 1),
        ("--drift-at", drift_at, 0),
        ("--reference-episodes", reference_episodes, 1),
        ("--mmd-samples", mmd_samples, 2),
        ("--workers", workers or 1, 1),
    ):
        if value < low:
            raise UserError(f"{name} must be at least {low}, got {value}")
    if demand_scale is not None and not (math.isfinite(demand_scale) and demand_scale > 0):
        raise UserError(f"--demand-scale must be a positive number, got {demand_scale}")
    if not (math.isfinite(finetune_minutes) and finetune_minutes > 0):
        raise UserError(f"--finetune-minutes must be a positive number, got {finetune_minutes}")
    if adopt not in ADOPT_RULES:
        raise UserError(f"--adopt must be one of {', '.join(ADOPT_RULES)}, got {adopt!r}")
    check_seeds([seed, seed + reference_episodes + buckets * episodes_per_bucket - 1])

    path = Path(checkpoint).resolve()
    run_dir = run_dir_of(path)
    if run_dir is None:
        raise UserError(f"--checkpoint {checkpoint}: not a marlo run directory or a checkpoint inside one")
    config, _ = load_run(run_dir)
    first = resolve_checkpoint(path)
    spec, trained_on = load_scenario(scenario), load_scenario(config.scenario)
    if spec.name != trained_on.name:
        raise UserError(f"--checkpoint {checkpoint} was trained on {trained_on.name}, not on {spec.name}")
    if traffic is not None:
        spec.check_traffic(traffic, "--traffic")
    algorithm = get_algorithm(config.algorithm)
    if algorithm.offline_only and config.algorithm not in Q_LEARNERS:
        raise UserError(
            f"{config.algorithm} imitates its dataset; adapt fine-tunes online algorithms and the "
            f"Q-learners ({', '.join(Q_LEARNERS)})"
        )
    if config.policy == "independent":
        raise UserError(
            "adapt records the padded observations of one shared policy; this run has one policy per junction"
        )
    dataset = dataset or (config.dataset if algorithm.offline_only else None)
    if algorithm.offline_only and not dataset:
        raise UserError(f"{config.algorithm} was trained offline: pass --dataset, the data it was trained on")
    if dataset:
        info = load_dataset(dataset)
        if info["scenario"] != spec.name:
            raise UserError(f"--dataset {dataset} was recorded on {info['scenario']}, not on {spec.name}")
    out_dir = Path(out).resolve()
    if (out_dir / "adapt.csv").exists():
        raise UserError(f"{out_dir} already holds an adaptation (adapt.csv); pick another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write to --out {out_dir}: {exc.strerror}") from None
    return AdaptPlan(
        run_dir,
        first,
        config,
        out_dir,
        demand_scale or middle_demand_scale(config.env.demand_scale),
        traffic,
        drift_at,
        buckets,
        episodes_per_bucket,
        ratio,
        seed,
        reference_episodes,
        Path(info["path"]) if dataset else None,
        mmd_samples,
        finetune_minutes,
        adopt,
        workers,
    )


def adapt(plan: AdaptPlan) -> list[dict[str, Any]]:
    """Deploys, measures, fine-tunes; returns the log's rows. Ctrl+C stops after writing what is
    done: the buckets recorded, the log, and the latest adapted checkpoint."""
    rng = np.random.default_rng(plan.seed)
    reference = _reference(plan)
    raw = _observations(reference, rng, None)
    info = json.loads((reference / "dataset.json").read_text())
    junctions = len(info["spaces"]["agents"]) if info["env"].get("agent_id") else 0
    features = Standardizer(raw, drop=list(range(raw.shape[1] - junctions, raw.shape[1])))  # not the junction one-hot
    reference_obs = features(raw)
    checkpoint, mmds, rows = plan.checkpoint, [], []
    started = time.perf_counter()
    log = plan.out / "adapt.csv"
    hours_per_bucket = plan.episodes_per_bucket * _episode_seconds(plan) / 3600
    with log.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, LOG_FIELDS)
        writer.writeheader()
        for j in range(plan.buckets):
            interrupts.check()
            drifted = j >= plan.drift_at
            env = _world(plan, drifted)
            first_seed = plan.seed + plan.reference_episodes + j * plan.episodes_per_bucket
            bucket = plan.out / "buckets" / f"{j:02d}"
            info = _record(plan, checkpoint, env, bucket, first_seed, plan.episodes_per_bucket)
            with interrupts.deferred():  # a recorded bucket gets its row
                sample = features(_observations(bucket, rng, plan.mmd_samples))
                mmds.append(bucket_mmd(sample, reference_obs, MMD_DRAWS, rng))
                fire = triggers(mmds, plan.ratio)
                row = {
                    "bucket": j,
                    "deployed_hours": round((j + 1) * hours_per_bucket, 3),
                    "demand_scale": env["demand_scale"],
                    "traffic": env.get("traffic_scenario") or "",
                    "seeds": " ".join(str(s) for s in info["seeds"]),
                    "delay": round(info["behaviour_mean_delay"], 3),
                    "waiting_time": round(info["behaviours"][0]["metrics"]["waiting_time"], 3),
                    "mmd": round(mmds[-1], 6),
                    "triggered": fire,
                    "checkpoint": str(checkpoint),
                    "finetuned": "",
                    "finetuned_delay": "",
                    "adopted": False,
                }
                print(
                    f"bucket {j}: demand {env['demand_scale']}{' ' + row['traffic'] if row['traffic'] else ''}, "
                    f"delay {row['delay']:.2f} s, MMD {mmds[-1]:.4f}" + (" -> fine-tuning" if fire else ""),
                    flush=True,
                )
            try:
                interrupts.check()
                if fire:
                    adapted, interrupted = _finetune(plan, checkpoint, env, j, reference)
                    if adapted != checkpoint:
                        row["finetuned"] = str(adapted)
                        if plan.adopt == "always":
                            row["adopted"] = True
                        elif not interrupted:
                            trials = plan.out / "trials" / f"{j:02d}"
                            trial = _record(plan, adapted, env, trials, first_seed, plan.episodes_per_bucket)
                            row["finetuned_delay"] = round(trial["behaviour_mean_delay"], 3)
                            row["adopted"] = trial["behaviour_mean_delay"] < info["behaviour_mean_delay"]
                            print(
                                f"fine-tuned policy on bucket {j}'s seeds: delay {row['finetuned_delay']:.2f} s "
                                f"against {row['delay']:.2f} s: "
                                + ("deployed" if row["adopted"] else f"keeping {checkpoint}"),
                                flush=True,
                            )
                        if row["adopted"]:
                            checkpoint = adapted
                    if interrupted:
                        raise KeyboardInterrupt
            finally:
                row["minutes"] = round((time.perf_counter() - started) / 60, 2)
                rows.append(row)
                writer.writerow(row)
                stream.flush()
                plot(log, plan.out / "adapt.png")
    return rows


def _episode_seconds(plan: AdaptPlan) -> int:
    from marlo_rllib.scenarios import load_scenario

    return plan.config.env.episode_seconds or load_scenario(plan.config.scenario).episode_seconds


def _world(plan: AdaptPlan, drifted: bool) -> dict[str, Any]:
    """The run's env section, on the demand the deployment meets."""
    env = plan.config.env.model_dump()
    if drifted:
        env["demand_scale"] = plan.demand_scale
        if plan.traffic is not None:
            env["traffic_scenario"] = plan.traffic
    return env


def _record(
    plan: AdaptPlan, checkpoint: Path, env: dict[str, Any], out: Path, seed: int, episodes: int
) -> dict[str, Any]:
    from marlo_rllib.offline.collect import collect

    gamma = float(plan.config.training.get("gamma", 0.99))
    return collect(
        plan.config.scenario,
        [f"ckpt:{checkpoint}"],
        episodes,
        out,
        seed=seed,
        gamma=gamma,
        episode_seconds=env["episode_seconds"],
        demand_scale=env["demand_scale"],
        workers=plan.workers,
        env=env,
    )


def _reference(plan: AdaptPlan) -> Path:
    if plan.dataset is not None:
        return plan.dataset
    reference = plan.out / "reference"
    print(
        f"recording the reference: {plan.reference_episodes} episodes of the policy on its training demand", flush=True
    )
    _record(plan, plan.checkpoint, _world(plan, drifted=False), reference, plan.seed, plan.reference_episodes)
    return reference


def _observations(dataset: Path, rng: np.random.Generator, limit: int | None) -> np.ndarray:
    """The dataset's observations as rows (at most `limit`, drawn at random)."""
    from marlo_rllib.offline.dataset import parquet_files

    observations = np.concatenate([np.stack(_column(file, "obs")) for file in parquet_files(dataset)])
    if limit is not None and len(observations) > limit:
        observations = observations[rng.choice(len(observations), limit, replace=False)]
    return observations


def _column(file: Path, name: str) -> list[Any]:
    import pyarrow.parquet as pq

    return pq.read_table(file, columns=[name]).column(name).to_pylist()


# ---- fine-tuning ---------------------------------------------------------------------------------


def _finetune(
    plan: AdaptPlan, checkpoint: Path, env: dict[str, Any], bucket: int, reference: Path
) -> tuple[Path, bool]:
    """Trains from `checkpoint` on the drifted demand; returns the new run's best checkpoint (the
    old one if fine-tuning produced none) and whether Ctrl+C cut the fine-tuning short."""
    from marlo_rllib.config import compose, updated
    from marlo_rllib.run_dir import resolve_checkpoint
    from marlo_rllib.training.runner import prepare_run, train

    config = updated(plan.config, {"env": env, "stop": {"minutes": plan.finetune_minutes, "timesteps": None}})
    if plan.algorithm in Q_LEARNERS:
        replay = plan.out / f"replay_{bucket:02d}"
        datasets = [plan.out / "buckets" / f"{j:02d}" for j in range(bucket + 1)] + [reference]
        prioritised_sample(checkpoint, datasets, replay, env, float(config.training["gamma"]))
        # offline DQN is CQL without the conservative penalty
        alpha = config.training.get("alpha", 0.0) if plan.algorithm == "CQL" else 0.0
        kept = config.model_dump(exclude={"algorithm", "dataset", "training"})
        training = {"alpha": alpha, "gamma": config.training["gamma"]}
        config = compose(kept, {"algorithm": "CQL", "dataset": str(replay), "training": training})
    command = f"marlo adapt (bucket {bucket}): fine-tune {checkpoint}"
    run_dir, weights = prepare_run(config, plan.out, f"finetune_{bucket:02d}", command, str(checkpoint))
    print(f"fine-tuning {plan.algorithm} for {plan.finetune_minutes:g} minutes: {run_dir}", flush=True)
    state = train(run_dir, config, weights=weights)
    interrupted = state["status"] == "interrupted"
    try:
        return resolve_checkpoint(run_dir), interrupted
    except UserError:
        print(
            f"marlo: fine-tuning {run_dir} left no checkpoint ({state.get('error', state['status'])}); "
            f"keeping {checkpoint}",
            file=sys.stderr,
        )
        return checkpoint, interrupted


def td_priorities(module: Any, columns: dict[str, np.ndarray], gamma: float) -> np.ndarray:
    """|r + gamma max_a' Q(s', a') - Q(s, a)| + PRIORITY_EPSILON per row, with the deployed Q (a
    checkpoint holds no target network; masked greens are -inf; no bootstrap after a terminal step)."""
    import torch
    from ray.rllib.algorithms.dqn.dqn_learner import QF_PREDS
    from ray.rllib.core.columns import Columns

    def batch(observations: np.ndarray) -> dict[str, Any]:
        return {
            Columns.OBS: {
                "observations": torch.as_tensor(observations, dtype=torch.float32),
                "action_mask": torch.as_tensor(columns["action_mask"], dtype=torch.float32),
            }
        }

    with torch.no_grad():
        q = module.compute_q_values(batch(columns["obs"]))[QF_PREDS]
        taken = q.gather(-1, torch.as_tensor(columns["actions"], dtype=torch.int64).unsqueeze(-1)).squeeze(-1)
        bootstrap = module.compute_q_values(batch(columns["new_obs"]))[QF_PREDS].max(dim=-1).values
        alive = 1.0 - torch.as_tensor(columns["terminateds"], dtype=torch.float32)
        target = torch.as_tensor(columns["rewards"], dtype=torch.float32) + gamma * alive * bootstrap
        return (target - taken).abs().numpy() + PRIORITY_EPSILON


def prioritised_sample(checkpoint: Path, datasets: list[Path], out: Path, env: dict[str, Any], gamma: float) -> Path:
    """A marlo dataset of as many rows as `datasets` hold together, drawn with replacement with
    P ~ priority^PRIORITY_ALPHA, recorded as if under `env` (the drifted demand fine-tuning trains on)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from marlo_rllib.controllers.policy import load_modules
    from marlo_rllib.layout import SHARED_MODULE
    from marlo_rllib.offline.dataset import DATA_DIR, parquet_files

    table = pa.concat_tables([pq.read_table(f) for d in datasets for f in parquet_files(d)], promote_options="default")
    first_info = json.loads((datasets[0] / "dataset.json").read_text())
    masks = first_info["spaces"]["action_masks"]
    greens = len(next(iter(masks.values())))
    columns = {name: np.asarray(table[name].to_pylist(), dtype=np.float32) for name in ("obs", "new_obs", "rewards")}
    columns["actions"] = np.asarray(table["actions"].to_pylist(), dtype=np.int64)
    columns["terminateds"] = np.asarray(table["terminateds"].to_pylist(), dtype=bool)
    columns["action_mask"] = (
        np.asarray(table["action_mask"].to_pylist(), dtype=np.float32)
        if "action_mask" in table.column_names
        else np.ones((len(table), greens), dtype=np.float32)
    )
    module = load_modules(checkpoint)[SHARED_MODULE]
    priorities = td_priorities(module, columns, gamma) ** PRIORITY_ALPHA
    rng = np.random.default_rng(len(table))
    chosen = rng.choice(len(table), len(table), replace=True, p=priorities / priorities.sum())
    (out / DATA_DIR).mkdir(parents=True, exist_ok=True)
    pq.write_table(table.take(np.sort(chosen)), out / DATA_DIR / "sample.parquet")
    info = {
        **first_info,
        "env": {
            **first_info["env"],
            "demand_scale": env["demand_scale"],
            "traffic_scenario": env.get("traffic_scenario"),
        },
        "rows": len(table),
        "sources": [str(d) for d in datasets],
        "priority": "|TD error| + epsilon",
        "priority_epsilon": PRIORITY_EPSILON,
        "priority_alpha": PRIORITY_ALPHA,
        "mean_priority": float(np.mean(priorities)),
    }
    (out / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


# ---- report ----------------------------------------------------------------------------------------


def plot(log: Path, out: Path) -> None:
    """MMD and delay per bucket against simulated deployment hours; fine-tunings marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(log.open()))
    if not rows:
        return
    hours = [float(r["deployed_hours"]) for r in rows]
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7, 5))
    top.plot(hours, [float(r["mmd"]) for r in rows], marker="o")
    top.set_ylabel("MMD to the reference")
    bottom.plot(hours, [float(r["delay"]) for r in rows], marker="o", color="tab:red")
    bottom.set_ylabel("delay (s)")
    bottom.set_xlabel("deployment time (simulated hours)")
    for row, hour in zip(rows, hours, strict=True):
        if row["triggered"] == "True":
            for axis in (top, bottom):
                axis.axvline(hour, color="grey", linestyle="--")
    top.set_title("marlo adapt: dashed lines mark fine-tunings")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
