"""The env runner (marlo_rllib/env/vector.py), on real SUMO: its step counts, and several simulations
behind one runner: seeds apart, RLlib's next-step autoreset, and a killed simulation that costs only
its own episode."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from ray.rllib.utils.metrics import (
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_MODULE_STEPS_SAMPLED_LIFETIME,
)

from marlo_rllib.config import compose
from marlo_rllib.env.rllib import SEED_STRIDE
from marlo_rllib.env.vector import MarloEnvRunner, SubprocessVectorEnv
from marlo_rllib.training.callbacks import TrafficMetricsCallback
from marlo_rllib.training.rllib_config import build_config
from tests.conftest import marlo, progress
from tests.test_training import TINY

STEPS = 10  # 50 s episodes of 5 s decisions


@pytest.fixture
def vector_env():
    env_config = compose({"scenario": "2x2grid"}, {"env": {"episode_seconds": 5 * STEPS}}).env_config()
    env = SubprocessVectorEnv(env_config, worker_index=1, num_workers=2, num_envs=2)
    yield env, env_config
    env.close()


def test_the_runner_counts_every_junctions_steps_across_samples_and_episodes():
    config = compose({"scenario": "2x2grid"}, {"env": {"episode_seconds": 5 * STEPS}})
    runner = MarloEnvRunner(config=build_config(config, config.env_config(), [], TrafficMetricsCallback))
    try:
        episodes = runner.sample(num_timesteps=2 * STEPS + 5)  # two whole episodes and part of a third
        runner.sample(num_timesteps=7)
        metrics = runner.get_metrics()
        assert not runner.module["shared"].training  # acting only: no train()/eval() switch per step
    finally:
        runner.stop()
    assert [len(e) for e in episodes] == [STEPS, STEPS, 5] and all(e.is_numpy for e in episodes)
    steps = 2 * STEPS + 12
    assert metrics[NUM_ENV_STEPS_SAMPLED_LIFETIME].peek() == steps
    assert {a: s.peek() for a, s in metrics[NUM_AGENT_STEPS_SAMPLED_LIFETIME].items()} == dict.fromkeys(
        ["1", "2", "5", "6"], steps
    )
    assert metrics[NUM_MODULE_STEPS_SAMPLED_LIFETIME]["shared"].peek() == 4 * steps


def greens(observations: dict) -> dict:
    return {a: int(np.flatnonzero(o["action_mask"])[0]) for a, o in observations.items()}


def test_each_simulation_keeps_its_own_seed_and_starts_anew_after_its_episode(vector_env):
    env, env_config = vector_env
    observations, _ = env.reset()
    assert len(observations) == 2 and set(observations[0]) == set(env.envs[0].possible_agents)
    for _ in range(STEPS):
        observations, rewards, terminateds, truncateds, infos = env.step([greens(o) for o in observations])
    assert [t["__all__"] for t in truncateds] == [True, True]
    seeds = [next(iter(info.values()))["seed"] for info in infos]
    # simulation j of runner 1 (of 2) seeds as runner 1 + 2j would
    assert [(s - env_config["seed_base"]) // SEED_STRIDE for s in seeds] == [1, 3]
    assert seeds[1] - seeds[0] == 2 * SEED_STRIDE
    observations, rewards, terminateds, truncateds, _ = env.step([{}, {}])  # RLlib's next-step autoreset
    assert [t["__all__"] for t in truncateds] == [False, False]
    assert all(r == 0.0 for reward in rewards for r in reward.values())
    assert set(observations[1]) == set(env.envs[1].possible_agents)


def test_a_killed_simulation_cuts_only_its_own_episode(vector_env):
    env, _ = vector_env
    observations, _ = env.reset()
    observations, *_ = env.step([greens(o) for o in observations])
    os.kill(env._children[0][0].pid, signal.SIGKILL)
    after, rewards, terminateds, truncateds, _ = env.step([greens(o) for o in observations])
    assert truncateds[0]["__all__"] and not truncateds[1]["__all__"]
    assert set(after[0]) == set(observations[0])  # the cut episode ends on its last observation
    assert env.restarts == 1
    after, rewards, terminateds, truncateds, _ = env.step([{}, greens(after[1])])
    assert not truncateds[0]["__all__"]  # the new simulation's first step
    assert all(r == 0.0 for r in rewards[0].values())


def test_training_with_two_simulations_per_env_runner(tmp_path, ray_tmp):
    done = marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--timesteps",
        "240",
        "--num-env-runners",
        "1",
        "--envs-per-env-runner",
        "2",
        "--out",
        str(tmp_path),
        "--run-name",
        "vector",
        *TINY,
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = progress(tmp_path / "vector")
    assert int(rows[-1]["timesteps"]) >= 240
    assert all(float(row["eval_delay"]) > 0 for row in rows)  # evaluation runs one env, whole episodes
    assert "envs_per_env_runner: 2" in (tmp_path / "vector" / "config.yaml").read_text()
