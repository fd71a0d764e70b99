"""Behaviour cloning, offline, from a `marlo collect` dataset: RLlib's BC on marlo's data pipeline
(marlo_rllib/offline/imitation.py), a reference point for CQL."""

from __future__ import annotations

from typing import Any

from marlo_rllib.algorithms.spec import AlgorithmSpec

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"lr": 5e-4, "train_batch_size_per_learner": 256, "dataset_num_iters_per_learner": 100},
    "gpu": {"lr": 5e-4, "train_batch_size_per_learner": 2048, "dataset_num_iters_per_learner": 100},
}


def config_class() -> type:
    from marlo_rllib.offline.imitation import MarloBCConfig

    return MarloBCConfig


def masked_module_class() -> type:
    from marlo_rllib.models.masked import MaskedBCTorchRLModule

    return MaskedBCTorchRLModule


SPEC = AlgorithmSpec(
    name="BC",
    offline_only=True,
    centralized_critic=False,
    action_masking=True,
    rollout_fragment_length="auto",  # evaluation episodes only
    iteration_env_steps=None,
    presets=PRESETS,
    config_class=config_class,
    masked_module_class=masked_module_class,
)
