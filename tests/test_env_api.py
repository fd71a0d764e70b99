"""TrafficSignalEnv against PettingZoo's own API and seed tests, and its basic contracts."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from marlo_rllib.env import METRIC_NAMES, TrafficSignalEnv
from tests.conftest import REPO, masked_random_actions


def test_parallel_api_grid4x4(make_env):
    env = make_env("grid4x4")
    assert len(env.possible_agents) == 16
    parallel_api_test(env, num_cycles=1000)


def test_parallel_api_grid4x4_shared_spaces(make_env):
    parallel_api_test(make_env("grid4x4", shared_spaces=True, episode_seconds=600), num_cycles=200)


def test_seed_test_grid4x4():
    # PettingZoo's seed test runs two envs side by side: libsumo holds one simulation per process, TraCI many.
    made = []

    def env_fn():
        made.append(TrafficSignalEnv("grid4x4", backend="traci", episode_seconds=600))
        return made[-1]

    try:
        parallel_seed_test(env_fn, num_cycles=120)
    finally:
        for env in made:
            env.close()


def _episode(env, seed, actions_seed=0):
    rng = np.random.default_rng(actions_seed)
    observations, _ = env.reset(seed=seed)
    trace, infos = [], {}
    while env.agents:
        actions = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        observations, rewards, _, _, infos = env.step(actions)
        trace.append((sorted(rewards.items()), np.concatenate([observations[a] for a in env.possible_agents])))
    return trace, infos[env.possible_agents[0]]["metrics"]


def test_same_seed_same_episode_on_libsumo(make_env):
    env = make_env("2x2grid", episode_seconds=600)
    first_trace, first = _episode(env, seed=7)
    second_trace, second = _episode(env, seed=7)
    _, other = _episode(env, seed=8)
    assert first == second
    for (r1, o1), (r2, o2) in zip(first_trace, second_trace, strict=True):
        assert r1 == r2 and np.array_equal(o1, o2)
    assert other != first  # 2x2grid's flows are random: another SUMO seed is another demand


def test_reset_without_seed_moves_to_the_next_seed(make_env):
    env = make_env("2x2grid", seed=3, episode_seconds=100)
    env.reset()
    assert env.seed_used == 3
    env.reset()
    assert env.seed_used == 4
    env.reset(seed=10)
    env.reset()
    assert env.seed_used == 11


def test_final_infos_carry_episode_metrics(make_env):
    env = make_env("2x2grid", episode_seconds=600)
    _, metrics = _episode(env, seed=0)
    assert set(metrics) == set(METRIC_NAMES)
    assert all(np.isfinite(v) for v in metrics.values())
    assert metrics["vehicles"] >= metrics["throughput"] > 0


def test_global_state_every_step(make_env):
    env = make_env("2x2grid", episode_seconds=60, shared_spaces=True)
    observations, _ = env.reset(seed=0)
    while True:
        state = env.state()
        assert env.state_space.contains(state)
        assert state.shape == (4 * env.observation_space("1")["observations"].shape[0] + 2,)
        if not env.agents:
            break
        observations, *_ = env.step(masked_random_actions(env, observations))
    assert state[-2] > 0  # vehicles in the network at the end


def test_agent_id_ends_each_observation_with_the_junctions_one_hot(make_env):
    plain = make_env("2x2grid", episode_seconds=30, shared_spaces=True)
    reference, _ = plain.reset(seed=4)
    reference_state = plain.state()
    plain.close()
    env = make_env("2x2grid", episode_seconds=30, shared_spaces=True, agent_id=True)
    observations, _ = env.reset(seed=4)
    agents = env.possible_agents
    for i, agent in enumerate(agents):
        vector = observations[agent]["observations"]
        assert env.observation_space(agent).contains(observations[agent])
        assert np.array_equal(vector[-len(agents) :], np.eye(len(agents))[i])
        assert np.array_equal(vector[: -len(agents)], reference[agent]["observations"])
    assert env.state().shape == env.state_space.shape
    assert np.array_equal(env.state(), reference_state)  # the one-hots stay out of the global state


@pytest.mark.parametrize("observation", ["default", "neighbors", "pressure"])
def test_observations_stay_in_their_space(make_env, observation):
    env = make_env("grid4x4", observation=observation, episode_seconds=200)
    observations, _ = env.reset(seed=0)
    while env.agents:
        for agent, obs in observations.items():
            assert env.observation_space(agent).contains(obs), (agent, obs)
        observations, *_ = env.step({a: env.action_space(a).sample() for a in env.agents})


def test_neighbours_come_from_the_network_graph(make_env):
    env = make_env("grid4x4")
    # RESCO's grid4x4 names junctions by column letter and row digit: A0's neighbours are A1 and B0.
    assert env.junctions["A0"].neighbours == ["A1", "B0"]
    assert env.junctions["B1"].neighbours == ["A1", "B0", "B2", "C1"]


def test_second_libsumo_simulation_is_refused(make_env):
    env = make_env("2x2grid", episode_seconds=100)
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match="one simulation per process"):
        TrafficSignalEnv("2x2grid")


def test_sumo_programs_are_found_when_libsumo_was_imported_first():
    # libsumo's import points SUMO_HOME at its data-only folder, which has no bin/
    script = (
        "import libsumo, subprocess\n"
        "from marlo_rllib.sumo import binary\n"
        "print(subprocess.run([binary('sumo'), '--version'], capture_output=True, text=True, check=True).stdout)"
    )
    env = {k: v for k, v in os.environ.items() if k != "SUMO_HOME"}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Eclipse SUMO sumo" in done.stdout


def test_accumulated_waiting_keeps_a_queue_s_wait_until_its_vehicles_cross(make_env):
    """Lane waiting time restarts when a vehicle creeps forward; the accumulated wait does not."""
    env = make_env("2x2grid", episode_seconds=600, reward="diff-accumulated-waiting")
    env.reset(seed=0)
    delta, kept_longer = env.timing.delta_time, 0
    while env.agents:
        _, rewards, *_ = env.step({a: 0 for a in env.agents})
        for traffic in env.traffic.values():
            lane_waiting = float(traffic.in_waiting.sum())
            # a vehicle's first sight may come up to one step into its stop
            assert traffic.accumulated_waiting >= lane_waiting - delta * len(traffic.vehicles) - 1e-3
            kept_longer += traffic.accumulated_waiting > lane_waiting + delta
        assert all(np.isfinite(r) for r in rewards.values())
    assert kept_longer > 0
