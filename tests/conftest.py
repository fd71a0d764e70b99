from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from marlo_rllib.env import TrafficSignalEnv
from marlo_rllib.evaluation import EpisodeTask
from marlo_rllib.evaluation.runner import run_episode

REPO = Path(__file__).resolve().parents[1]
# Modules of plain-Python tests (config, drift statistics, stopping rules, reward arithmetic): with
# no SUMO episode and no Ray, they make `make test-fast` (pytest -m unit), seconds instead of minutes.
UNIT_MODULES = {
    "test_config",
    "test_drift",
    "test_interrupts",
    "test_layers",
    "test_phase",
    "test_replay",
    "test_rewards",
    "test_stopper",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in UNIT_MODULES and "make_env" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.unit)


@pytest.fixture
def make_env():
    """Builds TrafficSignalEnvs and closes every one after the test, so libsumo is free for the next."""
    made: list[TrafficSignalEnv] = []

    def make(scenario, **kwargs) -> TrafficSignalEnv:
        env = TrafficSignalEnv(scenario, **kwargs)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "marlo_rllib.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def masked_random_actions(env: TrafficSignalEnv, observations: dict) -> dict:
    return {agent: env.action_space(agent).sample(mask=observations[agent]["action_mask"]) for agent in env.agents}


@pytest.fixture(scope="module")
def ray_tmp():
    # Ray's socket paths must stay short, so not under pytest's long tmp_path.
    path = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def marlo(*args: str, ray_tmp: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    return subprocess.run(
        [sys.executable, "-m", "marlo_rllib.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# marlo adapt on 2x2grid: demand x2 from bucket 2 on, and a ratio of 0.01, so that bucket 2 (any
# MMD above 1% of its predecessor's) surely triggers fine-tuning
DRIFT_FLAGS = ["--demand-scale", "2", "--buckets", "3", "--ratio", "0.01", "--finetune-minutes", "0.2"]


def adapt(run: Path, out: Path, *flags: str, ray_tmp: str) -> subprocess.CompletedProcess:
    return marlo("adapt", "--checkpoint", str(run), "--scenario", "2x2grid", "--out", str(out), *flags, ray_tmp=ray_tmp)


def progress(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "progress.csv"
    return list(csv.DictReader(path.open())) if path.exists() else []


def assert_finite_episode(run_or_checkpoint: Path, scenario: str) -> dict[str, float]:
    result = run_episode(
        EpisodeTask(scenario, f"ckpt:{run_or_checkpoint}", seed=7, env_options={"episode_seconds": 300})
    )
    assert result.metrics["vehicles"] > 0
    assert all(math.isfinite(v) for v in result.metrics.values())
    return result.metrics


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below pid, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            try:
                command = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            found.append((child, command))
            stack.append(child)
    return found
