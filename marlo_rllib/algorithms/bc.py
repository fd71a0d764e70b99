"""Behaviour cloning, offline, from a `marlo collect` dataset: RLlib's BC on marlo's data pipeline
(marlo_rllib/offline/imitation.py), a reference point for CQL."""

from __future__ import annotations

from typing import Any

NAME = "BC"
ON_POLICY = False
DISCRETE_ACTIONS = True
OFFLINE_ONLY = True
CENTRALIZED_CRITIC = False
ACTION_MASKING = True

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"lr": 5e-4, "train_batch_size_per_learner": 256, "dataset_num_iters_per_learner": 100},
    "gpu": {"lr": 5e-4, "train_batch_size_per_learner": 2048, "dataset_num_iters_per_learner": 100},
}
ROLLOUT_FRAGMENT_LENGTH = "auto"  # evaluation episodes only


def config_class() -> type:
    from marlo_rllib.offline.imitation import MarloBCConfig

    return MarloBCConfig


def masked_module_class() -> type:
    from marlo_rllib.models.masked import MaskedBCTorchRLModule

    return MaskedBCTorchRLModule
