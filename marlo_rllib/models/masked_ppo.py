"""PPO's default MLP for a shared policy over junctions of different sizes.

With `shared_spaces`, the env pads every junction to the widest observation and green count and
sends {"observations": x, "action_mask": m}. The networks see only x; greens with m == 0 (padding)
get a logit of FLOAT_MIN, so they are never sampled and carry no gradient.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.utils.torch_utils import FLOAT_MIN


class MaskedPPOTorchRLModule(DefaultPPOTorchRLModule):
    def __init__(self, *, observation_space: gym.spaces.Dict, **kwargs: Any) -> None:
        if not isinstance(observation_space, gym.spaces.Dict) or "action_mask" not in observation_space.spaces:
            raise ValueError(f"needs Dict(observations, action_mask) observations, got {observation_space}")
        self.masked_observation_space = observation_space
        super().__init__(observation_space=observation_space["observations"], **kwargs)

    def setup(self) -> None:
        super().setup()  # builds the networks on the inner observation space
        self.observation_space = self.masked_observation_space

    @staticmethod
    def _unmask(batch: dict[str, Any]) -> tuple[dict[str, Any], torch.Tensor]:
        observations = batch[Columns.OBS]
        return {**batch, Columns.OBS: observations["observations"]}, observations["action_mask"]

    @staticmethod
    def _masked(outputs: dict[str, Any], mask: torch.Tensor) -> dict[str, Any]:
        logits = outputs[Columns.ACTION_DIST_INPUTS]
        outputs[Columns.ACTION_DIST_INPUTS] = torch.where(mask > 0, logits, torch.full_like(logits, FLOAT_MIN))
        return outputs

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        inner, mask = self._unmask(batch)
        return self._masked(super()._forward(inner, **kwargs), mask)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        inner, mask = self._unmask(batch)
        return self._masked(super()._forward_train(inner, **kwargs), mask)

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> Any:
        if embeddings is None and isinstance(batch[Columns.OBS], dict):
            batch, _ = self._unmask(batch)
        return super().compute_values(batch, embeddings)
