"""Real networks mix junction shapes: one padded, masked action space must drive them all."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import masked_random_actions


def _valid_states(junction) -> set[str]:
    greens = range(junction.n_greens)
    return set(junction.greens) | {junction.yellow(a, b) for a in greens for b in greens if a != b}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["cologne8", "ingolstadt21"])
def test_full_random_episode_with_padding_and_masks(make_env, scenario):
    env = make_env(scenario, shared_spaces=True)
    agents = env.possible_agents
    assert len({env.junctions[a].n_greens for a in agents}) > 1, "the net should really be heterogeneous"
    assert len({len(env.junctions[a].in_lanes) for a in agents}) > 1
    first = agents[0]
    for agent in agents:
        assert env.observation_space(agent) == env.observation_space(first)
        assert env.action_space(agent) == env.action_space(first)
        mask = env.action_mask(agent)
        assert mask.sum() == env.junctions[agent].n_greens and mask[: mask.sum()].all()

    valid = {a: _valid_states(env.junctions[a]) for a in agents}
    observations, _ = env.reset(seed=0)
    steps, infos = 0, {}
    while env.agents:
        actions = masked_random_actions(env, observations)
        for agent, action in actions.items():
            assert observations[agent]["action_mask"][action] == 1
        observations, _, _, _, infos = env.step(actions)
        steps += 1
        if env.agents:  # what SUMO shows is always one of the junction's own greens or yellows
            for agent in agents:
                assert env._conn.trafficlight.getRedYellowGreenState(agent) in valid[agent]
    assert steps == 3600 // env.timing.delta_time
    metrics = infos[first]["metrics"]
    assert metrics["vehicles"] > 0 and np.isfinite(metrics["delay"])


def test_a_masked_action_never_reaches_sumo(make_env):
    env = make_env("cologne8", shared_spaces=True, episode_seconds=60)
    observations, _ = env.reset(seed=0)
    agent = next(a for a in env.possible_agents if env.action_mask(a).sum() < env.action_space(a).n)
    invalid = int(np.flatnonzero(env.action_mask(agent) == 0)[0])
    before = env._conn.trafficlight.getRedYellowGreenState(agent)
    actions = masked_random_actions(env, observations)
    actions[agent] = invalid
    with pytest.raises(ValueError, match="masked action"):
        env.step(actions)
    assert env._conn.trafficlight.getRedYellowGreenState(agent) == before
    assert env._conn.simulation.getTime() == env.begin
