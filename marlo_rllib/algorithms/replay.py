"""DQN with marlo's prioritized replay: priority = |TD error| + epsilon, so a transition the Q-net
already fits keeps a chance of being replayed (RLlib's buffer floors priorities at 1e-12).

RLlib sizes each module's priority trees by `capacity`, which counts env steps, but a module shared
by J junctions stores J transitions per env step: its trees ran out of slots at capacity / J env
steps (grid4x4 DQN crashed at 16k env steps). `transitions_per_env_step` sizes them for J."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from ray.rllib.algorithms.dqn import DQN, DQNConfig
from ray.rllib.execution.segment_tree import MinSegmentTree, SumSegmentTree
from ray.rllib.utils.replay_buffers.multi_agent_prioritized_episode_buffer import (
    MultiAgentPrioritizedEpisodeReplayBuffer,
)


class EpsilonPrioritizedEpisodeReplayBuffer(MultiAgentPrioritizedEpisodeReplayBuffer):
    def __init__(
        self, *args: Any, priority_epsilon: float = 1e-6, transitions_per_env_step: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.priority_epsilon = priority_epsilon
        self.transitions_per_env_step = transitions_per_env_step
        self._size_trees()

    def _size_trees(self) -> None:
        slots = 2 * int(2 ** np.ceil(np.log2(self.capacity * self.transitions_per_env_step)))
        self._module_to_sum_segment.default_factory = lambda: SumSegmentTree(slots)
        self._module_to_min_segment.default_factory = lambda: MinSegmentTree(slots)
        self._module_to_free_nodes.default_factory = lambda: deque(range(slots), maxlen=slots)

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._size_trees()

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
