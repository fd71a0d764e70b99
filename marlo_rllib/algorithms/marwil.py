"""MARWIL (advantage-weighted behaviour cloning), offline, from a `marlo collect` dataset: RLlib's
MARWIL on marlo's data pipeline (marlo_rllib/offline/imitation.py), a reference point for CQL."""

from __future__ import annotations

from typing import Any

from marlo_rllib.algorithms.spec import AlgorithmSpec

_COMMON = {"lr": 5e-4, "beta": 1.0, "vf_coeff": 1.0}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"train_batch_size_per_learner": 256, "dataset_num_iters_per_learner": 100, **_COMMON},
    "gpu": {"train_batch_size_per_learner": 2048, "dataset_num_iters_per_learner": 100, **_COMMON},
}


def config_class() -> type:
    from marlo_rllib.offline.imitation import MarloMARWILConfig

    return MarloMARWILConfig


def masked_module_class() -> type:
    from marlo_rllib.models.masked import MaskedPPOTorchRLModule  # MARWIL's module is PPO's: logits and a value head

    return MaskedPPOTorchRLModule


SPEC = AlgorithmSpec(
    name="MARWIL",
    offline_only=True,
    centralized_critic=False,
    action_masking=True,
    rollout_fragment_length="auto",  # evaluation episodes only
    iteration_env_steps=None,
    presets=PRESETS,
    config_class=config_class,
    masked_module_class=masked_module_class,
)
