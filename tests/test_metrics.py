"""Episode metrics: RESCO delay checked against an independent reading of the same tripinfo file."""

from __future__ import annotations

import math
from xml.dom import minidom

import pytest

from marlo_rllib.env.metrics import read_tripinfo
from marlo_rllib.errors import UserError


def _scheduled_departures(route_file) -> dict[str, float]:
    document = minidom.parse(str(route_file))
    return {v.getAttribute("id"): float(v.getAttribute("depart")) for v in document.getElementsByTagName("vehicle")}


def _resco_delay_by_hand(tripinfo_file, route_file, episode_end: float) -> tuple[float, int]:
    """RESCO's delay, computed without marlo's reader: undeparted vehicles from the route file's schedule."""
    scheduled = _scheduled_departures(route_file)
    total, count, undeparted = 0.0, 0, 0
    for trip in minidom.parse(str(tripinfo_file)).getElementsByTagName("tripinfo"):
        if trip.getAttribute("depart") == "-1":
            # a vehicle copied by --scale is named "<id>.<copy>" and keeps the original's departure
            total += episode_end - scheduled[trip.getAttribute("id").split(".")[0]]
            undeparted += 1
        else:
            total += float(trip.getAttribute("timeLoss")) + float(trip.getAttribute("departDelay"))
        count += 1
    return total / count, undeparted


@pytest.mark.slow
def test_fixed_time_grid4x4_delay_matches_independent_computation(make_env):
    env = make_env("grid4x4", program="fixed", time_to_teleport=-1)
    env.reset(seed=0)
    infos = {}
    while env.agents:
        _, _, _, _, infos = env.step({})
    metrics = infos["A0"]["metrics"]
    expected, _ = _resco_delay_by_hand(env.tripinfo_file, env.spec.routes[0], env.end)
    assert metrics["delay"] == pytest.approx(expected, rel=1e-9)
    assert metrics["teleports"] == 0
    assert 0 < metrics["throughput"] <= metrics["vehicles"]
    assert all(math.isfinite(v) for v in metrics.values())


def test_vehicles_never_inserted_count_from_their_scheduled_departure(make_env):
    # eight times grid4x4's demand for ten minutes: the entry lanes overflow and vehicles wait to be inserted
    env = make_env("grid4x4", program="fixed", demand_scale=8.0, episode_seconds=600)
    env.reset(seed=0)
    while env.agents:
        env.step({})
    expected, undeparted = _resco_delay_by_hand(env.tripinfo_file, env.spec.routes[0], env.end)
    assert undeparted > 0
    assert read_tripinfo(env.tripinfo_file).delay == pytest.approx(expected, rel=1e-9)


def test_a_demand_range_draws_each_episode_its_scale_by_its_seed(make_env):
    env = make_env("grid4x4", program="fixed", demand_scale=[0.5, 2.0], episode_seconds=300)
    drawn = {}
    for seed in (0, 1, 2, 0):
        env.reset(seed=seed)
        while env.agents:
            _, _, _, _, infos = env.step({})
        scale, vehicles = infos["A0"]["demand_scale"], infos["A0"]["metrics"]["vehicles"]
        assert 0.5 <= scale <= 2.0 and drawn.setdefault(seed, (scale, vehicles)) == (scale, vehicles)
    (low, few), (high, many) = min(drawn.values()), max(drawn.values())
    assert high > low and many > few
    with pytest.raises(UserError, match="demand_scale must be positive"):
        make_env("grid4x4", demand_scale=[2.0, 0.5])


def test_demand_scale_puts_more_vehicles_in(make_env):
    env = make_env("grid4x4", program="fixed", episode_seconds=600)
    counts = []
    for scale in (1.0, 1.5):
        env.demand_scale = scale
        env.reset(seed=0)
        while env.agents:
            _, _, _, _, infos = env.step({})
        counts.append(infos["A0"]["metrics"]["vehicles"])
    assert counts[1] > counts[0]
