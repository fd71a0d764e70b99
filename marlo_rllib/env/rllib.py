"""TrafficSignalEnv as an RLlib multi-agent env (through RLlib's ParallelPettingZooEnv).

Training passes the class itself to `AlgorithmConfig.environment`, so a checkpoint names it by
import path and `Algorithm.from_checkpoint` needs no registration; `register()` also offers it
under the name ENV_NAME.

SUMO seeds: an env built by an RLlib env runner with `seed_base` in its config starts at SUMO
seed `seed_base + SEED_STRIDE * worker_index` and counts up one per episode, so no two runners
replay the same demand. RLlib's own per-runner reset seed (config.seed + worker_index) would make
neighbouring runners overlap, so it is ignored; config.seed still seeds torch and numpy.

Generated scenarios with several traffic demands: unless the config names one (`traffic_scenario`),
env runner i starts on training demand i-1 and takes the next one each episode, so one shared
policy learns from all of them, whatever the number of runners.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

from marlo_rllib.env.traffic_signal_env import TrafficSignalEnv

ENV_NAME = "marlo_traffic_signal"
SEED_STRIDE = 10_000


class RLlibTrafficSignalEnv(ParallelPettingZooEnv):
    def __init__(self, config: dict[str, Any]) -> None:
        """config: `scenario` plus any TrafficSignalEnv keyword argument, and optionally `seed_base`."""
        settings = dict(config)
        seed_base = settings.pop("seed_base", None)
        settings.pop("evaluation_traffic_scenario", None)  # read by the evaluation config
        self.seeded_by_config = seed_base is not None
        worker = int(getattr(config, "worker_index", 0) or 0)
        if self.seeded_by_config:
            settings["seed"] = int(seed_base) + SEED_STRIDE * worker
        settings.setdefault("traffic_scenario", max(worker - 1, 0))
        super().__init__(TrafficSignalEnv(settings.pop("scenario"), **settings))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        return super().reset(seed=None if self.seeded_by_config else seed, options=options)


def register() -> str:
    """Register the env with Ray Tune's registry; returns the name to give `AlgorithmConfig.environment`."""
    from ray.tune.registry import register_env

    register_env(ENV_NAME, RLlibTrafficSignalEnv)
    return ENV_NAME
