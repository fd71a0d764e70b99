"""RLlib's default modules for one policy shared by junctions of different sizes.

With `shared_spaces`, the env pads every junction to the widest observation and green count and
sends {"observations": x, "action_mask": m}. The networks are built on x alone; m == 0 marks a
padded green, which must never be chosen and must not enter any loss or target.

- Policy-gradient and imitation modules (PPO, APPO, IMPALA; BC, and MARWIL on PPO's module):
  padded greens get a logit of FLOAT_MIN, so they have probability 0, are never sampled and carry
  no gradient (APPO's target policy too).
- DQN (and CQL on it): padded greens get Q = -inf before the dueling mean, the argmax and the
  bootstrap target; RLlib's DQN already reads -inf as "not an action" (its epsilon-greedy draws
  among finite Q, its loss turns -inf into 0 before gathering), and CQL's log-sum-exp skips them.
- SAC: the module only unwraps the observation. Its automatic entropy target is one number per
  module, derived from the action count, which padded junctions could never reach, so marlo
  refuses a shared SAC policy where any green is padded (`needs_mask` in algorithms/__init__.py).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from ray.rllib.algorithms.appo.default_appo_rl_module import TARGET_NETWORK_ACTION_DIST_INPUTS
from ray.rllib.algorithms.appo.torch.default_appo_torch_rl_module import DefaultAPPOTorchRLModule
from ray.rllib.algorithms.bc.torch.default_bc_torch_rl_module import DefaultBCTorchRLModule
from ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module import DefaultDQNTorchRLModule
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.utils.torch_utils import FLOAT_MIN


class MaskedObservations:
    """Builds the parent module on the inner `observations` space; the module itself keeps the Dict."""

    def __init__(self, *, observation_space: gym.spaces.Dict, **kwargs: Any) -> None:
        if not isinstance(observation_space, gym.spaces.Dict) or "action_mask" not in observation_space.spaces:
            raise ValueError(f"needs Dict(observations, action_mask) observations, got {observation_space}")
        self.masked_observation_space = observation_space
        super().__init__(observation_space=observation_space["observations"], **kwargs)

    def setup(self) -> None:
        super().setup()  # builds the networks on the inner observation space
        self.observation_space = self.masked_observation_space

    # RLlib's TorchRLModule switches the module to eval() and back to train() around every
    # env runner's forward pass, walking every submodule twice per env step. An env runner's copy
    # only acts, so it stays in eval mode here; a learner's forward_train() switches to train() itself.
    def forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if self.training:
            self.eval()
        return self._forward_exploration(batch, **kwargs)

    def forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if self.training:
            self.eval()
        return self._forward_inference(batch, **kwargs)

    @staticmethod
    def unmask(batch: dict[str, Any]) -> tuple[dict[str, Any], torch.Tensor]:
        observations = batch[Columns.OBS]
        return {**batch, Columns.OBS: observations["observations"]}, observations["action_mask"]

    def masked_call(
        self, forward: Any, batch: dict[str, Any], key: str = Columns.ACTION_DIST_INPUTS, **kwargs: Any
    ) -> dict[str, Any]:
        """forward() on the inner observations, with the logits under `key` masked."""
        inner, mask = self.unmask(batch)
        outputs = forward(inner, **kwargs)
        outputs[key] = mask_logits(outputs[key], mask)
        return outputs


def mask_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask > 0, logits, torch.full_like(logits, FLOAT_MIN))


class MaskedPPOTorchRLModule(MaskedObservations, DefaultPPOTorchRLModule):
    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.masked_call(super()._forward, batch, **kwargs)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.masked_call(super()._forward_train, batch, **kwargs)

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> Any:
        if embeddings is None and isinstance(batch[Columns.OBS], dict):
            batch, _ = self.unmask(batch)
        return super().compute_values(batch, embeddings)


class MaskedAPPOTorchRLModule(MaskedPPOTorchRLModule, DefaultAPPOTorchRLModule):
    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        return self.masked_call(super().forward_target, batch, key=TARGET_NETWORK_ACTION_DIST_INPUTS)


class MaskedBCTorchRLModule(MaskedObservations, DefaultBCTorchRLModule):
    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.masked_call(super()._forward, batch, **kwargs)


class MaskedDQNTorchRLModule(MaskedObservations, DefaultDQNTorchRLModule):
    def setup(self) -> None:
        super().setup()
        if self.num_atoms > 1:
            raise ValueError("distributional DQN (num_atoms > 1) cannot mask padded greens; use num_atoms=1")

    def _qf_forward_helper(self, batch: dict[str, Any], encoder: Any, head: Any) -> dict[str, Any]:
        inner, mask = self.unmask(batch)

        def masked(model: Any) -> Any:
            return lambda inputs: torch.where(mask > 0, model(inputs), float("-inf"))

        head = {"af": masked(head["af"]), "vf": head["vf"]} if self.uses_dueling else masked(head)
        return super()._qf_forward_helper(inner, encoder, head)


class MaskedSACTorchRLModule(MaskedObservations, DefaultSACTorchRLModule):
    def _forward_inference(self, batch: dict[str, Any]) -> dict[str, Any]:
        return self.masked_call(super()._forward_inference, batch)

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._forward_inference(batch)

    def _forward_train(self, batch: dict[str, Any]) -> dict[str, Any]:
        inner, _ = self.unmask(batch)
        inner[Columns.NEXT_OBS] = batch[Columns.NEXT_OBS]["observations"]
        return super()._forward_train(inner)
