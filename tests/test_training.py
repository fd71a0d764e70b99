"""`marlo train` on real SUMO and a real local Ray, with tiny budgets.

2x2grid episodes are cut to 300 s (60 decisions of 5 s); a training iteration samples 120 env
steps (two episodes). Every run starts its own Ray with its temp dir inside a short temp folder
and shuts it down at the end.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, assert_finite_episode, descendants, marlo, progress

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


def start_marlo(*args: str, ray_tmp: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    stream = log.open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "marlo_rllib.cli", *args],
        cwd=REPO,
        env=env,
        stdout=stream,
        stderr=subprocess.STDOUT,
        # as from a terminal: a shell without job control starts background jobs with SIGINT ignored,
        # and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_rows(run_dir: Path, rows: int, process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while len(progress(run_dir)) < rows:
        assert process.poll() is None, f"training ended early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "no training progress in time"
        time.sleep(1)


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory, ray_tmp) -> Path:
    out = tmp_path_factory.mktemp("runs")
    relative = os.path.relpath(out, REPO)  # as `make demo` passes it
    done = marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--algo",
        "ppo",
        "--timesteps",
        "240",
        "--checkpoint-every",
        "120",
        "--out",
        relative,
        "--run-name",
        "shared",
        *TINY,
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / "shared"


def test_shared_ppo_run_directory_and_checkpoint(shared_run):
    for name in ("config.yaml", "metadata.json", "README.txt", "progress.csv", "state.json"):
        assert (shared_run / name).is_file(), name
    config = yaml.safe_load((shared_run / "config.yaml").read_text())
    assert config["training"]["lr"] == 5e-4 and config["training"]["num_epochs"] == 1  # preset < --set
    metadata = json.loads((shared_run / "metadata.json").read_text())
    assert set(metadata["spaces"]) == {"1", "2", "5", "6"} and "ray" in metadata["versions"]
    rows = progress(shared_run)
    assert [int(r["timesteps"]) for r in rows] == [120, 240]
    for column in (
        "episode_return_mean",
        "episode_len_mean",
        "agent_steps_sampled",
        "success_streak",
        "delay",
        "waiting_time",
        "queue_length",
        "stopped_ratio",
        "throughput",
        "eval_delay",
    ):
        assert rows[-1][column] != "", column
    assert float(rows[-1]["delay"]) > 0 and int(rows[-1]["agent_steps_sampled"]) == 4 * 120
    state = json.loads((shared_run / "state.json").read_text())
    assert state["status"] == "finished" and state["stop_reason"].startswith("budget")
    best = shared_run / "best"
    assert best.is_symlink() and best.resolve() == (shared_run / state["best"]["checkpoint"]).resolve()
    assert state["best"]["score"] == pytest.approx(max(float(r["score"]) for r in rows), abs=1e-3)
    checkpoints = sorted(best.resolve().parent.glob("checkpoint_*"))
    assert len(checkpoints) == 2  # every 120 env steps, the second also the final one
    assert_finite_episode(shared_run, "2x2grid")


def test_the_run_chose_greedy_or_sampled_actions_on_unseen_seeds(shared_run):
    from marlo_rllib.config import TRAINING_SEED_BASE
    from marlo_rllib.controllers import make_controller
    from marlo_rllib.controllers.policy import ACTIONS_FILE

    state = json.loads((shared_run / "state.json").read_text())
    chosen = state["actions"]
    assert chosen["checkpoint"] == state["best"]["checkpoint"]
    assert set(chosen["delay"]) == {"greedy", "sample"} and all(d > 0 for d in chosen["delay"].values())
    assert chosen["actions"] == min(chosen["delay"], key=chosen["delay"].get)
    # the seeds are neither benchmarks' (below TRAINING_SEED_BASE) nor the in-training evaluations'
    assert chosen["seeds"] == [TRAINING_SEED_BASE + 2500, TRAINING_SEED_BASE + 2501]
    saved = json.loads((shared_run / state["best"]["checkpoint"] / ACTIONS_FILE).read_text())
    assert saved["actions"] == chosen["actions"]
    assert make_controller(f"ckpt:{shared_run}").actions == chosen["actions"]
    assert make_controller(f"ckpt-sample:{shared_run}").actions == "sample"
    assert make_controller(f"ckpt-greedy:{shared_run}").actions == "greedy"


def test_sampled_actions_repeat_with_the_seed_and_differ_from_greedy(shared_run):
    from marlo_rllib.controllers import make_controller
    from marlo_rllib.env import TrafficSignalEnv

    def actions(name: str, seed: int) -> list[dict]:
        controller = make_controller(name)
        env = TrafficSignalEnv("2x2grid", episode_seconds=100, **controller.env_options)
        try:
            observations, infos = env.reset(seed=0)
            controller.reset(env, seed=seed)
            chosen = []
            while env.agents:
                chosen.append(controller.act(observations, infos))
                observations, _, _, _, infos = env.step(chosen[-1])
            return chosen
        finally:
            env.close()

    sampled = actions(f"ckpt-sample:{shared_run}", seed=0)
    assert sampled == actions(f"ckpt-sample:{shared_run}", seed=0)
    assert sampled != actions(f"ckpt-sample:{shared_run}", seed=1)
    greedy = actions(f"ckpt-greedy:{shared_run}", seed=0)
    assert greedy == actions(f"ckpt-greedy:{shared_run}", seed=1) and greedy != sampled


def test_the_best_checkpoint_outlives_later_ones(tmp_path, ray_tmp):
    # A checkpoint every iteration and one kept besides the latest: Tune must rank them by the
    # evaluation score, or it keeps the newest and deletes the best. With lr 0 the scores are the
    # evaluation seeds' luck, and the best one (iteration 6 of 10) is not the last.
    done = marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--timesteps",
        "1200",
        "--checkpoint-every",
        "120",
        "--set",
        "checkpoint.num_to_keep=1",
        "--set",
        "lr=0",
        "--out",
        str(tmp_path),
        "--run-name",
        "keep",
        *TINY,
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "keep"
    state, rows = json.loads((run / "state.json").read_text()), progress(run)
    scores = [float(r["score"]) for r in rows]
    assert len(rows) == 10 and state["best"]["score"] == pytest.approx(max(scores), abs=1e-3)
    assert state["best"]["checkpoint"] != state["latest_checkpoint"]
    kept = {path.name for path in (run / state["latest_checkpoint"]).parent.glob("checkpoint_*")}
    assert (run / "best").resolve().is_dir() and len(kept) == 2 and (run / "best").resolve().name in kept


def test_a_parallel_evaluation_makes_the_weights_it_scored_the_best(tmp_path, ray_tmp):
    # Beside iteration i, RLlib evaluates the weights iteration i-1 ended with. The best must be a copy
    # of iteration i-1's checkpoint (Tune, keeping one, deletes it as unscored), not iteration i's.
    done = marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--timesteps",
        "1200",
        "--set",
        "evaluation.parallel=true",
        "--set",
        "evaluation.interval=1",
        "--set",
        "checkpoint.num_to_keep=1",
        "--out",
        str(tmp_path),
        "--run-name",
        "parallel",
        *TINY,
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "parallel"
    state, rows = json.loads((run / "state.json").read_text()), progress(run)
    # iteration 1 scores the initial weights, which no checkpoint holds
    scores = {int(r["iteration"]): float(r["score"]) for r in rows if r["score"] and int(r["iteration"]) > 1}
    scored = max(scores, key=scores.__getitem__)
    assert len(rows) == 10 and state["best"]["score"] == pytest.approx(scores[scored], abs=1e-3)
    assert state["best"]["iteration"] == scored - 1 and (run / "best").resolve() == (run / "best_copy").resolve()
    with (run / "best" / "algorithm_state.pkl").open("rb") as stream:
        assert pickle.load(stream)["training_iteration"] == scored - 1


def test_benchmark_compares_a_checkpoint_with_baselines(shared_run, tmp_path, ray_tmp):
    relative = os.path.relpath(shared_run, REPO)  # the CLI runs in REPO; RLlib's loaders need absolute paths
    done = marlo(
        "benchmark",
        "--scenario",
        "2x2grid",
        "--controllers",
        f"fixed,ckpt:{relative}",
        "--episodes",
        "2",
        "--seconds",
        "300",
        "--out",
        str(tmp_path),
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    aggregate = json.loads((tmp_path / "metrics.json").read_text())["aggregate"]
    assert math.isfinite(aggregate[f"ckpt:{relative}"]["delay"]["mean"])
    assert (tmp_path / "heatmap_shared.png").is_file()


def test_checkpoint_stays_a_plain_rllib_checkpoint(shared_run, ray_tmp):
    import ray
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.core.rl_module.rl_module import RLModule

    checkpoint = (shared_run / "best").resolve()
    module = RLModule.from_checkpoint(checkpoint / "learner_group" / "learner" / "rl_module" / "shared")
    assert module.action_space.n == 4
    ray.init(num_cpus=4, include_dashboard=False, _temp_dir=ray_tmp)
    try:
        algorithm = Algorithm.from_checkpoint(str(checkpoint))
        best_iteration = json.loads((shared_run / "state.json").read_text())["best"]["iteration"]
        assert algorithm.training_iteration == best_iteration
        algorithm.stop()
    finally:
        ray.shutdown()


def test_independent_ppo_on_2x2grid(tmp_path, ray_tmp):
    done = marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--policy",
        "independent",
        "--timesteps",
        "240",
        "--out",
        str(tmp_path),
        "--run-name",
        "independent",
        *TINY,
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "independent"
    assert len(progress(run)) == 2
    modules = {p.name for p in (run / "best" / "learner_group" / "learner" / "rl_module").iterdir() if p.is_dir()}
    assert modules == {"1", "2", "5", "6"}
    assert_finite_episode(run, "2x2grid")


def test_shared_ppo_on_heterogeneous_cologne8(tmp_path, ray_tmp):
    done = marlo(
        "train",
        "--scenario",
        "cologne8",
        "--timesteps",
        "60",
        "--out",
        str(tmp_path),
        "--run-name",
        "c8",
        *TINY,
        "--set",
        "training.train_batch_size_per_learner=60",
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(progress(tmp_path / "c8")) == 1
    metrics = assert_finite_episode(tmp_path / "c8", "cologne8")
    assert metrics["throughput"] > 0


def test_early_stopping_ends_a_real_run_before_its_budget(tmp_path, ray_tmp):
    done = marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--timesteps",
        "100000",
        "--out",
        str(tmp_path),
        "--run-name",
        "early",
        *TINY,
        "--set",
        "stop.metric=delay",
        "--set",
        "stop.target=10000",
        "--set",
        "stop.streak=2",
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = progress(tmp_path / "early")
    assert [int(r["success_streak"]) for r in rows] == [1, 2]
    state = json.loads((tmp_path / "early" / "state.json").read_text())
    assert state["stop_reason"].startswith("success") and state["timesteps"] == 240


def test_no_samples_in_time_ends_the_run_with_one_line_instead_of_looping(tmp_path, ray_tmp):
    done = marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--timesteps",
        "100000",
        "--out",
        str(tmp_path),
        "--run-name",
        "stuck",
        *TINY,
        "--set",
        "resources.sample_timeout_s=0.001",
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("marlo:")]
    assert len(errors) == 1 and "no progress in 3 iterations" in errors[0] and "resources.sample_timeout_s" in errors[0]
    # A sample() call may still finish inside 1 ms now and then; the run ends after three idle ones in a row.
    rows = progress(tmp_path / "stuck")
    last = rows[-3:]
    assert len(last) == 3 and all("no env steps sampled" in r["warning"] for r in last)
    assert len({r["timesteps"] for r in last}) == 1 and int(last[0]["timesteps"]) < 120
    assert done.stdout.count("WARNING: no env steps sampled") >= 3
    state = json.loads((tmp_path / "stuck" / "state.json").read_text())
    assert state["status"] == "failed" and state["error"].startswith("no progress")


def test_sigint_writes_a_checkpoint_and_resume_continues_the_counter(tmp_path, ray_tmp):
    run = tmp_path / "interrupted"
    log = tmp_path / "train.log"
    process = start_marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--timesteps",
        "100000",
        "--checkpoint-every",
        "100000",
        "--out",
        str(tmp_path),
        "--run-name",
        "interrupted",
        *TINY,
        ray_tmp=ray_tmp,
        log=log,
    )
    try:
        wait_for_rows(run, 1, process, log)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=300) == 130, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "interrupted" and state["latest_checkpoint"]
    assert (run / state["latest_checkpoint"] / "rllib_checkpoint.json").is_file()
    before = state["timesteps"]
    assert before >= 120

    done = marlo("train", "--resume", str(run), "--timesteps", str(before + 240), ray_tmp=ray_tmp)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    steps = [int(r["timesteps"]) for r in progress(run)]
    resumed = steps[steps.index(before) + 1 :]
    assert resumed and resumed[0] == before + 120 and resumed[-1] >= before + 240
    assert json.loads((run / "state.json").read_text())["segments"] == 2


def test_killed_env_runner_is_replaced_and_the_run_completes(tmp_path, ray_tmp):
    run = tmp_path / "faulty"
    log = tmp_path / "train.log"
    budget = 1200
    process = start_marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--timesteps",
        str(budget),
        "--out",
        str(tmp_path),
        "--run-name",
        "faulty",
        *TINY,
        ray_tmp=ray_tmp,
        log=log,
    )
    try:
        wait_for_rows(run, 2, process, log)
        runners = [pid for pid, command in descendants(process.pid) if "MarloEnvRunner" in command]
        assert runners, "no env runner process found"
        os.kill(runners[0], signal.SIGKILL)
        assert process.wait(timeout=500) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
    assert json.loads((run / "state.json").read_text())["timesteps"] >= budget


def test_resume_from_starts_a_new_run_from_old_weights(shared_run, tmp_path, ray_tmp):
    from marlo_rllib.controllers.policy import load_modules
    from marlo_rllib.run_dir import resolve_checkpoint

    # lr=0: the new run's final weights must be exactly the old run's best weights.
    done = marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--timesteps",
        "120",
        "--resume-from",
        str(shared_run),
        "--out",
        str(tmp_path),
        "--run-name",
        "chained",
        *TINY,
        "--set",
        "training.lr=0",
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    old = load_modules(resolve_checkpoint(shared_run))["shared"].state_dict()
    new = load_modules(resolve_checkpoint(tmp_path / "chained"))["shared"].state_dict()
    assert old.keys() == new.keys()
    assert all(np.allclose(old[k].numpy(), new[k].numpy()) for k in old)


def test_bad_input_exits_2_with_one_line(shared_run, tmp_path, ray_tmp):
    cases = [
        (
            ["train", "--scenario", "2x2grid", "--algo", "XYZ"],
            "unknown algorithm 'XYZ'; valid: PPO, APPO, IMPALA, DQN, SAC",
        ),
        (["train", "--scenario", "2x2grid", "--set", "training.bogus=1"], "unknown key 'training.bogus'"),
        (["train", "--resume", str(tmp_path)], "is not a marlo run directory"),
        (
            [
                "eval",
                "--checkpoint",
                str(shared_run),
                "--scenario",
                "grid4x4",
                "--episodes",
                "1",
                "--out",
                str(tmp_path / "e"),
            ],
            "does not fit grid4x4",
        ),
        (
            ["train", "--scenario", "grid4x4", "--resume-from", str(shared_run), "--out", str(tmp_path)],
            "does not fit grid4x4",
        ),
        (
            [
                "train",
                "--scenario",
                "2x2grid",
                "--algo",
                "MAPPO",
                "--resume-from",
                str(shared_run),
                "--out",
                str(tmp_path),
            ],
            "its module is a MaskedPPOTorchRLModule, PPO --policy central trains a CentralCriticPPOTorchRLModule",
        ),
    ]
    corrupt = tmp_path / "corrupt"
    shutil.copytree((shared_run / "best").resolve(), corrupt)
    module_state = corrupt / "learner_group" / "learner" / "rl_module" / "shared" / "module_state.pkl"
    module_state.write_bytes(module_state.read_bytes()[:100])
    cases.append(
        (
            [
                "eval",
                "--checkpoint",
                str(corrupt),
                "--scenario",
                "2x2grid",
                "--episodes",
                "1",
                "--out",
                str(tmp_path / "e"),
            ],
            "cannot load checkpoint",
        )
    )
    cases.append(
        (["train", "--scenario", "2x2grid", "--gpu", "--out", str(tmp_path / "gpu")], "torch sees no CUDA GPU")
    )
    # damaged run directories: refused before Ray starts, and left as they were
    truncated, listed = tmp_path / "truncated", tmp_path / "listed"
    for copy in (truncated, listed):
        shutil.copytree(shared_run, copy, symlinks=True)
    state = json.loads((truncated / "state.json").read_text())
    learner_state = truncated / state["latest_checkpoint"] / "learner_group" / "learner" / "state.pkl"
    learner_state.write_bytes(learner_state.read_bytes()[:1000])
    (listed / "state.json").write_text("[1, 2]")
    cases += [
        (["train", "--resume", str(truncated)], "learner_group/learner/state.pkl does not load"),
        (["train", "--resume", str(listed)], "is not a marlo run directory"),
        (
            ["train", "--resume", str(shared_run), "--timesteps", "-5"],
            "stop.timesteps must be greater than or equal to 1",
        ),
    ]
    untouched = {path: path.read_bytes() for path in (shared_run / "state.json", truncated / "state.json")}
    for args, message in cases:
        done = marlo(*args, ray_tmp=ray_tmp)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.stderr[-2000:])
        assert len(lines) <= 2 and message in lines[-1], (args, done.stderr[-2000:])
    assert all(path.read_bytes() == content for path, content in untouched.items())
    assert not (tmp_path / "gpu").exists() or not any((tmp_path / "gpu").iterdir())


def test_a_resume_that_fails_before_training_leaves_the_run_as_it_was(tmp_path):
    from marlo_rllib.run_dir import save_state
    from marlo_rllib.training.runner import _settle

    before = {"status": "interrupted", "segments": 1, "timesteps": 480, "latest_checkpoint": "tune_0/c", "time_s": 9.0}
    save_state(tmp_path, before)
    (tmp_path / "tune_1").mkdir()  # what the failed segment's Tune had begun to write
    failed = {**before, "status": "failed", "segments": 2, "error": "cannot join the Ray cluster"}
    assert _settle(tmp_path, failed, before) == {**before, "last_resume_error": "cannot join the Ray cluster"}
    assert json.loads((tmp_path / "state.json").read_text())["status"] == "interrupted"
    assert not (tmp_path / "tune_1").exists()
    # a segment that trained keeps its record, failure included
    trained = {**failed, "timesteps": 960}
    assert _settle(tmp_path, trained, before)["status"] == "failed"
    assert json.loads((tmp_path / "state.json").read_text())["segments"] == 2


def test_the_default_configuration_learns_to_beat_random_control(tmp_path, ray_tmp):
    # The default PPO (preset, gamma, junction one-hot) with only the episode shortened: a few
    # iterations on 2x2grid must give a policy clearly better than random greens on unseen seeds.
    done = marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--timesteps",
        "16384",
        "--out",
        str(tmp_path),
        "--run-name",
        "smoke",
        "--set",
        "env.episode_seconds=600",
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    compared = marlo(
        "benchmark",
        "--scenario",
        "2x2grid",
        "--controllers",
        f"random,ckpt:{tmp_path / 'smoke'}",
        "--seeds",
        "0,1,2",
        "--seconds",
        "600",
        "--out",
        str(tmp_path / "compare"),
        ray_tmp=ray_tmp,
    )
    assert compared.returncode == 0, compared.stderr[-3000:]
    delay = {
        name: summary["delay"]["mean"]
        for name, summary in json.loads((tmp_path / "compare" / "metrics.json").read_text())["aggregate"].items()
    }
    assert delay[f"ckpt:{tmp_path / 'smoke'}"] < 0.8 * delay["random"], delay
