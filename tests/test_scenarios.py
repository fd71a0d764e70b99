"""The scenario catalog, `marlo scenarios`, and one-line errors for bad scenario input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from marlo_rllib.env import check_names
from marlo_rllib.errors import UserError
from marlo_rllib.scenarios import catalog, load_scenario, load_scenario_file, summarize_net
from tests.conftest import REPO, run_cli

RESCO = ["grid4x4", "arterial4x4", "cologne1", "cologne3", "cologne8", "ingolstadt1", "ingolstadt7", "ingolstadt21"]
RESCO_BEGIN = {
    "cologne1": 25200,
    "cologne3": 25200,
    "cologne8": 25200,
    "ingolstadt1": 57600,
    "ingolstadt7": 57600,
    "ingolstadt21": 57600,
    "grid4x4": 0,
    "arterial4x4": 0,
}


def test_catalog_has_resco_and_small_scenarios():
    names = set(catalog())
    assert set(RESCO) | {"2x2grid", "single-intersection"} <= names
    for name in RESCO:
        spec = load_scenario(name)
        assert spec.episode_seconds == 3600
        assert spec.begin == RESCO_BEGIN[name]
        assert spec.net.is_file() and all(r.is_file() for r in spec.routes)


def test_agent_counts_match_resco():
    expected = {
        "grid4x4": 16,
        "arterial4x4": 16,
        "cologne1": 1,
        "cologne3": 3,
        "cologne8": 8,
        "ingolstadt1": 1,
        "ingolstadt7": 7,
        "ingolstadt21": 21,
    }
    for name, agents in expected.items():
        assert summarize_net(load_scenario(name).net).traffic_lights == agents


def test_list_prints_one_row_per_scenario():
    result = run_cli("scenarios", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["name", "junctions", "agents", "episode_s"]
    rows = {line.split()[0]: line.split()[1:4] for line in lines[1:]}
    assert set(rows) == set(catalog())
    assert rows["grid4x4"] == ["16", "16", "3600"]


def test_show_prints_resolved_spec():
    result = run_cli("scenarios", "show", "cologne8")
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["agents"] == 8 and shown["begin"] == 25200
    assert Path(shown["net"]).is_file()
    assert shown["timing"]["delta_time"] == 5


def test_atc_cli_is_marlo():
    import subprocess
    import sys

    via_script = subprocess.run(
        [sys.executable, "atc_cli.py", "scenarios", "list"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert via_script.returncode == 0
    assert via_script.stdout == run_cli("scenarios", "list").stdout


def _one_line_error(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_show_unknown_lists_valid_names():
    line = _one_line_error(run_cli("scenarios", "show", "nope"))
    assert "nope" in line and "grid4x4" in line and "cologne8" in line


def _write_variant(tmp_path: Path, change) -> Path:
    data = yaml.safe_load((REPO / "scenarios" / "2x2grid.yaml").read_text())
    change(data)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_typo_key_names_file_and_key(tmp_path):
    path = _write_variant(tmp_path, lambda d: d["timing"].update(delta_tme=5))
    line = _one_line_error(run_cli("scenarios", "show", str(path)))
    assert str(path) in line and "timing.delta_tme" in line


def test_top_level_typo_key(tmp_path):
    path = _write_variant(tmp_path, lambda d: d.update(episode_secnds=100))
    line = _one_line_error(run_cli("scenarios", "show", str(path)))
    assert str(path) in line and "episode_secnds" in line


def test_wrong_type_names_file_and_key(tmp_path):
    path = _write_variant(tmp_path, lambda d: d["timing"].update(min_green="long"))
    line = _one_line_error(run_cli("scenarios", "show", str(path)))
    assert str(path) in line and "timing.min_green" in line


def test_missing_net_file_names_path(tmp_path):
    path = _write_variant(tmp_path, lambda d: d.update(net="missing/nowhere.net.xml"))
    line = _one_line_error(run_cli("scenarios", "show", str(path)))
    assert str(tmp_path / "missing" / "nowhere.net.xml") in line


def test_malformed_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    line = _one_line_error(run_cli("scenarios", "show", str(path)))
    assert str(path) in line


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda d: d["timing"].update(yellow_time=9), "yellow_time"),
        (lambda d: d.update(reward={"name": "speed"}), "unknown reward 'speed'"),
        (lambda d: d.update(reward={"name": "queue", "params": {"alpha": 1}}), "no parameter 'alpha'"),
        (lambda d: d.update(observation="camera"), "unknown observation 'camera'"),
    ],
)
def test_inconsistent_values_are_refused(tmp_path, change, fragment):
    """Timing by the spec itself; reward and observation names by the env's registries."""
    with pytest.raises(UserError, match=fragment):
        check_names(load_scenario_file(_write_variant(tmp_path, change)))


def test_marlo_scenarios_show_names_an_unknown_reward(tmp_path):
    path = _write_variant(tmp_path, lambda d: d.update(reward={"name": "speed"}))
    line = _one_line_error(run_cli("scenarios", "show", str(path)))
    assert "unknown reward 'speed'" in line and str(path) in line


def test_relative_paths_resolve_against_the_yaml(tmp_path):
    spec = load_scenario("single-intersection")
    shutil.copy(spec.net, tmp_path / "x.net.xml")
    shutil.copy(spec.routes[0], tmp_path / "x.rou.xml")
    (tmp_path / "local.yaml").write_text("net: x.net.xml\nroutes: x.rou.xml\n")
    local = load_scenario_file(tmp_path / "local.yaml")
    assert local.name == "local" and local.net == tmp_path / "x.net.xml"


@pytest.mark.parametrize(
    "net, routes, message",
    [
        ("<net><edge", "<routes/>", "bad.net.xml is not valid XML: unclosed token"),
        (
            None,
            '<routes><vehicle id="v0" depart="0" route="nosuch"/></routes>',
            "The route 'nosuch' for vehicle 'v0' is not known",
        ),
        (None, "<routes><vehicle", "bad.rou.xml is not valid XML"),
    ],
)
def test_scenario_files_sumo_cannot_load_are_one_line_errors(tmp_path, net, routes, message):
    net_file = tmp_path / "bad.net.xml"
    if net is None:
        shutil.copy(load_scenario("2x2grid").net, net_file)
    else:
        net_file.write_text(net)
    (tmp_path / "bad.rou.xml").write_text(routes)
    (tmp_path / "bad.yaml").write_text("net: bad.net.xml\nroutes: [bad.rou.xml]\nepisode_seconds: 60\n")
    result = run_cli(
        "eval",
        "--scenario",
        str(tmp_path / "bad.yaml"),
        "--controller",
        "fixed",
        "--episodes",
        "1",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1
