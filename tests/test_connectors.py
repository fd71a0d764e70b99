"""The env runner's direct connectors (marlo_rllib/env/connectors.py) against RLlib's default
pipelines, on real SUMO: cologne8, whose junctions differ, so some greens are padded and masked."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from marlo_rllib.config import compose
from marlo_rllib.env.connectors import ROWS, actions_to_envs, direct_connectors_fit, observations_to_module
from marlo_rllib.env.vector import MarloEnvRunner
from marlo_rllib.training.callbacks import TrafficMetricsCallback
from marlo_rllib.training.rllib_config import build_config

STEPS = 6


@pytest.fixture(scope="module")
def runner():
    config = compose({"scenario": "cologne8"}, {"env": {"episode_seconds": 5 * STEPS}})
    runner = MarloEnvRunner(config=build_config(config, config.env_config(), [], TrafficMetricsCallback))
    yield runner
    runner.stop()


def by_agent(batch: dict, rows: list[tuple[object, str]]) -> dict[str, dict[str, np.ndarray]]:
    """{agent: {key: its row}} of one module's stacked observations."""
    return {agent: {k: v[i].numpy() for k, v in batch[Columns.OBS].items()} for i, (_, agent) in enumerate(rows)}


def per_agent(to_env: dict, column: str) -> dict[str, np.ndarray]:
    return {agent: np.asarray(value) for agent, value in to_env[column][0].items()}


def test_the_direct_connectors_give_what_rllibs_pipelines_give(runner):
    assert direct_connectors_fit(runner.config, runner.module)
    runner.sample(num_timesteps=2, explore=True)  # an ongoing episode with a few steps in it
    episodes = runner._ongoing_episodes
    newest = {Columns.OBS: [episodes[0].get_observations(-1)]}

    rllib_shared, direct_shared = {}, {}
    rllib_batch = runner._env_to_module(
        episodes=episodes, batch={}, rl_module=runner.module, explore=False, shared_data=rllib_shared, **newest
    )
    direct_batch = observations_to_module(episodes=episodes, shared_data=direct_shared, **newest)
    assert set(rllib_batch) == set(direct_batch) == {"shared"}
    rllib_rows = rllib_shared["memorized_map_structure"]["shared"]
    direct_rows = direct_shared[ROWS]["shared"]
    assert (
        sorted(a for _, a in rllib_rows)
        == sorted(a for _, a in direct_rows)
        == sorted(runner.env.envs[0].unwrapped.possible_agents)
    )
    rllib_obs = by_agent(rllib_batch["shared"], rllib_rows)
    direct_obs = by_agent(direct_batch["shared"], direct_rows)
    for agent, observation in direct_obs.items():
        for key, value in observation.items():
            assert value.dtype == rllib_obs[agent][key].dtype
            np.testing.assert_array_equal(value, rllib_obs[agent][key])
    masks = {agent: observation["action_mask"] for agent, observation in direct_obs.items()}
    assert any(not mask.all() for mask in masks.values()), "cologne8 should have padded greens"

    for explore in (False, True):
        direct = actions_to_envs(
            rl_module=runner.module,
            batch=runner.module.forward_inference(direct_batch),
            episodes=episodes,
            explore=explore,
            shared_data=direct_shared,
        )
        rllib = runner._module_to_env(
            rl_module=runner.module,
            batch=runner.module.forward_inference(rllib_batch),
            episodes=episodes,
            explore=explore,
            shared_data=rllib_shared,
        )
        assert set(direct) == set(rllib) == {Columns.ACTIONS, Columns.ACTION_DIST_INPUTS, Columns.ACTION_LOGP}
        for column in direct:
            ours, theirs = per_agent(direct, column), per_agent(rllib, column)
            assert set(ours) == set(theirs)
            assert all(ours[a].dtype == theirs[a].dtype and ours[a].shape == theirs[a].shape for a in ours)
            if not explore:  # the distribution's mode: exactly what RLlib's pipeline gives
                for agent in ours:
                    np.testing.assert_allclose(ours[agent], theirs[agent], rtol=1e-6)
        logits, logp = per_agent(direct, Columns.ACTION_DIST_INPUTS), per_agent(direct, Columns.ACTION_LOGP)
        for agent, action in per_agent(direct, Columns.ACTIONS).items():
            assert masks[agent][action] == 1  # never a padded green
            if explore:  # sampled: its log-probability under the distribution
                expected = torch.log_softmax(torch.from_numpy(logits[agent]), -1)[int(action)].item()
                assert logp[agent] == pytest.approx(expected, abs=1e-5)


def test_a_sample_holds_the_same_episodes_with_either_connectors(runner, monkeypatch):
    def shape(episodes: list) -> list:
        out = []
        for episode in episodes:
            for agent, single in sorted(episode.agent_episodes.items()):
                extra = {k: (np.asarray(v).dtype, np.asarray(v).shape) for k, v in single.extra_model_outputs.items()}
                out.append((agent, len(single), np.asarray(single.actions).dtype, sorted(extra.items())))
        return out

    runner.sample(num_episodes=1)  # start at an episode's beginning
    direct = runner.sample(num_timesteps=STEPS + 2)
    monkeypatch.setattr("marlo_rllib.env.vector.direct_connectors_fit", lambda config, module: False)
    runner.sample(num_episodes=1)
    rllib = runner.sample(num_timesteps=STEPS + 2)
    assert [len(e) for e in direct] == [len(e) for e in rllib] == [STEPS, 2]
    assert shape(direct) == shape(rllib)
    assert all(e.is_numpy for e in direct)


def test_a_users_connector_keeps_rllibs_pipelines(runner):
    config = runner.config.copy(copy_frozen=False)
    assert direct_connectors_fit(config, runner.module)
    config.env_runners(env_to_module_connector=lambda env, spaces, device: [])
    assert not direct_connectors_fit(config, runner.module)
