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
# sampled by each env runner. Seed 004's epsilon decayed over 10,000 env steps per runner, the whole
# of a 5-minute run on grid4x4: its training episodes were still exploring at the end. Each env step
# gives one transition per junction, so 3,000 per runner (48,000 transitions on grid4x4, about a
# minute and a half) is plenty of exploration data. Gamma as PPO's (ppo.py).
_COMMON = {
    "gamma": 0.95,
    "double_q": True,
    "dueling": True,
    "n_step": 3,
    "tau": 0.01,
    "target_network_update_freq": 1,
    "grad_clip": 10.0,
    "td_error_loss_fn": "huber",
    "epsilon": [[0, 1.0], [3_000, 0.02]],
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
SEED_004_CPU = {**PRESETS["cpu"], "gamma": 0.995, "epsilon": [[0, 1.0], [10_000, 0.05]]}


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
)
