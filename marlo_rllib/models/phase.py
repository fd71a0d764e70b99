"""A shared policy that scores phases, in the spirit of FRAP (Zheng et al., 2019): one network sees
every junction the same way, whatever its lanes and however many greens it has.

The observation is env.observation "phase" (env/observations.py PhaseObservation): per green,
what choosing it would serve, then the min-green flag and (with env.agent_id) the junction's
one-hot. Each green's features, with the flags, pass through one embedding network; the greens'
mean embedding is the junction's context; one scoring network turns [green, context] into that
green's logit. Weights are shared across greens, so a junction's greens are scored alike in any
order and padded greens (masked) change nothing. The value network reads the context and the
greens' max embedding.

model_config: fcnet_hiddens (the embedding's width is the last), fcnet_activation.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from marlo_rllib.env.observations import PHASE_FEATURES
from marlo_rllib.models.central_critic import ACTIVATIONS, mlp
from marlo_rllib.models.masked import mask_logits


class PhasePPOTorchRLModule(TorchRLModule, ValueFunctionAPI):
    def setup(self) -> None:
        space = self.observation_space
        if not isinstance(space, gym.spaces.Dict) or "action_mask" not in space.spaces:
            raise ValueError(f"needs Dict(observations, action_mask) observations, got {space}")
        self.greens = int(self.action_space.n)
        self.features = PHASE_FEATURES
        width = int(space["observations"].shape[0])
        self.flags = width - self.greens * self.features
        if self.flags < 0:
            raise ValueError(
                f"observations of width {width} hold no {self.greens} x {self.features} phase block: "
                "train with env.observation=phase"
            )
        hiddens, activation = list(self.model_config["fcnet_hiddens"]), self.model_config["fcnet_activation"]
        embedding = hiddens[-1]
        self.embed = mlp([self.features + self.flags, *hiddens], activation)
        self.embed.append(ACTIVATIONS[activation]())
        self.score = mlp([2 * embedding, *hiddens, 1], activation)
        if not self.inference_only:
            self.value = mlp([2 * embedding + self.flags, *hiddens, 1], activation)

    def get_non_inference_attributes(self) -> list[str]:
        return ["value"]

    def _encode(self, observations: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """(per-green embeddings (B, G, H), context (B, H), strongest (B, H), flags (B, F)), padded
        greens left out of context and strongest."""
        flat, mask = observations["observations"], observations["action_mask"].to(torch.float32)
        phases = flat[:, : self.greens * self.features].reshape(-1, self.greens, self.features)
        flags = flat[:, self.greens * self.features :]
        per_green = torch.cat([phases, flags.unsqueeze(1).expand(-1, self.greens, -1)], dim=-1)
        embedded = self.embed(per_green) * mask.unsqueeze(-1)
        context = embedded.sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
        strongest = embedded.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).max(dim=1).values
        return embedded, context, strongest, flags

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        observations = batch[Columns.OBS]
        embedded, context, _, _ = self._encode(observations)
        paired = torch.cat([embedded, context.unsqueeze(1).expand(-1, self.greens, -1)], dim=-1)
        logits = self.score(paired).squeeze(-1)
        return {Columns.ACTION_DIST_INPUTS: mask_logits(logits, observations["action_mask"])}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        _, context, strongest, flags = self._encode(batch[Columns.OBS])
        return self.value(torch.cat([context, strongest, flags], dim=-1)).squeeze(-1)
