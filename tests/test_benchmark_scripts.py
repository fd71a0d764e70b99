"""The benchmark scripts refuse bad input in one line, before any training starts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(
    "script, args, message",
    [
        ("suite.py", ["--maps", "atlantis"], "unknown map atlantis"),
        ("suite.py", ["--maps", "grid4x4", "--minutes", "-1"], "--minutes must be positive"),
        ("suite.py", ["--maps", "grid4x4", "--seeds", "a,b"], "--seeds takes integers"),
        ("suite.py", ["--maps", "grid6", "--timing", "resco"], "unknown map grid6; valid with --timing resco"),
        ("first_iteration.py", ["--maps", "atlantis"], "unknown map atlantis"),
        ("first_iteration.py", ["--runners", "0"], "--runners must be at least 1"),
        ("levers.py", ["--variants", "bogus"], "unknown variant bogus"),
        ("levers.py", ["--timesteps", "0"], "--timesteps must be at least 1"),
        ("mappo_vs_ppo.py", ["--variants", "pooled,bogus"], "unknown variant bogus"),
        ("mappo_vs_ppo.py", ["--variants", "concat", "--reuse", "pooled"], "--reuse pooled is not a variant"),
        ("learner_profile.py", ["--iterations", "0"], "--iterations must be at least 1"),
        ("learner_profile.py", ["--scenario", "atlantis"], "unknown scenario"),
        ("switching.py", ["--scenario", "atlantis", "--controller", "fixed"], "unknown scenario 'atlantis'"),
        ("switching.py", ["--scenario", "2x2grid", "--controller", "bogus"], "unknown controller 'bogus'"),
        ("train_throughput.py", ["--maps", "atlantis"], "unknown map atlantis"),
        ("env_in_runner.py", ["--scenario", "atlantis"], "unknown map atlantis"),
        ("env_in_runner.py", ["--episodes", "0"], "must be positive"),
        ("train_throughput.py", ["--bare-episodes", "0"], "must be positive"),
        ("runner_overhead.py", ["--maps", "atlantis"], "unknown map atlantis"),
        ("runner_overhead.py", ["--steps", "0"], "--steps and --repeats must be positive"),
        ("adapt.py", ["--scenario", "grid4x4", "--oracle"], "name the drift: --demand-scale and/or --traffic"),
        ("junction_deadlock.py", ["--scenario", "atlantis", "--controllers", "fixed"], "unknown scenario 'atlantis'"),
        ("junction_deadlock.py", ["--scenario", "cologne3", "--controllers", "fixd"], "unknown controller 'fixd'"),
        ("junction_deadlock.py", ["--scenario", "cologne3", "--controllers", "fixed", "--seeds", "-1"], ">= 0"),
        ("algorithms.py", ["--algos", "PPO:shared:independent"], "PPO:shared:independent names more than one layout"),
        ("offline.py", ["--algos", "CQL,:shared"], "':shared' names no algorithm"),
        ("scenario_build.py", ["--scenario", "atlantis"], "unknown scenario 'atlantis'"),
        ("scenario_build.py", ["--scenario", "cologne8"], "cologne8 ships its network"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(script, args, message):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


@pytest.mark.unit
def test_runner_overhead_times_both_runners_on_a_small_map():
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "runner_overhead.py"), "--maps", "2x2grid", "--steps", "40"]
        + ["--repeats", "1", "--no-docs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith("| 2x2grid |")).split("|")
    rllib, marlo, ratio = (float(cell) for cell in row[3:6])
    # every cell is rounded to 0.01, so the ratio of the printed times only bounds the printed ratio
    lowest, highest = (marlo - 0.005) / (rllib + 0.005), (marlo + 0.005) / (rllib - 0.005)
    assert rllib > 0 and marlo > 0 and lowest - 0.005 <= ratio <= highest + 0.005


def test_suite_reports_when_training_first_reached_a_delay(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from suite import minutes_to_reach

    (tmp_path / "progress.csv").write_text(
        "iteration,time_s,eval_delay\n1,30,90.0\n2,60,\n3,90,40.5\n4,120,37.0\n5,150,39.0\n"
    )
    assert minutes_to_reach(tmp_path, 38.0) == (2.0, 4)
    assert minutes_to_reach(tmp_path, 40.5) == (1.5, 3)
    assert minutes_to_reach(tmp_path, 10.0) is None


@pytest.mark.unit
def test_suite_reruns_an_evaluation_only_when_its_command_or_checkpoint_changed(tmp_path, monkeypatch):
    """`marlo benchmark` itself is replaced by a recorder: what is tested is when the suite calls it."""
    import json

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import suite

    run_dir = tmp_path / "marlo"
    run_dir.mkdir()
    calls: list[list[str]] = []

    def benchmark(command: list[str], log) -> None:
        calls.append(command)
        out = tmp_path / command[command.index("--out") + 1]
        out.mkdir(parents=True, exist_ok=True)
        row = {"delay": {"mean": 30.0, "ci95": 1.0}}
        (out / "metrics.json").write_text(json.dumps({"aggregate": {"max_pressure": row}}))

    monkeypatch.setattr(suite, "run", benchmark)

    def evaluate(best: str, seeds: list[int]) -> None:
        (run_dir / "state.json").write_text(json.dumps({"best": {"checkpoint": best}}))
        suite.evaluate("grid4x4", run_dir, None, seeds, 1.0, None, tmp_path, False)

    evaluate("checkpoint_000003", [0, 1])
    evaluate("checkpoint_000003", [0, 1])
    assert len(calls) == 1
    evaluate("checkpoint_000004", [0, 1])
    evaluate("checkpoint_000004", [0, 1, 2])
    assert len(calls) == 3


def test_a_finished_run_of_the_same_command_is_reused_and_any_other_trained_afresh(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from learning import train_for_minutes

    run = tmp_path / "r"
    run.mkdir()
    (run / "state.json").write_text('{"status": "finished"}')
    command = f"marlo train --scenario atlantis --minutes 1.0 --out {tmp_path} --run-name r"
    (run / "metadata.json").write_text(json.dumps({"command": command}))
    assert train_for_minutes("atlantis", 1.0, tmp_path, "r", log=tmp_path / "log", reuse=True) == run
    assert run.exists()
    # Another command (here: other flags) trains anew, which for this unknown scenario fails with exit 2.
    with pytest.raises(subprocess.CalledProcessError) as failed:
        train_for_minutes("atlantis", 1.0, tmp_path, "r", "--seed", "1", log=tmp_path / "log", reuse=True)
    assert failed.value.returncode == 2 and not run.exists()
