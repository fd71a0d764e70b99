"""`marlo adapt` on real SUMO and Ray: deployment buckets, the MMD trigger, fine-tuning into a normal
run directory, Ctrl+C, and bad input. The Q-learner path (prioritised replay into CQL) is in
test_offline.py, next to its CQL run."""

from __future__ import annotations

import csv
import json
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import DRIFT_FLAGS, adapt, marlo, run_cli
from tests.test_training import TINY, start_marlo

# 2x2grid, 300 s episodes: a bucket is one 60-decision episode of 4 junctions
BUCKET_ROWS = 240


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory, ray_tmp) -> Path:
    out = tmp_path_factory.mktemp("adapt")
    done = marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--timesteps",
        "240",
        "--out",
        str(out),
        "--run-name",
        "ppo",
        *TINY,
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / "ppo"


def rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "adapt.csv").open()))


def test_a_drift_triggers_fine_tuning_into_a_run_that_marlo_eval_accepts(ppo_run, tmp_path, ray_tmp):
    out = tmp_path / "adapt"
    done = adapt(ppo_run, out, *DRIFT_FLAGS, "--reference-episodes", "1", "--mmd-samples", "100", ray_tmp=ray_tmp)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = rows(out)
    assert [r["demand_scale"] for r in log] == ["1.0", "1.0", "2.0"]  # the drift starts at bucket 2 (--drift-at)
    assert [r["triggered"] for r in log] == ["False", "False", "True"]
    assert all(float(r["mmd"]) > 0 and float(r["delay"]) > 0 for r in log)
    assert len({r["seeds"] for r in log}) == 3  # every bucket meets fresh demand
    fine_tuned = Path(log[2]["finetuned"])
    assert fine_tuned.is_relative_to(out / "finetune_02") and (fine_tuned / "rllib_checkpoint.json").is_file()
    assert log[2]["checkpoint"] != log[2]["finetuned"]
    for j in range(3):
        assert (out / "buckets" / f"{j:02d}" / "dataset.json").is_file()
    # before it is deployed, the fine-tuned policy replays bucket 2's demand and seeds (--adopt better)
    trial = json.loads((out / "trials" / "02" / "dataset.json").read_text())
    assert trial["seeds"] == [int(s) for s in log[2]["seeds"].split()] and trial["env"]["demand_scale"] == 2.0
    assert float(log[2]["finetuned_delay"]) == pytest.approx(trial["behaviour_mean_delay"], abs=1e-3)
    assert log[2]["adopted"] == str(float(log[2]["finetuned_delay"]) < float(log[2]["delay"]))
    in_force = (
        log[2]["finetuned"]
        if log[2]["adopted"] == "True"
        else f"{log[0]['checkpoint']} (no fine-tuned policy deployed)"
    )
    assert f"policy in force: {in_force}" in done.stdout
    assert (out / "adapt.png").stat().st_size > 0
    config = (out / "finetune_02" / "config.yaml").read_text()
    assert "demand_scale: 2.0" in config  # fine-tuned on the drifted demand
    evaluated = run_cli(
        "eval",
        "--checkpoint",
        str(out / "finetune_02"),
        "--scenario",
        "2x2grid",
        "--episodes",
        "1",
        "--seconds",
        "300",
        "--demand-scale",
        "2",
        "--out",
        str(tmp_path / "eval"),
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]


def test_without_drift_a_high_ratio_keeps_the_policy(ppo_run, tmp_path, ray_tmp):
    out = tmp_path / "quiet"
    done = adapt(ppo_run, out, "--buckets", "3", "--ratio", "1000", "--reference-episodes", "1", ray_tmp=ray_tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["triggered"] for r in rows(out)] == ["False"] * 3
    assert not list(out.glob("finetune_*"))
    assert "no fine-tuned policy deployed" in done.stdout


def test_ctrl_c_keeps_the_buckets_recorded_so_far(ppo_run, tmp_path, ray_tmp):
    out = tmp_path / "cut"
    log = tmp_path / "adapt.log"
    process = start_marlo(
        "adapt",
        "--checkpoint",
        str(ppo_run),
        "--scenario",
        "2x2grid",
        "--out",
        str(out),
        "--buckets",
        "1000",  # far more than are recorded before the interrupt
        "--ratio",
        "1000",
        "--reference-episodes",
        "1",
        "--workers",
        "1",
        ray_tmp=ray_tmp,
        log=log,
    )
    deadline = time.monotonic() + 300
    while not (out / "buckets" / "01" / "dataset.json").is_file():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no bucket recorded in time"
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130, log.read_text()[-3000:]
    kept = rows(out)
    assert len(kept) >= 2 and [r["bucket"] for r in kept] == [str(j) for j in range(len(kept))]
    assert "adapt.csv" in log.read_text()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ratio", "0"], "--ratio must be a positive number"),
        (["--ratio", "-1"], "--ratio must be a positive number"),
        (["--buckets", "0"], "--buckets must be at least 1"),
        (["--scenario", "cologne8"], "was trained on 2x2grid, not on cologne8"),
        (["--traffic", "evening"], "2x2grid has one traffic demand"),
        (["--demand-scale", "nan"], "--demand-scale must be a positive number"),
        (["--adopt", "sometimes"], "--adopt must be one of better, always"),
    ],
)
def test_bad_input_exits_2_with_one_line(ppo_run, tmp_path, flags, message):
    base = {"--checkpoint": str(ppo_run), "--scenario": "2x2grid", "--out": str(tmp_path / "x")}
    args = [*(item for key, value in base.items() if key not in flags for item in (key, value)), *flags]
    done = run_cli("adapt", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_folder_that_is_no_run_exits_2(tmp_path):
    done = run_cli("adapt", "--checkpoint", str(tmp_path), "--scenario", "2x2grid", "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "not a marlo run directory" in done.stderr
