"""Reward functions on hand-made traffic, and their parameter checks."""

from __future__ import annotations

import numpy as np
import pytest

from marlo_rllib.env.rewards import REWARDS, make_reward
from marlo_rllib.env.traffic import JunctionTraffic
from marlo_rllib.errors import UserError


def traffic(count, halting, waiting, out, vehicles=(), accumulated=0.0, pending=0.0, loss=0.0):
    a = lambda v: np.array(v, dtype=np.float32)  # noqa: E731
    return JunctionTraffic(a(count), a(halting), a(waiting), a(out), frozenset(vehicles), accumulated, pending, loss)


BEFORE = traffic(
    [4, 2], [3, 1], [120, 30], [1, 1], {"a", "b", "c", "d", "e", "f"}, accumulated=400.0, pending=30.0, loss=9.0
)
NOW = traffic(
    [5, 1], [4, 0], [100, 10], [2, 3], {"c", "d", "e", "g", "h", "i"}, accumulated=250.0, pending=80.0, loss=25.0
)


@pytest.mark.parametrize(
    "name, params, expected",
    [
        ("diff-waiting-time", {}, (150 - 110) / 100),
        ("diff-waiting-time", {"scale": 10}, (150 - 110) / 10),
        ("diff-accumulated-waiting", {}, (400 + 30 - 250 - 80) / 100),
        ("diff-accumulated-waiting", {"pending": 0}, (400 - 250) / 100),  # sumo-rl's: blind to the entry queue
        ("time-loss", {}, (-25 + 30 - 80) / 100),
        ("time-loss", {"pending": 0, "scale": 10}, -25 / 10),
        ("queue", {}, -4.0),
        ("pressure", {}, -(6 - 5)),
        ("stopped-ratio", {}, -4 / 6),
        ("stopped-ratio", {"alpha": 3}, -3 * 4 / 6),
        ("throughput", {}, 3.0),  # a, b and f left the incoming lanes
    ],
)
def test_reward_values(name, params, expected):
    assert make_reward(name, params)(NOW, BEFORE) == pytest.approx(expected)


def test_weighted_sum():
    reward = make_reward("weighted", {"terms": {"queue": 0.5, "stopped-ratio": {"weight": 2, "params": {"alpha": 3}}}})
    assert reward(NOW, BEFORE) == pytest.approx(0.5 * -4 + 2 * (-3 * 4 / 6))
    assert not reward.needs_vehicle_ids
    assert make_reward("weighted", {"terms": {"throughput": 1}}).needs_vehicle_ids
    assert make_reward("weighted", {"terms": {"diff-accumulated-waiting": 1}}).needs_accumulated_waiting


def test_stopped_ratio_of_an_empty_junction_is_zero():
    empty = JunctionTraffic.empty(2, 2)
    assert make_reward("stopped-ratio")(empty, empty) == 0.0


@pytest.mark.parametrize(
    "name, params, fragment",
    [
        ("speed", {}, "unknown reward 'speed'"),
        ("queue", {"alpha": 1}, "no parameter 'alpha'"),
        ("queue", {"scale": "big"}, "must be a number"),
        ("weighted", {}, "terms"),
        ("weighted", {"terms": {"weighted": 1}}, "cannot contain itself"),
    ],
)
def test_bad_reward_settings(name, params, fragment):
    with pytest.raises(UserError, match=fragment):
        make_reward(name, params)


def test_vehicles_sumo_cannot_insert_count_at_the_first_junction_of_their_route(make_env):
    env = make_env("grid4x4", demand_scale=8.0, episode_seconds=600)  # the entries overflow
    env.reset(seed=0)
    waited = []
    while env.agents:
        env.step({a: 0 for a in env.agents})
        pending = env._conn.simulation.getPendingVehicles()
        by_junction = {a: t.pending_waiting for a, t in env.traffic.items()}
        waited.append(sum(by_junction.values()))
        if len(pending) > 50:
            break
    assert len(pending) > 50 and waited[-1] > waited[-2] > 0  # the backlog's wait grows while it lasts
    # grid4x4's routes start on an edge into a traffic light: its backlog is that junction's alone
    entry = {e: a for a, j in env.junctions.items() for e in j.in_edges}
    blocked = {entry[env._conn.vehicle.getRoute(v)[0]] for v in pending}
    assert {a for a, w in by_junction.items() if w > 0} <= blocked


def test_every_registered_reward_runs_in_the_env(make_env):
    for name in REWARDS:
        params = {"terms": {"queue": 1.0, "throughput": 0.5}} if name == "weighted" else {}
        env = make_env("2x2grid", reward=name, reward_params=params, episode_seconds=100)
        env.reset(seed=0)
        while env.agents:
            _, rewards, *_ = env.step({a: env.action_space(a).sample() for a in env.agents})
            assert all(np.isfinite(r) for r in rewards.values())
        env.close()


def test_time_loss_reward_sums_the_loss_of_vehicles_approaching_each_light(make_env):
    env = make_env("grid4x4", reward="time-loss", reward_params={"pending": 0, "scale": 1}, episode_seconds=400)
    env.reset(seed=3)
    lost_at_lights, last_loss = 0.0, {}
    for _ in range(60):  # of 80 steps: SUMO still runs after the last
        _, rewards, *_ = env.step({a: 0 for a in env.agents})
        assert all(r <= 0 for r in rewards.values())
        lost_at_lights -= sum(rewards.values())
        last_loss.update({v: env._conn.vehicle.getTimeLoss(v) for v in env._conn.vehicle.getIDList()})
    network_loss = sum(last_loss.values())  # every vehicle's loss so far, whether still running or arrived
    # holding every light on its first green: most of the loss is queueing at the lights, none is counted twice
    assert 0.5 * network_loss < lost_at_lights <= network_loss
