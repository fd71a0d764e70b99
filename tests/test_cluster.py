"""`marlo submit` against a real Ray cluster started here on 127.0.0.1 (token authentication on,
dashboard on loopback, everything in temp dirs); only that cluster's processes are stopped."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from marlo_rllib.controllers.policy import load_controller
from tests.conftest import REPO, descendants

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_cluster(temp: str) -> None:
    """SIGKILLs every process of the cluster whose temp dir is `temp`: those naming it (gcs, raylet,
    dashboard, ...) and everything below them (agents, workers, job supervisors)."""
    roots = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if temp in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    roots.append(int(entry.name))
            except OSError:
                continue
    victims = {pid for root in roots for pid in [root, *(child for child, _ in descendants(root))]}
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(dashboard URL, GCS address, env with the cluster's HOME, token and PATH) of a fresh head node."""
    temp = tempfile.mkdtemp(prefix="rayc", dir="/tmp")
    home = tmp_path_factory.mktemp("home")  # its ~/.ray/auth_token is this cluster's token
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(home), "PATH": f"{bin_dir}:{os.environ['PATH']}", "RAY_AUTH_MODE": "token"}
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    subprocess.run([str(bin_dir / "ray"), "get-auth-token", "--generate"], env=env, check=True, capture_output=True)
    dashboard, gcs = free_port(), free_port()
    try:
        subprocess.run(
            [
                str(bin_dir / "ray"),
                "start",
                "--head",
                "--node-ip-address",
                "127.0.0.1",
                "--port",
                str(gcs),
                "--dashboard-host",
                "127.0.0.1",
                "--dashboard-port",
                str(dashboard),
                "--num-cpus",
                "5",
                "--temp-dir",
                temp,
                "--disable-usage-stats",
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=180,
        )
        yield f"http://127.0.0.1:{dashboard}", f"127.0.0.1:{gcs}", env
    finally:
        stop_cluster(temp)
        time.sleep(1)
        shutil.rmtree(temp, ignore_errors=True)


def submit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "marlo_rllib.cli", "submit", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_submitted_training_succeeds_and_its_checkpoint_loads(cluster, tmp_path):
    address, _, env = cluster
    out = tmp_path / "runs"
    done = submit(
        "--address",
        address,
        "--",
        "train",
        "--scenario",
        "2x2grid",
        "--algo",
        "PPO",
        "--timesteps",
        "120",
        "--out",
        str(out),
        "--run-name",
        "job",
        *TINY,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    job_id = done.stdout.strip().splitlines()[-1].split(":")[0]
    assert done.stdout.strip().endswith("SUCCEEDED") and "training PPO (shared policy) on 2x2grid" in done.stdout
    assert (out / "job" / "best").is_dir()
    load_controller(out / "job")
    status = submit("--address", address, "--status", job_id, env=env)
    assert status.returncode == 0 and status.stdout.strip() == "SUCCEEDED"
    assert "finished: budget" in submit("--address", address, "--logs", job_id, env=env).stdout


def test_wrong_token_is_refused_in_one_line(cluster):
    address, _, env = cluster
    done = submit("--address", address, "--status", "any", env={**env, "RAY_AUTH_TOKEN": "0" * 32})
    assert done.returncode == 2 and "authentication token" in done.stderr and "Traceback" not in done.stderr
    assert "0" * 32 not in done.stderr + done.stdout
    without_mode = {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"}
    done = submit("--address", address, "--status", "any", env=without_mode)
    assert done.returncode == 2 and "RAY_AUTH_MODE=token" in done.stderr, done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1


def test_search_that_cannot_fit_one_trial_exits_2(cluster, tmp_path):
    _, gcs, env = cluster
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "marlo_rllib.cli",
            "tune",
            "--scenario",
            "2x2grid",
            "--address",
            gcs,
            "--search",
            str(REPO / "experiments" / "search" / "ppo.yaml"),
            "--num-env-runners",
            "8",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("marlo")]
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert "one trial needs 11 CPU, the cluster has 5" in lines[0]


def test_unreachable_address_exits_2_in_bounded_time():
    start = time.monotonic()
    done = submit("--address", f"http://127.0.0.1:{free_port()}", "--status", "x", env=dict(os.environ))
    assert done.returncode == 2 and "cannot reach a Ray dashboard" in done.stderr
    assert time.monotonic() - start < 30


def test_training_against_an_unreachable_cluster_exits_2_and_writes_nothing(tmp_path):
    start = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "marlo_rllib.cli",
            "train",
            "--scenario",
            "2x2grid",
            "--address",
            f"127.0.0.1:{free_port()}",
            "--out",
            str(tmp_path / "runs"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "cannot reach a Ray cluster" in done.stderr, done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1 and time.monotonic() - start < 60
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_slurm_template_and_its_rendering_pass_bash_n(tmp_path):
    template = REPO / "experiments" / "cluster" / "slurm_ray.sbatch"
    assert subprocess.run(["bash", "-n", str(template)]).returncode == 0
    script = tmp_path / "job.sbatch"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "marlo_rllib.cli",
            "submit",
            "--slurm",
            "--nodes",
            "3",
            "--gpus-per-node",
            "2",
            "--time",
            "1-02:00:00",
            "--output",
            str(script),
            "--",
            "train",
            "--scenario",
            "grid6",
            "--set",
            "training.lr=1e-4 ",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert re.findall(r"@[A-Z_]+@", text) == ["@NAME@"]  # only the header's mention of the fields
    for line in (
        "#SBATCH --nodes=3",
        "#SBATCH --gres=gpu:2",
        "#SBATCH --time=1-02:00:00",
        "--num-gpus=2",
        "source .venv/bin/activate",
        "marlo train --scenario grid6 --set 'training.lr=1e-4 ' --address",
    ):
        assert line in text, line
    cpu_only = subprocess.run(
        [sys.executable, "-m", "marlo_rllib.cli", "submit", "--slurm", "--", "train", "--scenario", "grid6"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout
    assert "--gres" not in cpu_only and "--num-gpus=0" in cpu_only


@pytest.mark.parametrize(
    "args, message",
    [
        (["--slurm", "--time", "4h", "--", "train"], "--time takes HH:MM:SS"),
        (["--slurm", "--time", "99:99:99", "--", "train"], "--time takes HH:MM:SS"),
        (["--slurm", "--", "eval"], "--slurm runs `train …`"),
        (["--slurm", "--", "train", "--scenario", "nosuch"], "unknown scenario 'nosuch'"),
        (["--slurm", "--", "train", "--scenario", "2x2grid", "--set", "lr=-1"], "training.lr must be in [0, inf)"),
        (["--slurm", "--", "train", "--scenario", "2x2grid", "--bogus"], "unrecognized arguments: --bogus"),
        (
            ["--slurm", "--output", "/nonexistent/dir/job.sbatch", "--", "train", "--scenario", "2x2grid"],
            "cannot write --output",
        ),
        (["--status", "x"], "submit needs --address"),
        (["--address", "http://127.0.0.1:1", "--status", "a", "--logs", "b"], "either a marlo command"),
    ],
)
def test_bad_submit_input_exits_2(args, message):
    done = subprocess.run(
        [sys.executable, "-m", "marlo_rllib.cli", "submit", *args], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_slurm_output_never_overwrites_a_file(tmp_path):
    existing = tmp_path / "job.sbatch"
    existing.write_text("mine\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "marlo_rllib.cli",
            "submit",
            "--slurm",
            "--output",
            str(existing),
            "--",
            "train",
            "--scenario",
            "2x2grid",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "exists" in done.stderr and existing.read_text() == "mine\n"


def test_a_running_job_can_be_stopped(cluster, tmp_path):
    address, _, env = cluster
    done = submit(
        "--address",
        address,
        "--no-follow",
        "--",
        "train",
        "--scenario",
        "2x2grid",
        "--timesteps",
        "1000000",
        "--out",
        str(tmp_path),
        *TINY,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    job_id = done.stdout.strip().splitlines()[-1].split(":")[0]
    stopped = submit("--address", address, "--stop", job_id, env=env)
    assert stopped.returncode == 0 and stopped.stdout.strip() == f"{job_id}: stopping"
    deadline = time.monotonic() + 120
    status = ""
    while time.monotonic() < deadline and status != "STOPPED":
        status = submit("--address", address, "--status", job_id, env=env).stdout.strip()
        time.sleep(2)
    assert status == "STOPPED"
