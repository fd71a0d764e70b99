"""marlo's prioritized replay buffer holds a shared module's transitions: J per env step."""

import numpy as np
import pytest
from ray.rllib.env.multi_agent_episode import MultiAgentEpisode

from marlo_rllib.algorithms.replay import EpsilonPrioritizedEpisodeReplayBuffer

JUNCTIONS = ["a", "b", "c", "d"]


def shared_episode(steps: int) -> MultiAgentEpisode:
    return MultiAgentEpisode(
        observations=[{j: np.zeros(2, np.float32) for j in JUNCTIONS} for _ in range(steps + 1)],
        actions=[{j: 0 for j in JUNCTIONS} for _ in range(steps)],
        rewards=[{j: 0.0 for j in JUNCTIONS} for _ in range(steps)],
        agent_to_module_mapping_fn=lambda agent, episode: "shared",
        len_lookback_buffer=0,
    )


def test_priority_trees_hold_every_junctions_transitions_up_to_the_env_step_capacity():
    sized = EpsilonPrioritizedEpisodeReplayBuffer(capacity=64, transitions_per_env_step=len(JUNCTIONS))
    for _ in range(3):  # the third episode evicts the first
        sized.add([shared_episode(60)])
    assert sized.get_num_timesteps() <= 120
    assert len(sized.sample(num_items=32, beta=0.4)) > 0
    sized.set_state(sized.get_state())
    sized.add([shared_episode(60)])  # trees restored from a checkpoint are sized alike
    unsized = EpsilonPrioritizedEpisodeReplayBuffer(capacity=64)  # RLlib's sizing: one tree slot per env step
    with pytest.raises(IndexError):
        for _ in range(3):
            unsized.add([shared_episode(60)])
