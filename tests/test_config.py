"""Experiment composition: defaults < preset < experiment YAML < command line."""

from __future__ import annotations

import pytest

from marlo_rllib.config import compose, parse_set
from marlo_rllib.errors import UserError


def test_priority_runs_cli_over_yaml_over_preset_over_defaults():
    experiment = {"scenario": "grid4x4", "training": {"lr": 1e-3, "num_epochs": 4}, "stop": {"timesteps": 5000}}
    config = compose(experiment, parse_set(["training.lr=2e-4", "resources.num_env_runners=3"]))
    assert config["training"]["lr"] == 2e-4  # --set beats the YAML
    assert config["training"]["num_epochs"] == 4  # the YAML beats the preset
    assert config["training"]["minibatch_size"] == 1024  # the CPU preset
    assert config["stop"]["timesteps"] == 5000 and config["resources"]["num_env_runners"] == 3
    assert config["stop"]["window"] == 3  # a default


def test_gpu_selects_the_gpu_preset():
    config = compose({"scenario": "grid4x4"}, {"resources": {"gpu": True}})
    assert config["training"]["lr"] == 5e-4 and config["training"]["train_batch_size_per_learner"] == 8192
    assert config["training"]["num_epochs"] == 10 and config["model"]["fcnet_hiddens"] == [256, 256]


@pytest.mark.parametrize(
    "experiment, items, message",
    [
        ({}, ["stop.timestep=5"], "unknown key 'stop.timestep'"),
        ({}, ["training.learning_rate=1"], "unknown key 'training.learning_rate' for PPO"),
        ({"envv": {}}, [], "unknown key 'envv'"),
        ({}, ["algorithm=SPPO"], "unknown algorithm 'SPPO'; valid: PPO"),
        ({}, ["policy=centre"], "unknown policy layout 'centre'; valid: shared, independent, central"),
        ({}, ["lr=abc"], "training.lr must be a number"),
        ({"algorithm": "SAC"}, ["policy=central"], "SAC has no centralized critic"),
        ({}, ["stop.metric=speed"], "stop.metric"),
        ({}, ["resources.num_env_runners=0"], "num_env_runners"),
        ({}, ["noequals"], "--set takes key=value"),
    ],
)
def test_bad_settings_are_user_errors(experiment, items, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
        compose({"scenario": "grid4x4", **experiment}, parse_set(items))


def test_a_wall_clock_budget_alone_has_no_step_budget():
    assert compose({"scenario": "grid4x4"}, {"stop": {"minutes": 20}})["stop"]["timesteps"] is None
    assert compose({"scenario": "grid4x4"}, {"stop": {"minutes": 20, "timesteps": 5000}})["stop"]["timesteps"] == 5000
    assert compose({"scenario": "grid4x4"}, {})["stop"]["timesteps"] == 200_000
    with pytest.raises(UserError, match="stop.minutes must be a positive number"):
        compose({"scenario": "grid4x4"}, {"stop": {"minutes": -1}})


def test_free_form_sections_take_any_key():
    config = compose({"scenario": "grid4x4", "env": {"timing": {"delta_time": 10}}}, {})
    assert config["env"]["timing"] == {"delta_time": 10}


def test_learner_resources_map_to_rllib():
    from marlo_rllib.algorithms import build_config
    from marlo_rllib.training.callbacks import TrafficMetricsCallback

    env_config = {"scenario": "2x2grid", "seed_base": 100000, "shared_spaces": True}
    for overrides, learners, gpus, lr in (
        ({}, 0, 0, 5e-4),
        ({"resources": {"gpu": True}}, 0, 1, 5e-4),  # the GPU preset comes with --gpu
        ({"resources": {"gpu": True, "num_learners": 2, "num_gpus_per_learner": 0.5}}, 2, 0.5, 5e-4),
    ):
        config = compose({"scenario": "2x2grid"}, overrides)
        rllib = build_config(config, env_config, ["1", "2", "5", "6"], TrafficMetricsCallback)
        assert (rllib.num_learners, rllib.num_gpus_per_learner, rllib.lr) == (learners, gpus, lr)
    with pytest.raises(UserError, match="above 0 only with --gpu"):
        compose({"scenario": "2x2grid"}, {"resources": {"num_gpus_per_learner": 1}})


def test_rollout_fragments_and_timeouts_fit_the_measured_env_speed():
    from marlo_rllib.algorithms import build_config
    from marlo_rllib.training.callbacks import TrafficMetricsCallback

    env_config = {"scenario": "2x2grid", "seed_base": 100000, "shared_spaces": True}
    config = compose({"scenario": "2x2grid"}, {})  # 4096 env steps per batch, 2 env runners, 120 s timeout
    fast = build_config(config, env_config, ["1"], TrafficMetricsCallback, probe={"env_steps_per_s": 500.0, "episode_steps": 720})
    assert fast.rollout_fragment_length == "auto" and fast.evaluation_sample_timeout_s == 120.0
    slow = build_config(config, env_config, ["1"], TrafficMetricsCallback, probe={"env_steps_per_s": 10.0, "episode_steps": 720})
    # 2048 env steps per runner at 10/s would take 205 s; fragments of at most 10 * 120 / 8 = 150 steps
    assert slow.rollout_fragment_length == 147 and slow.sample_timeout_s == 120.0
    slow.validate_train_batch_size_vs_rollout_fragment_length()  # RLlib accepts it: 14 x 2 x 147 = 4116
    assert slow.evaluation_sample_timeout_s == 8 * 720 / 10.0  # an episode at a fraction of the probe's speed
    with pytest.raises(UserError, match="resources.sample_timeout_s must be a positive number"):
        compose({"scenario": "2x2grid"}, parse_set(["resources.sample_timeout_s=0"]))
