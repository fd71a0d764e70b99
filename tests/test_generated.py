"""Generated scenarios: grid6 built by SUMO's tools, cached, checked, and trained on."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from marlo_rllib.scenarios import load_scenario, summarize_net
from marlo_rllib.scenarios.generate import NetworkSpec, build_network
from tests.conftest import REPO, masked_random_actions, run_cli

GRID6 = REPO / "scenarios" / "grid6.yaml"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache of our own, shared by this module's tests (the first build fills it)."""
    path = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("MARLO_CACHE")
    os.environ["MARLO_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("MARLO_CACHE")
    else:
        os.environ["MARLO_CACHE"] = previous


def cli(*args: str, cache: Path):
    os.environ["MARLO_CACHE"] = str(cache)
    return run_cli(*args)


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.xml"))}


def test_grid6_builds_reproducibly_with_the_junctions_the_spec_asks_for(cache):
    first = cli("scenarios", "build", "grid6", cache=cache)
    assert first.returncode == 0, first.stderr
    assert "built" in first.stdout
    folder = Path(first.stdout.split(": ", 2)[-1].splitlines()[0])
    spec = load_scenario("grid6")
    network = yaml.safe_load(GRID6.read_text())["network"]
    expected = network["grid_dimension"] ** 2 - network["junctions_to_remove"]
    assert summarize_net(folder / "net.net.xml").traffic_lights == expected
    assert {f"{t.name}.rou.xml" for t in spec.traffic} | {"net.net.xml"} == set(hashes(folder))
    before = hashes(folder)

    again = cli("scenarios", "build", "grid6", cache=cache)
    assert again.returncode == 0 and "cache hit" in again.stdout
    rebuilt = cli("scenarios", "build", "grid6", "--force", cache=cache)
    assert rebuilt.returncode == 0 and "built" in rebuilt.stdout
    assert hashes(folder) == before  # byte-identical from scratch


def test_network_seed_decides_which_junctions_go(tmp_path):
    spec = NetworkSpec(network_seed=1, grid_dimension=5, junctions_to_remove=2, block_size_m=200)
    a = build_network(spec, tmp_path / "a.net.xml")
    b = build_network(spec, tmp_path / "b.net.xml")
    c = build_network(spec.model_copy(update={"network_seed": 2}), tmp_path / "c.net.xml")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert summarize_net(c).traffic_lights == 23


def test_realistic_lanes_give_arterials_more_lanes(cache):
    import xml.etree.ElementTree as ET

    net = load_scenario("grid6").materialize().net
    lanes = {e.get("id"): len(e.findall("lane")) for e in ET.parse(net).getroot().iter("edge") if not e.get("function")}
    assert {1, 2} <= set(lanes.values())
    assert any(edge.startswith(("left", "bottom")) for edge in lanes)  # fringe edges at the border


def test_shared_policy_runs_a_full_grid6_episode_with_masked_random_actions(cache, make_env):
    env = make_env("grid6", shared_spaces=True)
    assert len(env.possible_agents) == 34
    greens = {j.n_greens for j in env.junctions.values()}
    assert len(greens) > 1  # three- and four-arm junctions: heterogeneous, so padded and masked
    observations, _ = env.reset(seed=3)
    steps = 0
    while env.agents:
        observations, _, _, _, infos = env.step(masked_random_actions(env, observations))
        steps += 1
    assert steps == 3600 // 5
    info = next(iter(infos.values()))
    assert info["traffic_scenario"] == "heavy_realtime_s1" and info["metrics"]["vehicles"] > 500


def test_env_runners_get_different_traffic_round_robin(cache):
    from ray.rllib.env.env_context import EnvContext

    from marlo_rllib.env.rllib import RLlibTrafficSignalEnv

    chosen = []
    for worker in (1, 2, 3, 4):
        env = RLlibTrafficSignalEnv(EnvContext({"scenario": "grid6"}, worker_index=worker))
        chosen.append(env.par_env.spec.traffic_name)
        env.close()
    assert chosen == ["heavy_realtime_s1", "rush_hour_s2", "off_peak_s3", "heavy_realtime_s1"]


def test_each_episode_takes_the_next_training_demand_unless_one_is_named(cache, make_env):
    begins = {t.name: t.begin for t in load_scenario("grid6").traffic}
    rotating = make_env("grid6", traffic_scenario=1, episode_seconds=10)
    named = make_env("grid6", traffic_scenario="rush_hour_s2", episode_seconds=10)
    for env, expected in (
        (rotating, ["rush_hour_s2", "off_peak_s3", "heavy_realtime_s1", "rush_hour_s2"]),
        (named, ["rush_hour_s2"] * 2),
    ):
        ran = []
        for _ in expected:
            env.reset()
            assert env.time == begins[env.spec.traffic_name]  # the demand's own start hour
            while env.agents:
                *_, infos = env.step({a: 0 for a in env.agents})
            ran.append(next(iter(infos.values()))["traffic_scenario"])
        assert ran == expected
        env.close()


@pytest.mark.parametrize(
    "name",
    [
        "2x2grid",
        "single-intersection",
        "grid4x4",
        "arterial4x4",
        "cologne1",
        "cologne3",
        "cologne8",
        "ingolstadt1",
        "ingolstadt7",
        "ingolstadt21",
        "grid6",
    ],
)
def test_check_passes_on_every_shipped_scenario(name, cache):
    done = cli("scenarios", "check", name, "--seconds", "600", cache=cache)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in done.stdout


def test_check_fails_on_a_program_without_yellow(tmp_path, cache):
    spec = load_scenario("2x2grid")
    net_text = spec.net.read_text()
    import re

    broken = re.sub(r'state="([GgrRyYsuoO]+)"', lambda m: f'state="{m.group(1).replace("y", "r")}"', net_text)
    (tmp_path / "broken.net.xml").write_text(broken)
    shutil.copy(spec.routes[0], tmp_path / "routes.rou.xml")
    (tmp_path / "no_yellow.yaml").write_text("net: broken.net.xml\nroutes: [routes.rou.xml]\n")
    done = cli("scenarios", "check", str(tmp_path / "no_yellow.yaml"), "--seconds", "300", cache=cache)
    assert done.returncode != 0
    assert "has no yellow phase" in done.stdout


@pytest.mark.parametrize(
    "change, message",
    [
        ({"network": {"junctions_to_remove": 17}}, "junctions_to_remove"),
        ({"scenarios": [{"num_vehicles": -5}]}, "scenarios.0.num_vehicles"),
        ({"scenarios": [{"departure_pattern": "lunchtime"}]}, "valid: uniform, rush_hour, off_peak"),
    ],
)
def test_bad_generated_specs_exit_2_naming_the_field(change, message, tmp_path, cache):
    data = yaml.safe_load(GRID6.read_text())
    for key, value in change.items():
        if isinstance(value, list):
            data[key][0].update(value[0])
        else:
            data[key].update(value)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    done = cli("scenarios", "build", str(path), cache=cache)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_training_on_grid6_runs_different_traffic_on_each_env_runner(cache, tmp_path):
    import tempfile

    from tests.test_training import TINY, marlo

    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    try:
        done = marlo(
            "train",
            "--scenario",
            "grid6",
            "--timesteps",
            "120",
            "--out",
            str(tmp_path),
            "--run-name",
            "g6",
            *TINY,
            ray_tmp=ray_tmp,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result_file = next((tmp_path / "g6").glob("tune_0/*/result.json"))
    result = json.loads(result_file.read_text().splitlines()[-1])
    episodes = result["env_runners"]["episodes_by_traffic_scenario"]
    # the runners start on different demands and move on each episode; never on the held-out one
    assert len(episodes) >= 2 and set(episodes) <= set(load_scenario("grid6").training_traffic)
    # evaluation compares iterations on one demand, the one benchmarks run by default
    assert result["evaluation"]["env_runners"]["episodes_by_traffic_scenario"] == {"heavy_realtime_s1": 1}
