"""MAPPO (`--policy central`, alias `--algo MAPPO`): local actors, a centralized critic on the
learner only, decentralized execution."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from marlo_rllib.controllers.policy import load_controller
from tests.conftest import assert_finite_episode, marlo, progress

SMALL = [
    "--set",
    "env.episode_seconds=300",
    "--set",
    "model.fcnet_hiddens=[32,32]",
    "--set",
    "training.train_batch_size_per_learner=120",
    "--set",
    "training.minibatch_size=60",
    "--set",
    "training.num_epochs=8",
]


def learner_results(run: Path) -> list[dict]:
    lines = next(run.glob("tune_0/*/result.json")).read_text().splitlines()
    return [json.loads(line)["learners"]["shared"] for line in lines]


@pytest.fixture(scope="module")
def mappo_run(tmp_path_factory, ray_tmp) -> Path:
    out = tmp_path_factory.mktemp("mappo")
    done = marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--algo",
        "MAPPO",
        "--timesteps",
        "240",
        "--seed",
        "3",
        "--out",
        str(out),
        "--run-name",
        "mappo",
        *SMALL,
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / "mappo"


def test_mappo_trains_its_critic_on_the_global_state(mappo_run, make_env):
    metadata = json.loads((mappo_run / "metadata.json").read_text())
    assert metadata["env_config"]["state_in_infos"] is True
    assert metadata["env_config"]["agent_id"] is True  # the default: junction one-hots in the observations
    assert metadata["state_dim"] == make_env("2x2grid", shared_spaces=True, agent_id=True).state_space.shape[0]
    assert len(progress(mappo_run)) == 2
    losses = [r["vf_loss"] for r in learner_results(mappo_run)]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)


@pytest.mark.parametrize(
    "sharing, critic_input",
    [(True, "concat"), (False, "concat"), (True, "pooled"), (True, "agent_specific"), (False, "agent_specific")],
)
def test_central_critic_fits_values_that_only_the_global_state_explains(sharing, critic_input):
    # The value targets are a function of the global state and the junction's index; local
    # observations are noise and the junction's one-hot (as with env.agent_id), so only a critic that
    # reads the state and knows its junction can fit them. Fresh samples every step: no memorising.
    from ray.rllib.core.columns import Columns

    from marlo_rllib.models.central_critic import AGENT_INDEX, STATE_ROW, CentralCriticPPOTorchRLModule

    torch.manual_seed(0)
    space = gym.spaces.Dict({"observations": gym.spaces.Box(-1, 1, (4,)), "action_mask": gym.spaces.MultiBinary(3)})
    module = CentralCriticPPOTorchRLModule(
        observation_space=space,
        action_space=gym.spaces.Discrete(3),
        model_config={
            "fcnet_hiddens": [32, 32],
            "fcnet_activation": "tanh",
            "state_dim": 6,  # two junctions' rows of 2, then the network's 2 totals
            "num_agents": 2,
            "critic_sharing": sharing,
            "critic_input": critic_input,
        },
    )

    def loss_on_fresh_batch() -> torch.Tensor:
        state, index = torch.randn(256, 6), torch.randint(0, 2, (256,))
        targets = torch.where(index == 0, state[:, 0] + state[:, 1], -state[:, 2])
        own = torch.cat([torch.randn(256, 2), torch.nn.functional.one_hot(index, 2).float()], dim=-1)
        observations = {"observations": own, "action_mask": torch.ones(256, 3)}
        module.global_states = state
        batch = {STATE_ROW: torch.arange(256), AGENT_INDEX: index, Columns.OBS: observations}
        return torch.nn.functional.mse_loss(module.compute_values(batch), targets)

    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    first = loss_on_fresh_batch().item()
    for _ in range(300):
        loss = loss_on_fresh_batch()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        loss = loss_on_fresh_batch()
    assert loss.item() < 0.05 * first, (first, loss.item())


def test_global_state_table_holds_each_step_once_and_rows_point_at_it(make_env):
    # Real env steps recorded into an RLlib episode, pickled as it travels from an env runner.
    import pickle

    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule
    from ray.rllib.env.multi_agent_episode import MultiAgentEpisode

    from marlo_rllib.models.central_critic import (
        AGENT_INDEX,
        STATE_ROW,
        AddGlobalState,
        CentralCriticPPOTorchRLModule,
    )

    env = make_env("2x2grid", episode_seconds=300, shared_spaces=True, agent_id=True, state_in_infos=True)
    observations, infos = env.reset(seed=0)
    episode = MultiAgentEpisode(observations=[observations], infos=[infos])
    states = [infos[env.agents[0]]["state"]]
    for _ in range(5):
        actions = {agent: 0 for agent in env.agents}
        observations, rewards, terminated, truncated, infos = env.step(actions)
        episode.add_env_step(observations, actions, rewards, infos=infos, terminateds=terminated, truncateds=truncated)
        states.append(infos[env.agents[0]]["state"])
    env.close()
    episode = pickle.loads(pickle.dumps(episode))
    agents = sorted(observations)
    space = env.observation_space(agents[0])
    critic = CentralCriticPPOTorchRLModule(
        observation_space=space,
        action_space=env.action_space(agents[0]),
        model_config={
            "fcnet_hiddens": [8],
            "fcnet_activation": "tanh",
            "state_dim": env.state_space.shape[0],
            "num_agents": len(agents),
        },
    )
    modules = MultiRLModule(rl_module_specs={})
    modules.add_module("shared", critic)
    batch = AddGlobalState(agents=agents)(rl_module=modules, batch={}, episodes=[episode])

    assert critic.global_states.shape == (len(states) - 1, env.state_space.shape[0])  # not x junctions
    for key, rows in batch[STATE_ROW].items():
        agent = key[1]
        assert np.array_equal(np.concatenate(rows), np.arange(5))
        assert np.array_equal(np.concatenate(batch[AGENT_INDEX][key]), np.full(5, agents.index(agent)))
    assert np.allclose(critic.global_states.numpy(), np.stack(states[:5]))


def test_restored_mappo_controller_acts_from_local_observations_only(mappo_run, make_env):
    controller = load_controller(mappo_run)
    module = controller.modules["shared"]
    assert not hasattr(module, "critic")  # built inference-only, as on the env runners
    assert "state_in_infos" not in controller.env_options
    env = make_env("2x2grid", episode_seconds=300, **controller.env_options)
    observations, infos = env.reset(seed=5)
    controller.reset(env)
    assert all("state" not in info for info in infos.values())
    while env.agents:
        assert set(observations[env.agents[0]]) == {"observations", "action_mask"}
        actions = controller.act(observations, infos)
        assert all(0 <= a < 4 for a in actions.values())
        observations, _, _, _, infos = env.step(actions)
    assert_finite_episode(mappo_run, "2x2grid")


def test_mappo_on_heterogeneous_cologne8(tmp_path, ray_tmp):
    done = marlo(
        "train",
        "--scenario",
        "cologne8",
        "--policy",
        "central",
        "--timesteps",
        "60",
        "--out",
        str(tmp_path),
        "--run-name",
        "c8",
        *SMALL,
        "--set",
        "training.train_batch_size_per_learner=60",
        "--set",
        "critic.sharing=false",
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "c8"
    assert all(math.isfinite(r["vf_loss"]) for r in learner_results(run))
    assert_finite_episode(run, "cologne8")


def test_env_global_state_reaches_infos_only_when_asked(make_env):
    env = make_env("2x2grid", episode_seconds=60, shared_spaces=True, state_in_infos=True)
    observations, infos = env.reset(seed=1)
    state = infos[env.agents[0]]["state"]
    assert state.shape == env.state_space.shape and all(info["state"] is state for info in infos.values())
    local = np.concatenate([observations[a]["observations"] for a in env.possible_agents])
    assert np.array_equal(state[: local.size], local)
