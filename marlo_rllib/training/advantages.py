"""Advantage standardisation RLlib does not do: PPO's per junction, IMPALA's at all.

PPO, per junction instead of per module:

RLlib standardises GAE advantages over a module's whole batch. A module shared by junctions of
different traffic then learns mostly from the busiest junctions, whose rewards (and so advantages)
are largest; a quiet junction's signal is scaled down to noise. Standardising each junction's
advantages on their own gives every junction the same weight in the policy gradient, as one
module per junction would, while the network stays shared. Standardisation is affine, so applying
it per junction after RLlib's per-module pass gives the same result as applying it alone.

IMPALA: RLlib's V-trace policy gradient uses the raw advantages, so its step size is the reward's
scale times the learning rate, and no clipping bounds it as APPO's does. Standardising them over
each minibatch (as PPO does) makes the step size the learning rate's alone.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from unittest import mock

import torch
from ray.rllib.algorithms.impala.torch import impala_torch_learner
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing


class StandardiseAdvantagesPerAgent(ConnectorV2):
    """Learner connector piece, after GeneralAdvantageEstimation: per (module, agent) standardisation."""

    def __call__(self, *, rl_module: Any, episodes: list[Any], batch: dict[Any, Any], **kwargs: Any) -> Any:
        # A module's rows follow its single-agent episodes in this order (GeneralAdvantageEstimation relies on it too).
        rows: dict[Any, dict[Any, list[torch.Tensor]]] = defaultdict(lambda: defaultdict(list))
        starts: dict[Any, int] = defaultdict(int)
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            module_id = episode.module_id
            if Postprocessing.ADVANTAGES in batch.get(module_id, {}):
                start = starts[module_id]
                rows[module_id][episode.agent_id].append(torch.arange(start, start + len(episode)))
                starts[module_id] = start + len(episode)
        for module_id, by_agent in rows.items():
            advantages = batch[module_id][Postprocessing.ADVANTAGES]
            if starts[module_id] != len(advantages):  # padded (stateful) batches keep RLlib's standardisation
                continue
            for pieces in by_agent.values():
                index = torch.cat(pieces).to(advantages.device)
                values = advantages[index]
                advantages[index] = (values - values.mean()) / values.std(correction=0).clamp(min=1e-4)
        return batch


class PerJunctionAdvantagesPPOLearner(PPOTorchLearner):
    def build(self) -> None:
        super().build()
        if self._learner_connector is not None:
            self._learner_connector.append(StandardiseAdvantagesPerAgent())


def standardised(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`values` minus their mean over `mask`, over their standard deviation there."""
    count = mask.sum().clamp(min=1.0)
    mean = (values * mask).sum() / count
    std = (((values - mean) ** 2 * mask).sum() / count).sqrt()
    return (values - mean) / std.clamp(min=1e-4)


class StandardisedAdvantagesIMPALALearner(impala_torch_learner.IMPALATorchLearner):
    def compute_loss_for_module(self, *, module_id: Any, config: Any, batch: dict, fwd_out: dict) -> Any:
        mask = impala_torch_learner.make_time_major(
            batch[Columns.LOSS_MASK].float(),
            trajectory_len=config.get_rollout_fragment_length(),
            recurrent_seq_len=batch.get("seq_lens"),  # type: ignore[arg-type]  # RLlib's call passes it alike
        )
        vtrace = impala_torch_learner.vtrace_torch

        def vtrace_standardised(**kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            targets, advantages = vtrace(**kwargs)
            return targets, standardised(advantages, mask)

        # RLlib's loss as it is, with only the advantages it computes replaced
        with mock.patch.object(impala_torch_learner, "vtrace_torch", vtrace_standardised):
            return super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
