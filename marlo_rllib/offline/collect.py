"""`marlo collect`: run behaviour controllers on real SUMO and record their transitions.

Every behaviour runs the same `episodes` SUMO seeds (seed, seed + 1, ...), episodes in parallel
processes (libsumo: one simulation per process), each episode into its own Parquet file.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from marlo_rllib.config import check_seeds, experiment_of
from marlo_rllib.controllers import controller_label
from marlo_rllib.errors import UserError
from marlo_rllib.offline import COLLECT_SEED
from marlo_rllib.offline.dataset import DATA_DIR, ENV_KEYS, FORMAT, export_npz, space_summary


def env_settings(
    scenario: str, episode_seconds: int | None, demand_scale: float, env: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The env settings of the dataset, resolved the way `marlo train` resolves a run's; `env`: a
    run's env section (its observation, reward, ...) instead of the defaults."""
    env = {**(env or {}), "episode_seconds": episode_seconds, "demand_scale": demand_scale}
    return experiment_of({"scenario": scenario, "env": env}).env_config()


def check_behaviours(names: list[str], epsilon: float) -> None:
    from marlo_rllib.controllers import make_controller, policy_path

    if not names:
        raise UserError("--policy is empty")
    if len(set(names)) != len(names):
        raise UserError(f"--policy names a behaviour twice: {','.join(names)}")
    for name in names:
        controller = make_controller(name)
        if controller.env_options.get("program") and epsilon > 0:
            raise UserError(
                f"--epsilon {epsilon}: {name} runs SUMO's own signal program, which cannot be "
                "epsilon-mixed; collect it with --epsilon 0"
            )
        if policy_path(name) and not controller.env_options["shared_spaces"]:
            raise UserError(
                f"{name} holds one policy per junction; the dataset records the padded observations "
                "of a shared policy, so collect from a shared-policy checkpoint"
            )


def collect(
    scenario: str,
    behaviours: list[str],
    episodes: int,
    out: Path,
    *,
    epsilon: float = 0.0,
    seed: int = COLLECT_SEED,
    gamma: float = 0.99,
    episode_seconds: int | None = None,
    demand_scale: float = 1.0,
    workers: int | None = None,
    npz: bool = False,
    env: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Records the dataset into `out` and returns its dataset.json content. env: a run's env section
    to record under (default: the defaults)."""
    from marlo_rllib.env import TrafficSignalEnv
    from marlo_rllib.evaluation import EpisodeTask, run_episodes

    if episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {episodes}")
    if not 0.0 <= epsilon <= 1.0:
        raise UserError(f"--epsilon must be between 0 and 1, got {epsilon}")
    if not 0.0 <= gamma <= 1.0:
        raise UserError(f"--gamma must be between 0 and 1, got {gamma}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if episode_seconds is not None and episode_seconds < 1:
        raise UserError(f"--seconds must be at least 1, got {episode_seconds}")
    check_seeds([seed, seed + episodes - 1])
    if not (math.isfinite(demand_scale) and demand_scale > 0):
        raise UserError(f"--demand-scale must be a positive number, got {demand_scale}")
    check_behaviours(behaviours, epsilon)
    settings = env_settings(scenario, episode_seconds, demand_scale, env)
    if (out / "dataset.json").exists() or any((out / DATA_DIR).glob("*.parquet")):
        raise UserError(f"{out} already holds a dataset (or an interrupted collection's episodes); pick another --out")
    try:
        (out / DATA_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write to --out {out}: {exc.strerror}") from None

    env = {key: settings.get(key) for key in ENV_KEYS}
    options = {"shared_spaces": True, "backend": settings["backend"], **env}
    seeds = list(range(seed, seed + episodes))
    tasks = [
        EpisodeTask(
            settings["scenario"],
            name,
            s,
            options,
            epsilon=epsilon,
            gamma=gamma,
            record_to=str(out / DATA_DIR / f"{index:02d}-{controller_label(name)}-{s}.parquet"),
        )
        for index, name in enumerate(behaviours)
        for s in seeds
    ]
    probe = TrafficSignalEnv(settings["scenario"], **options)
    spaces, spec_name = space_summary(probe), probe.spec.name
    probe.close()

    started = time.perf_counter()
    results = run_episodes(tasks, workers=workers)
    by_behaviour = {name: [r for r in results if r.controller == name] for name in behaviours}
    info = {
        "format": FORMAT,
        "scenario": spec_name,
        "scenario_source": settings["scenario"],
        "env": env,
        "spaces": spaces,
        "heterogeneous": min(min(mask) for mask in spaces["action_masks"].values()) == 0,
        "gamma": gamma,
        "epsilon": epsilon,
        "seeds": seeds,
        "episodes": len(results),
        "rows": int(sum(r.rows for r in results)),
        "steps_per_episode": int(results[0].rows // len(spaces["agents"])),
        "behaviours": [_behaviour_summary(name, rs) for name, rs in by_behaviour.items()],
        "behaviour_mean_delay": float(np.mean([r.metrics["delay"] for r in results])),
        "mean_reward": _mean_reward(results),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "command": "marlo " + " ".join(sys.argv[1:]),
    }
    (out / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
    if npz:
        export_npz(out)
    return info


def _mean_reward(results: list[Any]) -> float:
    return sum(r.reward_sum for r in results) / sum(r.rows for r in results)


def _behaviour_summary(name: str, results: list[Any]) -> dict[str, Any]:
    from marlo_rllib.evaluation import aggregate

    metrics = {metric: summary["mean"] for metric, summary in aggregate(results).items()}
    return {
        "name": name,
        "episodes": len(results),
        "mean_delay": metrics["delay"],
        "metrics": metrics,
        "mean_reward": _mean_reward(results),
    }
