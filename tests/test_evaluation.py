"""Baseline controllers, `marlo eval` and `marlo benchmark` on real SUMO."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats

from marlo_rllib.evaluation import EpisodeTask, mean_ci, run_episodes
from tests.conftest import run_cli


def test_max_pressure_cuts_fixed_time_delay_by_30_percent_on_grid4x4():
    seeds = [0, 1, 2]
    options = {"episode_seconds": 1200}
    tasks = [EpisodeTask("grid4x4", c, s, options) for c in ("fixed", "max_pressure") for s in seeds]
    results = run_episodes(tasks, workers=2, progress=False)
    delay = {c: np.mean([r.metrics["delay"] for r in results if r.controller == c]) for c in ("fixed", "max_pressure")}
    assert [r.seed for r in results] == seeds + seeds
    assert delay["max_pressure"] <= 0.7 * delay["fixed"], delay


@pytest.mark.slow
def test_a_deadlock_inside_a_junction_cluster_dissolves_but_not_when_told_never():
    # greedy on cologne3, seed 4: conflicting streams stop on the cluster's internal lanes for good
    off = {"time_to_teleport": -1}  # cologne3's teleports would end this deadlock too, after 300 s
    tasks = [EpisodeTask("cologne3", "greedy", 4, {**off, **more}) for more in ({}, {"ignore_junction_blocker": -1})]
    dissolved, never = (r.metrics for r in run_episodes(tasks, workers=2, progress=False))
    assert never["throughput"] < 0.8 * never["vehicles"], never
    assert dissolved["throughput"] > 0.98 * dissolved["vehicles"], dissolved
    assert dissolved["delay"] < 0.2 * never["delay"]


@pytest.mark.slow
def test_cologne3_teleports_vehicles_locked_by_turnarounds_and_no_others():
    # greedy at demand 1.2: on seed 1 turning-around vehicles hold each other on a short edge pair
    # for good; on seed 0 nothing locks, and the 300 s teleport of cologne3's scenario never fires
    tasks = [
        EpisodeTask("cologne3", "greedy", seed, {"demand_scale": 1.2, **options})
        for seed in (1, 0)
        for options in ({}, {"time_to_teleport": -1})
    ]
    locked, kept, free, free_off = (r.metrics for r in run_episodes(tasks, workers=2, progress=False))
    assert kept["throughput"] < 0.95 * kept["vehicles"] and kept["teleports"] == 0, kept
    assert locked["teleports"] >= 1 and locked["delay"] < 0.5 * kept["delay"], (locked, kept)
    assert free["teleports"] == 0 and free["delay"] == free_off["delay"], (free, free_off)


@pytest.mark.parametrize("controller", ["actuated", "greedy", "random"])
def test_every_baseline_finishes_an_episode(controller):
    (result,) = run_episodes([EpisodeTask("2x2grid", controller, 0, {"episode_seconds": 300})], workers=1)
    assert result.metrics["vehicles"] > 0 and np.isfinite(result.metrics["delay"])
    assert result.queue_trace.shape == (60, 4)
    assert (result.switched <= result.switch_allowed).all()


def test_switch_counts_match_a_random_controllers_odds():
    # RandomGreens draws one of 2x2grid's 4 greens: where a switch is allowed, 3 in 4 draws switch
    (result,) = run_episodes([EpisodeTask("2x2grid", "random", 0, {"episode_seconds": 600})], workers=1)
    allowed, switched = result.switch_allowed.sum(), result.switched.sum()
    assert allowed > 100
    assert stats.binomtest(int(switched), int(allowed), 0.75).pvalue > 0.001, (switched, allowed)


def test_same_seed_gives_identical_metrics(tmp_path):
    for name in ("a", "b"):
        result = run_cli(
            "eval",
            "--scenario",
            "2x2grid",
            "--controller",
            "greedy",
            "--seed",
            "3",
            "--episodes",
            "2",
            "--seconds",
            "300",
            "--out",
            str(tmp_path / name),
        )
        assert result.returncode == 0, result.stderr
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("a", "b"))
    assert a["episodes"] == b["episodes"]
    assert [e["seed"] for e in a["episodes"]] == [3, 4]
    rows = list(csv.DictReader(open(tmp_path / "a" / "metrics.csv")))
    assert len(rows) == 2 and float(rows[0]["delay"]) == a["episodes"][0]["metrics"]["delay"]
    assert set(a["aggregate"]["greedy"]["delay"]) == {"mean", "ci95", "n"}


def test_demand_scale_adds_vehicles(tmp_path):
    vehicles = {}
    for scale in ("1.0", "1.2"):
        out = tmp_path / scale
        result = run_cli(
            "eval",
            "--scenario",
            "grid4x4",
            "--controller",
            "fixed",
            "--seeds",
            "5",
            "--demand-scale",
            scale,
            "--seconds",
            "600",
            "--out",
            str(out),
        )
        assert result.returncode == 0, result.stderr
        vehicles[scale] = json.loads((out / "metrics.json").read_text())["episodes"][0]["metrics"]["vehicles"]
    assert vehicles["1.2"] > vehicles["1.0"]


def test_benchmark_writes_table_and_plots(tmp_path):
    controllers = ["fixed", "actuated", "max_pressure", "greedy"]
    result = run_cli(
        "benchmark",
        "--scenario",
        "2x2grid",
        "--controllers",
        ",".join(controllers),
        "--episodes",
        "2",
        "--seconds",
        "200",
        "--timing",
        "resco",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "comparison.md").read_text().strip().splitlines()
    assert [line.split("|")[1].strip() for line in table[2:]] == controllers
    assert table[0].endswith("| delay vs max_pressure |") and table[2 + controllers.index("max_pressure")].endswith(
        "| +0.0% |"
    )
    assert [row["controller"] for row in csv.DictReader(open(tmp_path / "comparison.csv"))] == controllers
    for png in ["bars.png", *(f"heatmap_{c}.png" for c in controllers)]:
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png
    document = json.loads((tmp_path / "metrics.json").read_text())
    assert document["timing"]["delta_time"] == 10 and document["timing"]["yellow_time"] == 3
    episodes = document["episodes"]
    assert {(e["controller"], e["seed"]) for e in episodes} == {(c, s) for c in controllers for s in (0, 1)}


def test_mean_ci_is_the_t_interval():
    values = [10.0, 12.0, 17.0]
    mean, half = mean_ci(values)
    assert mean == pytest.approx(13.0)
    assert half == pytest.approx(stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / np.sqrt(3))
    assert mean_ci([4.0]) == (4.0, 0.0)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--controller", "nope"], "valid: fixed, actuated, max_pressure, greedy, random"),
        (["--controller", "fixed", "--episodes", "0"], "--episodes must be at least 1"),
        (["--controller", "fixed", "--seeds", "1,x"], "--seeds takes integers"),
        (["--controller", "fixed", "--seeds", "-5"], "SUMO seeds are 0 to 2147483647, got -5"),
        (["--controller", "fixed", "--seeds", "99999999999"], "SUMO seeds are 0 to 2147483647"),
        (["--controller", "fixed", "--demand-scale", "nan"], "--demand-scale must be a positive number"),
        (["--controller", "fixed", "--seconds", "0"], "--seconds must be at least 1"),
        (["--controller", "fixed", "--workers", "-2"], "--workers must be at least 1"),
        (["--controller", "fixed", "--traffic", "rush"], "--traffic 'rush': 2x2grid has one traffic demand"),
    ],
)
def test_bad_eval_input(tmp_path, args, fragment):
    result = run_cli("eval", "--scenario", "2x2grid", "--out", str(tmp_path), *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and fragment in result.stderr


def test_unwritable_out_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli("eval", "--scenario", "2x2grid", "--controller", "fixed", "--out", str(blocker / "sub"))
    assert result.returncode == 2 and str(blocker / "sub") in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
