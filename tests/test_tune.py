"""`marlo tune` on real SUMO and a real local Ray: 2 samples × 1 iteration on 2x2grid, the summary,
and the best config repeated through `marlo train --config`."""

from __future__ import annotations

import csv
import json

import yaml

from marlo_rllib.controllers.policy import load_controller
from tests.conftest import marlo

TINY = [
    "--set",
    "env.episode_seconds=300",
    "--set",
    "training.train_batch_size_per_learner=120",
    "--set",
    "training.minibatch_size=60",
    "--set",
    "training.num_epochs=1",
    "--set",
    "model.fcnet_hiddens=[32,32]",
]


def test_search_summarises_trials_and_the_best_config_repeats(tmp_path, ray_tmp):
    search = tmp_path / "search.yaml"
    search.write_text("training.lr: {choice: [1.0e-4, 5.0e-4]}\ntraining.entropy_coeff: {uniform: [0.0, 0.02]}\n")
    done = marlo(
        "tune",
        "--scenario",
        "2x2grid",
        "--search",
        str(search),
        "--num-samples",
        "2",
        "--scheduler",
        "none",
        "--timesteps",
        "120",
        "--out",
        str(tmp_path),
        "--run-name",
        "search",
        *TINY,
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder = tmp_path / "search"
    rows = list(csv.DictReader((folder / "summary.csv").open()))
    assert len(rows) == 2 and {r["status"] for r in rows} == {"finished"}
    assert [float(r["score"]) for r in rows] == sorted((float(r["score"]) for r in rows), reverse=True)
    assert {float(r["training.lr"]) for r in rows} <= {1e-4, 5e-4}
    assert all(0 <= float(r["training.entropy_coeff"]) <= 0.02 for r in rows)
    best = json.loads((folder / "summary.json").read_text())["best"]
    assert best["trial"] == rows[0]["trial"] and "best:" in done.stdout
    for row in rows:  # every trial is a marlo run directory
        trial_config = yaml.safe_load((tmp_path / "search" / "trials" / row["trial"] / "config.yaml").read_text())
        assert trial_config["training"]["lr"] == float(row["training.lr"])
        load_controller(row["run_dir"])
    best_config = yaml.safe_load((folder / "best_config.yaml").read_text())
    again = marlo(
        "train",
        "--config",
        str(folder / "best_config.yaml"),
        "--out",
        str(tmp_path),
        "--run-name",
        "again",
        ray_tmp=ray_tmp,
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    repeated = yaml.safe_load((tmp_path / "again" / "config.yaml").read_text())
    assert repeated["training"] == best_config["training"] and repeated["stop"] == best_config["stop"]


def test_bad_search_input_exits_2_naming_the_key(tmp_path, ray_tmp):
    cases = {
        "training.lr: {logunif: [1.0e-4, 1.0e-3]}": "training.lr: give exactly one of",
        "model.fcnet_hiddens: {choice: [[32], [64]]}": "only training.<RLlib parameter> keys",
        "training.bogus: {choice: [1]}": "search key 'training.bogus'",
        "training.lr: {choice: [fast]}": "search key 'training.lr': --set: training.lr must be a number",
        "training.num_epochs: {uniform: [2, 6]}": "search key 'training.num_epochs': --set: training.num_epochs must be an integer",
        "training.gamma: {uniform: [0.9, 1.5]}": "search key 'training.gamma': training.gamma must be in (0, 1]",
    }
    for text, message in cases.items():
        search = tmp_path / "search.yaml"
        search.write_text(text + "\n")
        done = marlo("tune", "--scenario", "2x2grid", "--search", str(search), "--out", str(tmp_path), ray_tmp=ray_tmp)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], (text, done.stderr[-2000:])
