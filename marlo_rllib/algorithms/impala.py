"""IMPALA: actor-learner with V-trace off-policy correction; the high-throughput choice."""

from __future__ import annotations

from typing import Any

from marlo_rllib.algorithms.spec import ITERATION_ENV_STEPS, AlgorithmSpec

# Seed 004's (gamma 0.995, lr 6e-4, grad_clip 40, minibatches of 512 env steps) got worse as it
# trained: 716 s on grid4x4 after 5 minutes, fixed-time 91.5 (docs/LEARNING.md). Minibatches count
# env steps (whole 64-step fragments): 512 of them are 8,192 junction steps on grid4x4, two gradient
# steps per batch, and after 40k env steps at lr 3e-4 its policy was still near uniform (entropy
# 1.7 of 2.08). Minibatches of one fragment give 16 steps per batch, about PPO's rate per env step;
# V-trace's policy gradient has no trust region, so a tight gradient clip; gamma as PPO's (ppo.py).
_COMMON = {
    "gamma": 0.95,
    "grad_clip": 1.0,
    "entropy_coeff": 0.01,
    "vf_loss_coeff": 0.5,
    "vtrace_clip_rho_threshold": 1.0,
    "vtrace_clip_pg_rho_threshold": 1.0,
}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"lr": 5e-4, "train_batch_size_per_learner": 1024, "minibatch_size": 64, **_COMMON},
    "gpu": {"lr": 5e-4, "train_batch_size_per_learner": 4096, "minibatch_size": 256, **_COMMON},
}
SEED_004_CPU = {**PRESETS["cpu"], "lr": 6e-4, "minibatch_size": 512, "gamma": 0.995, "grad_clip": 40.0}


def config_class() -> type:
    from ray.rllib.algorithms.impala import IMPALAConfig

    return IMPALAConfig


def masked_module_class() -> type:
    from marlo_rllib.models.masked import MaskedPPOTorchRLModule  # IMPALA's default module is PPO's

    return MaskedPPOTorchRLModule


SPEC = AlgorithmSpec(
    name="IMPALA",
    offline_only=False,
    centralized_critic=False,
    action_masking=True,
    rollout_fragment_length=64,  # env steps; minibatches hold whole fragments
    iteration_env_steps=ITERATION_ENV_STEPS,
    presets=PRESETS,
    config_class=config_class,
    masked_module_class=masked_module_class,
)
