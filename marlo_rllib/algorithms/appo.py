"""APPO: asynchronous PPO; env runners keep sampling while the learner updates, with V-trace
correcting for the policy lag and a clipped surrogate against a slowly updated target policy."""

from __future__ import annotations

from typing import Any

from marlo_rllib.algorithms.spec import ITERATION_ENV_STEPS, AlgorithmSpec

_COMMON = {
    "gamma": 0.95,  # as PPO's (ppo.py)
    "lambda_": 0.9,
    "clip_param": 0.2,
    "grad_clip": 1.0,
    "entropy_coeff": 0.01,
    "vf_loss_coeff": 0.5,
    "vtrace_clip_rho_threshold": 1.0,
    "vtrace_clip_pg_rho_threshold": 1.0,
}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"lr": 5e-4, "train_batch_size_per_learner": 1024, "minibatch_size": 512, "num_epochs": 2, **_COMMON},
    "gpu": {"lr": 5e-4, "train_batch_size_per_learner": 4096, "minibatch_size": 1024, "num_epochs": 2, **_COMMON},
}
SEED_004_CPU = {**PRESETS["cpu"], "gamma": 0.995, "lambda_": 0.95}


def config_class() -> type:
    from ray.rllib.algorithms.appo import APPOConfig

    return APPOConfig


def masked_module_class() -> type:
    from marlo_rllib.models.masked import MaskedAPPOTorchRLModule

    return MaskedAPPOTorchRLModule


SPEC = AlgorithmSpec(
    name="APPO",
    offline_only=False,
    centralized_critic=False,
    action_masking=True,
    rollout_fragment_length=64,  # env steps; minibatches hold whole fragments
    iteration_env_steps=ITERATION_ENV_STEPS,
    presets=PRESETS,
    config_class=config_class,
    masked_module_class=masked_module_class,
)
