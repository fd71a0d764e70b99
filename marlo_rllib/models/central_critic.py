"""MAPPO on RLlib's new stack: local actors, a centralized critic, decentralized execution.

The actor reads only its junction's observation (padded and masked as in models/masked.py). The
critic (`critic_input`) reads, by default (`agent_specific`), the junction's own observation (with
its one-hot) beside the env's global state (`TrafficSignalEnv.state()`: every junction's observation
plus network totals), MAPPO's "agent-specific global state" (Yu et al., 2022). With `concat` it
reads the global state and the junction's one-hot, and must find its junction inside the state.
With `critic_sharing` off, each junction has its own critic network on the same input. With
`pooled` it reads the state as one row per junction: one encoder embeds every row, and the value
comes from the junction's own embedding, the mean of all of them, the network totals and the
junction's one-hot, so its encoder does not grow with the number of junctions. The global state
travels in the env's infos and reaches the module only on the learner, through the AddGlobalState
learner connector: it keeps each distinct state once, in a table on the module, and gives every
agent step the row of its state, so that the learner shuffles and slices row numbers, not one
copy of the state per junction. Env runners build the module with `inference_only=True`, which
leaves the critic out, and so does `load_controller`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from marlo_rllib.models.masked import mask_logits

STATE_ROW = "state_row"
AGENT_INDEX = "agent_index"
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "silu": torch.nn.SiLU}


def mlp(sizes: list[int], activation: str) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return torch.nn.Sequential(*layers)


NETWORK_TOTALS = 2  # the global state's last entries (TrafficSignalEnv.state())
POOLED_WIDTH = 64  # the junction encoder's width: it runs once per junction per agent step


class PooledCritic(torch.nn.Module):
    """V(state, junction) from per-junction embeddings: [own, mean over junctions, network totals,
    the junction's one-hot]."""

    def __init__(self, state_dim: int, num_agents: int, hiddens: list[int], activation: str) -> None:
        super().__init__()
        self.num_agents = num_agents
        self.row = (state_dim - NETWORK_TOTALS) // num_agents
        if self.row * num_agents + NETWORK_TOTALS != state_dim:
            raise ValueError(f"a state of {state_dim} is not {num_agents} equal rows and {NETWORK_TOTALS} totals")
        self.encoder = mlp([self.row, POOLED_WIDTH, POOLED_WIDTH], activation)
        self.head = mlp([2 * POOLED_WIDTH + NETWORK_TOTALS + num_agents, *hiddens, 1], activation)

    def forward(self, state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        rows = state[:, :-NETWORK_TOTALS].reshape(state.shape[0], self.num_agents, self.row)
        embedded = self.encoder(rows)
        own = embedded[torch.arange(state.shape[0], device=state.device), index]
        one_hot = torch.nn.functional.one_hot(index, self.num_agents).to(state.dtype)
        features = torch.cat([own, embedded.mean(dim=1), state[:, -NETWORK_TOTALS:], one_hot], dim=-1)
        return self.head(features).squeeze(-1)


class CentralCriticPPOTorchRLModule(TorchRLModule, ValueFunctionAPI):
    """model_config: fcnet_hiddens, fcnet_activation, state_dim, num_agents, critic_sharing, critic_input."""

    def setup(self) -> None:
        space = self.observation_space
        if not isinstance(space, gym.spaces.Dict) or "action_mask" not in space.spaces:
            raise ValueError(f"needs Dict(observations, action_mask) observations, got {space}")
        hiddens, activation = list(self.model_config["fcnet_hiddens"]), self.model_config["fcnet_activation"]
        self.actor = mlp([space["observations"].shape[0], *hiddens, self.action_space.n], activation)
        if self.inference_only:
            return
        self.global_states = torch.zeros(0, self.model_config["state_dim"])  # the batch's, set by AddGlobalState
        state_dim, agents = self.model_config["state_dim"], self.model_config["num_agents"]
        self.critic_input = critic_input = self.model_config.get("critic_input", "agent_specific")
        if critic_input == "pooled":
            self.critic = PooledCritic(state_dim, agents, hiddens, activation)
            return
        width = state_dim + (space["observations"].shape[0] if critic_input == "agent_specific" else 0)
        if not self.model_config.get("critic_sharing", True):
            self.critic = torch.nn.ModuleList(mlp([width, *hiddens, 1], activation) for _ in range(agents))
        else:  # concat adds the junction's one-hot; agent_specific has it in the observation
            self.critic = mlp([width + (agents if critic_input == "concat" else 0), *hiddens, 1], activation)

    def get_non_inference_attributes(self) -> list[str]:
        return ["critic"]

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        observations = batch[Columns.OBS]
        logits = self.actor(observations["observations"])
        return {Columns.ACTION_DIST_INPUTS: mask_logits(logits, observations["action_mask"])}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        state, index = self.global_states[batch[STATE_ROW].long()], batch[AGENT_INDEX].long()
        if isinstance(self.critic, PooledCritic):
            return self.critic(state, index)
        if self.critic_input == "agent_specific":
            state = torch.cat([batch[Columns.OBS]["observations"], state], dim=-1)
        if isinstance(self.critic, torch.nn.ModuleList):
            values = torch.zeros(state.shape[0], device=state.device)
            for i, critic in enumerate(self.critic):
                rows = index == i
                if rows.any():
                    values[rows] = critic(state[rows]).squeeze(-1)
            return values
        if self.critic_input == "concat":
            one_hot = torch.nn.functional.one_hot(index, self.model_config["num_agents"]).to(state.dtype)
            state = torch.cat([state, one_hot], dim=-1)
        return self.critic(state).squeeze(-1)


class AddGlobalState(ConnectorV2):
    """Learner connector: puts the global states the env wrote into the infos (`state_in_infos=True`)
    into a table on every centralized-critic module, each distinct state once (the env gives all
    junctions of a step the same array), and adds a STATE_ROW and an AGENT_INDEX column for every
    agent step."""

    def __init__(
        self, input_observation_space: Any = None, input_action_space: Any = None, *, agents: list[str], **kwargs: Any
    ) -> None:
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.agent_index = {agent: i for i, agent in enumerate(agents)}

    def __call__(self, *, rl_module: Any, batch: dict[str, Any], episodes: list[Any], **kwargs: Any) -> Any:
        row_of: dict[int, int] = {}
        states: list[np.ndarray] = []
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            steps = len(episode)
            rows = np.empty(steps, dtype=np.int64)
            for t, info in enumerate(episode.get_infos(slice(0, steps))):
                state = info["state"]
                row = row_of.setdefault(id(state), len(states))
                if row == len(states):
                    states.append(state)
                rows[t] = row
            self.add_n_batch_items(batch, STATE_ROW, items_to_add=rows, num_items=steps, single_agent_episode=episode)
            index = np.full(steps, self.agent_index[episode.agent_id], dtype=np.int64)
            self.add_n_batch_items(
                batch, AGENT_INDEX, items_to_add=index, num_items=steps, single_agent_episode=episode
            )
        if states:
            table = torch.from_numpy(np.stack(states).astype(np.float32, copy=False))
            for module in rl_module.values():
                if isinstance(module, CentralCriticPPOTorchRLModule):
                    module.global_states = table.to(next(module.parameters()).device)
        return batch
