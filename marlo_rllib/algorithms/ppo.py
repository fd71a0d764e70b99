"""PPO: on-policy, clipped surrogate with GAE; the default. With `--policy central` it is MAPPO:
local actors and a centralized critic (models/central_critic.py)."""

from __future__ import annotations

from typing import Any

from marlo_rllib.algorithms.spec import AlgorithmSpec

# gamma 0.95 and lambda 0.9: at 5 s per decision, a 100 s horizon. With 0.995 (seed 004's) a
# diff-waiting return telescopes towards the episode's final queue and says little about the
# decision: cologne8, 100k env steps, held-out seeds: 29.2 s delay against 34.4 s, 25.2 s with the
# junction one-hot (env.agent_id), 20.5 s with the accumulated-waiting reward; max-pressure 26.6
# (docs/LEARNING.md, "levers").
_COMMON = {
    "gamma": 0.95,
    "lambda_": 0.9,
    "clip_param": 0.1,
    "grad_clip": 1.0,
    "entropy_coeff": 0.01,
    "kl_coeff": 0.2,
    "advantages_per_junction": False,
}
PRESETS: dict[str, dict[str, Any]] = {
    # A shared module sees every junction's steps: a 2048-env-step batch is 32,768 agent steps on grid4x4.
    # Minibatches of 1024 at lr 5e-4 for 6 epochs halve the CPU learner's time per iteration against
    # seed 004's 256 x 8 epochs at 3e-4 (SEED_004_CPU), and learned better per minute (docs/LEARNING.md).
    # Batches of 2048 rather than 4096 update the policy twice as often for the same learner time per
    # env step: at 20 minutes, demand 1.0, grid6 32.57 s against 33.24, grid4x4 29.75 against 29.84,
    # cologne8 20.09 against 20.45 (docs/LEARNING.md, "levers MAP batch"), evaluated every 2nd
    # iteration (evaluation_interval below): an evaluation every 4096 env steps, as before.
    "cpu": {"lr": 5e-4, "train_batch_size_per_learner": 2048, "minibatch_size": 1024, "num_epochs": 6, **_COMMON},
    "gpu": {"lr": 5e-4, "train_batch_size_per_learner": 8192, "minibatch_size": 512, "num_epochs": 10, **_COMMON},
}
SEED_004_CPU = {
    "lr": 3e-4,
    "train_batch_size_per_learner": 4096,
    "minibatch_size": 256,
    "num_epochs": 8,
    **_COMMON,
    "gamma": 0.995,
    "lambda_": 0.95,
}


def config_class() -> type:
    from ray.rllib.algorithms.ppo import PPOConfig

    return PPOConfig


def masked_module_class() -> type:
    from marlo_rllib.models.masked import MaskedPPOTorchRLModule

    return MaskedPPOTorchRLModule


SPEC = AlgorithmSpec(
    name="PPO",
    offline_only=False,
    centralized_critic=True,
    action_masking=True,
    rollout_fragment_length="auto",
    iteration_env_steps=None,
    presets=PRESETS,
    config_class=config_class,
    masked_module_class=masked_module_class,
    # 64 x 64 on a CPU: at 20 minutes, grid4x4 29.87 s against 31.18 with 256 x 256 (1.5x the env steps:
    # the learner's share shrinks), cologne8 20.61 against 20.63 side by side (docs/LEARNING.md,
    # "levers grid4x4 network", "levers cologne8 network"). A GPU learner pays nothing for width.
    hidden_layers={"cpu": (64, 64), "gpu": (256, 256)},
    evaluation_interval={"cpu": 2, "gpu": 1},
)
