"""Discrete conservative Q-learning, offline, from a `marlo collect` dataset (marlo_rllib/offline/cql.py).
One shared policy learns from every junction's transitions; the masked DQN module keeps padded
greens out of the argmax, the bootstrap target and the conservative log-sum-exp."""

from __future__ import annotations

from typing import Any

from marlo_rllib.algorithms.spec import AlgorithmSpec

# Sizes: train batch in transitions; dataset_num_iters_per_learner minibatches per iteration; the
# target network is copied (tau 1.0) after every iteration. gamma 0.95 (PPO's horizon) and a light
# conservative penalty: on grid4x4, from max-pressure (epsilon 0.2) and random episodes, gamma 0.99 /
# alpha 1 gave 77.8 s, gamma 0.95 66.7, gamma 0.95 / alpha 0.1 38.7; the best behaviour 44.8, BC 72.7
# (docs/LEARNING.md, "offline grid4x4").
_COMMON = {
    "lr": 5e-4,
    "gamma": 0.95,
    "alpha": 0.1,
    "double_q": True,
    "dueling": True,
    "n_step": 1,
    "tau": 1.0,
    "target_network_update_freq": 1,
    "grad_clip": 10.0,
    "td_error_loss_fn": "huber",
    "num_steps_sampled_before_learning_starts": 0,
}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"train_batch_size_per_learner": 256, "dataset_num_iters_per_learner": 100, **_COMMON},
    "gpu": {"train_batch_size_per_learner": 2048, "dataset_num_iters_per_learner": 100, **_COMMON},
}


def config_class() -> type:
    from marlo_rllib.offline.cql import CQLConfig

    return CQLConfig


def masked_module_class() -> type:
    from marlo_rllib.models.masked import MaskedDQNTorchRLModule

    return MaskedDQNTorchRLModule


SPEC = AlgorithmSpec(
    name="CQL",
    offline_only=True,
    centralized_critic=False,
    action_masking=True,
    rollout_fragment_length="auto",  # evaluation episodes only
    iteration_env_steps=None,
    presets=PRESETS,
    config_class=config_class,
    masked_module_class=masked_module_class,
    q_learner=True,
)
