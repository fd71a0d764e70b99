from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from marlo_rllib.env import TrafficSignalEnv

REPO = Path(__file__).resolve().parents[1]


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
    return {
        agent: env.action_space(agent).sample(mask=observations[agent]["action_mask"]) for agent in env.agents
    }
