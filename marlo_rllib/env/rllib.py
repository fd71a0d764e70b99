"""TrafficSignalEnv as an RLlib multi-agent env (through RLlib's ParallelPettingZooEnv).

SUMO seeds: an env built by an RLlib env runner with `seed_base` in its config starts at SUMO
seed `seed_base + SEED_STRIDE * worker_index` and counts up one per episode, so no two runners
replay the same demand. RLlib's own per-runner reset seed (config.seed + worker_index) would make
neighbouring runners overlap, so it is ignored; config.seed still seeds torch and numpy.
"""

from __future__ import annotations

from typing import Any

ENV_NAME = "marlo_traffic_signal"
SEED_STRIDE = 10_000


def make_rllib_env(config: dict[str, Any]) -> Any:
    """config: `scenario` plus any TrafficSignalEnv keyword argument, and optionally `seed_base`."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    from marlo_rllib.env.traffic_signal_env import TrafficSignalEnv

    class SumoSeededEnv(ParallelPettingZooEnv):
        def reset(self, *, seed: int | None = None, options: dict | None = None):
            return super().reset(seed=None if seeded_by_config else seed, options=options)

    settings = dict(config)
    seed_base = settings.pop("seed_base", None)
    seeded_by_config = seed_base is not None
    if seeded_by_config:
        settings["seed"] = int(seed_base) + SEED_STRIDE * int(getattr(config, "worker_index", 0) or 0)
    return SumoSeededEnv(TrafficSignalEnv(settings.pop("scenario"), **settings))


def register() -> str:
    """Register the env with Ray Tune's registry; returns the name to give `AlgorithmConfig.environment`."""
    from ray.tune.registry import register_env

    register_env(ENV_NAME, make_rllib_env)
    return ENV_NAME
