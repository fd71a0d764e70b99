"""Discrete conservative Q-learning (Kumar et al., 2020, CQL(H)) on RLlib's new stack.

loss = DQN loss (double Q, Huber) + alpha * mean over the batch of
       [ logsumexp_a Q(s, a) - Q(s, a_logged) ]

The log-sum-exp runs over the junction's real greens only: the masked DQN module gives padded
greens Q = -inf, which add exp(-inf) = 0. RLlib's own CQL is SAC-based, for continuous actions.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.dqn import DQN, DQNConfig
from ray.rllib.algorithms.dqn.dqn_learner import QF_PREDS
from ray.rllib.algorithms.dqn.torch.dqn_torch_learner import DQNTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.utils.metrics import TD_ERROR_KEY

from marlo_rllib.offline.pipeline import OfflineTraining

CQL_PENALTY_KEY = "cql_penalty"


def conservative_penalty(q_values: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Mean of logsumexp_a Q(s, a) - Q(s, a_logged); a Q of -inf marks an action that does not exist."""
    logged = torch.gather(q_values, -1, actions.long().unsqueeze(-1)).squeeze(-1)
    return torch.mean(torch.logsumexp(q_values, dim=-1) - logged)


class CQLTorchLearner(DQNTorchLearner):
    def compute_loss_for_module(self, *, module_id: str, config: Any, batch: dict, fwd_out: dict) -> torch.Tensor:
        td_loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        self.metrics.delete(module_id, TD_ERROR_KEY, key_error=False)  # per-row TD errors feed prioritized replay only
        penalty = conservative_penalty(fwd_out[QF_PREDS], batch[Columns.ACTIONS])
        self.metrics.log_value((module_id, CQL_PENALTY_KEY), penalty, window=1)  # the TD loss is DQN's qf_loss
        return td_loss + config.alpha * penalty


class CQL(OfflineTraining, DQN):
    @classmethod
    def get_default_config(cls) -> CQLConfig:
        return CQLConfig()


class CQLConfig(DQNConfig):
    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or CQL)
        self._is_online = False
        self.min_sample_timesteps_per_iteration = 0  # DQN's 1000 counts env-runner samples, which offline has none of
        self.alpha = 1.0

    def training(self, *, alpha: float = NotProvided, **kwargs: Any) -> CQLConfig:
        """alpha: weight of the conservative penalty."""
        super().training(**kwargs)
        if alpha is not NotProvided:
            self.alpha = alpha
        return self

    def get_default_learner_class(self) -> type:
        return CQLTorchLearner
