"""IMPALA: actor-learner with V-trace off-policy correction; the high-throughput choice."""

from __future__ import annotations

from typing import Any

from marlo_rllib.algorithms.spec import ITERATION_ENV_STEPS, AlgorithmSpec

# Seed 004's (gamma 0.995, lr 6e-4, grad_clip 40) got worse as it trained: 716 s on grid4x4 after
# 5 minutes, fixed-time 91.5 (docs/LEARNING.md). V-trace's policy gradient has no trust region and
# its advantages are not normalised, so the step size decides: minibatches count env steps (whole
# 64-step fragments), and 512 of them (two gradient steps per batch) at lr 3e-4 learn slowly but
# steadily; minibatches of 64 at lr 5e-4 (16 steps per batch) collapsed the policy's entropy to
# 0.06 within 5 minutes and locked the grid ("Algorithms side by side on grid4x4"). Gamma as PPO's.
_COMMON = {
    "gamma": 0.95,
    "grad_clip": 1.0,
    "entropy_coeff": 0.01,
    "vf_loss_coeff": 0.5,
    "vtrace_clip_rho_threshold": 1.0,
    "vtrace_clip_pg_rho_threshold": 1.0,
    "standardise_advantages": False,
}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"lr": 3e-4, "train_batch_size_per_learner": 1024, "minibatch_size": 512, **_COMMON},
    "gpu": {"lr": 3e-4, "train_batch_size_per_learner": 4096, "minibatch_size": 512, **_COMMON},
}
SEED_004_CPU = {**PRESETS["cpu"], "lr": 6e-4, "gamma": 0.995, "grad_clip": 40.0}


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
    caution=(
        "IMPALA's policy gradient has no trust region, and on grid4x4 it starts slowly: its greedy policy "
        "locks the grid for the first minutes and beats max-pressure only after 15 minutes (32.5 s at 20, "
        "max-pressure 37.8; docs/LEARNING.md); APPO, IMPALA with a trust region, does after 4. Give it time "
        "(on cologne8: 19.0 s at 20 minutes, max-pressure 26.6)"
    ),
)
