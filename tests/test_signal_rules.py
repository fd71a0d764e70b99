"""Yellow transitions, min-green and max-green, as SUMO shows them."""

from __future__ import annotations


def _shown(env, agent):
    return env._conn.trafficlight.getRedYellowGreenState(agent)


def _keep(env):
    return {a: env.signals[a].green for a in env.agents}


def test_holding_a_green_is_ended_before_max_green(make_env):
    env = make_env("2x2grid", timing={"delta_time": 5, "yellow_time": 2, "min_green": 5, "max_green": 20})
    env.reset(seed=0)
    greens = []
    for _ in range(16):
        env.step(_keep(env))
        greens.append(env.signals["1"].green)
        assert env.signals["1"].green_time <= 20
    assert len(set(greens)) == env.junctions["1"].n_greens  # max-green cycled through every green
    changes = [i for i in range(1, len(greens)) if greens[i] != greens[i - 1]]
    assert len(changes) >= 3 and all(
        b - a == 4 for a, b in zip(changes, changes[1:], strict=False)
    )  # greens of 3+5+5+5 s


def test_switching_every_step_respects_min_green(make_env):
    env = make_env("2x2grid", timing={"delta_time": 5, "yellow_time": 2, "min_green": 10, "max_green": 60})
    env.reset(seed=0)
    junction = env.junctions["1"]
    switch_times = []
    for _ in range(20):
        old, time = env.signals["1"].green, env.time
        env.step({a: (env.signals[a].green + 1) % env.junctions[a].n_greens for a in env.agents})
        if env.signals["1"].green != old:
            assert env.signals["1"].green == (old + 1) % junction.n_greens
            switch_times.append(time)
        assert _shown(env, "1") == junction.greens[env.signals["1"].green]
    # between two switches a green shows (gap - yellow) seconds, which must reach min_green
    gaps = [b - a for a, b in zip(switch_times, switch_times[1:], strict=False)]
    assert gaps and min(gaps) - 2 >= 10


def test_a_switch_shows_yellow_then_the_new_green_within_one_step(make_env):
    env = make_env("2x2grid", timing={"delta_time": 5, "yellow_time": 3, "min_green": 0, "max_green": 60})
    env.reset(seed=0)
    junction = env.junctions["1"]
    actions = _keep(env) | {"1": 1}
    yellow = junction.yellow(0, 1)
    assert "y" in yellow
    # every movement green now and red next turns yellow; all others keep their state
    for old, new, shown in zip(junction.greens[0], junction.greens[1], yellow, strict=True):
        assert shown == ("y" if old in "Gg" and new in "rs" else old)
    env.step(actions)
    assert _shown(env, "1") == junction.greens[1]
    assert env.signals["1"].green_time == 2  # 5 s step - 3 s yellow
    assert env._conn.simulation.getTime() == env.begin + 5
