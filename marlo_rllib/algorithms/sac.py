"""SAC with discrete actions (RLlib's discrete SAC: expectations over the policy's greens instead
of reparameterised samples), twin Q, automatic entropy tuning."""

from __future__ import annotations

from typing import Any

from marlo_rllib.algorithms.spec import ITERATION_ENV_STEPS, AlgorithmSpec

# Seed 004's CPU preset (SEED_004_CPU) trained a 4096-transition batch once per ~2,700 env steps
# (RLlib's training_intensity counts env steps; a grid4x4 env step is 16 transitions), so it barely
# learned: 389 s on grid4x4 after 5 minutes, fixed-time 91.5. Here a batch of 256 and
# agent_replay_ratio 0.5: every sampled junction transition is trained on about half a time.
# RLlib's "auto" entropy target is -1 for a Discrete space, which any policy meets, so alpha only
# shrinks; 0.5 nats is below the entropy of a uniform choice between two greens (ln 2 = 0.69), and
# keeps some uncertainty where a junction has more. Gamma as PPO's (ppo.py).
_COMMON = {"gamma": 0.95, "tau": 0.01, "initial_alpha": 0.1, "target_entropy": 0.5, "twin_q": True}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "actor_lr": 3e-4,
        "critic_lr": 3e-4,
        "alpha_lr": 3e-4,
        "train_batch_size_per_learner": 256,
        "replay_buffer_config": {"type": "MultiAgentEpisodeReplayBuffer", "capacity": 500_000},
        "agent_replay_ratio": 0.5,
        "num_steps_sampled_before_learning_starts": 1000,
        **_COMMON,
    },
    "gpu": {
        "actor_lr": 5e-4,
        "critic_lr": 5e-4,
        "alpha_lr": 5e-4,
        "train_batch_size_per_learner": 8192,
        "replay_buffer_config": {"type": "MultiAgentEpisodeReplayBuffer", "capacity": 1_000_000},
        "agent_replay_ratio": 1.0,
        "num_steps_sampled_before_learning_starts": 1000,
        **_COMMON,
    },
}
SEED_004_CPU = {
    "actor_lr": 3e-4,
    "critic_lr": 3e-4,
    "alpha_lr": 3e-4,
    "train_batch_size_per_learner": 4096,
    "replay_buffer_config": {"type": "MultiAgentEpisodeReplayBuffer", "capacity": 500_000},
    "training_intensity": 1.0,
    "num_steps_sampled_before_learning_starts": 5000,
    **_COMMON,
    "gamma": 0.995,
    "target_entropy": "auto",
}


def config_class() -> type:
    from ray.rllib.algorithms.sac import SACConfig

    return SACConfig


def masked_module_class() -> type:
    from marlo_rllib.models.masked import MaskedSACTorchRLModule

    return MaskedSACTorchRLModule


SPEC = AlgorithmSpec(
    name="SAC",
    offline_only=False,
    centralized_critic=False,
    # One automatic entropy target per module, from the (padded) action count: junctions with padded
    # greens could never reach it. A shared SAC policy is refused where any green is padded.
    action_masking=False,
    rollout_fragment_length=64,
    iteration_env_steps=ITERATION_ENV_STEPS,
    presets=PRESETS,
    config_class=config_class,
    masked_module_class=masked_module_class,
)
