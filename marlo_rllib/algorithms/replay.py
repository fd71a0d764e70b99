"""DQN with marlo's prioritized replay: priority = |TD error| + epsilon, so a transition the Q-net
already fits keeps a chance of being replayed (RLlib's buffer floors priorities at 1e-12)."""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.algorithms.dqn import DQN, DQNConfig
from ray.rllib.utils.replay_buffers.multi_agent_prioritized_episode_buffer import (
    MultiAgentPrioritizedEpisodeReplayBuffer,
)


class EpsilonPrioritizedEpisodeReplayBuffer(MultiAgentPrioritizedEpisodeReplayBuffer):
    def __init__(self, *args: Any, priority_epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.priority_epsilon = priority_epsilon

    def update_priorities(self, priorities: Any, module_id: str) -> None:
        super().update_priorities(np.abs(np.asarray(priorities)) + self.priority_epsilon, module_id)


class MarloDQN(DQN):
    def _create_local_replay_buffer_if_necessary(self, config: Any) -> Any:
        buffer = config.get("replay_buffer_config") or {}
        if isinstance(buffer.get("type"), type):  # Tune's config round trip turns a dotted name into its class
            buffer["type"] = f"{buffer['type'].__module__}.{buffer['type'].__qualname__}"
        return super()._create_local_replay_buffer_if_necessary(config)


class MarloDQNConfig(DQNConfig):
    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or MarloDQN)
