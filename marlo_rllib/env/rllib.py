"""TrafficSignalEnv as an RLlib multi-agent env (through RLlib's ParallelPettingZooEnv)."""

from __future__ import annotations

from typing import Any

ENV_NAME = "marlo_traffic_signal"


def make_rllib_env(config: dict[str, Any]) -> Any:
    """config: `scenario` plus any TrafficSignalEnv keyword argument."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    from marlo_rllib.env.traffic_signal_env import TrafficSignalEnv

    settings = dict(config)
    return ParallelPettingZooEnv(TrafficSignalEnv(settings.pop("scenario"), **settings))


def register() -> str:
    """Register the env with Ray Tune's registry; returns the name to give `AlgorithmConfig.environment`."""
    from ray.tune.registry import register_env

    register_env(ENV_NAME, make_rllib_env)
    return ENV_NAME
