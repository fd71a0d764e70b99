"""DQN, as the original marlo design has it: double Q, dueling heads, prioritized replay
(priority = |TD error| + epsilon), n-step returns, soft target updates with tau, and an
epsilon-greedy schedule. Multi-agent replay through RLlib's MultiAgentPrioritizedEpisodeReplayBuffer
(replay.py adds the epsilon)."""

from __future__ import annotations

from typing import Any

from marlo_rllib.algorithms.spec import ITERATION_ENV_STEPS, AlgorithmSpec

BUFFER = "marlo_rllib.algorithms.replay.EpsilonPrioritizedEpisodeReplayBuffer"


def _buffer(capacity: int) -> dict[str, Any]:
    return {"type": BUFFER, "capacity": capacity, "alpha": 0.6, "beta": 0.4, "priority_epsilon": 1e-6}


# Sizes: replay capacity in env steps; train batch in transitions per module; epsilon in env steps
# sampled by each env runner. Gamma 0.95 with epsilon down to 0.02 over 3,000 env steps per runner
# (PPO's horizon, a shorter exploration) locked grid4x4 up in 5 minutes (evaluation delay 290 to
# 420 s, against 53.3 s with these values; docs/LEARNING.md, algorithms grid4x4), so seed 004's stay.
_COMMON = {
    "gamma": 0.995,
    "double_q": True,
    "dueling": True,
    "n_step": 3,
    "tau": 0.01,
    "target_network_update_freq": 1,
    "grad_clip": 10.0,
    "td_error_loss_fn": "huber",
    "epsilon": [[0, 1.0], [10_000, 0.05]],
}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "lr": 5e-4,
        "train_batch_size_per_learner": 512,
        "replay_buffer_config": _buffer(50_000),
        "num_steps_sampled_before_learning_starts": 2000,
        **_COMMON,
    },
    "gpu": {
        "lr": 5e-4,
        "train_batch_size_per_learner": 2048,
        "replay_buffer_config": _buffer(200_000),
        "num_steps_sampled_before_learning_starts": 2000,
        **_COMMON,
    },
}
SEED_004_CPU = {**PRESETS["cpu"], "replay_buffer_config": _buffer(100_000)}


def config_class() -> type:
    from marlo_rllib.algorithms.replay import MarloDQNConfig

    return MarloDQNConfig


def masked_module_class() -> type:
    from marlo_rllib.models.masked import MaskedDQNTorchRLModule

    return MaskedDQNTorchRLModule


SPEC = AlgorithmSpec(
    name="DQN",
    offline_only=False,
    centralized_critic=False,
    action_masking=True,
    rollout_fragment_length=32,
    iteration_env_steps=ITERATION_ENV_STEPS,
    presets=PRESETS,
    config_class=config_class,
    masked_module_class=masked_module_class,
    q_learner=True,
)
