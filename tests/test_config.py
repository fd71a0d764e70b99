"""Experiment composition: defaults < preset < experiment YAML < command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from marlo_rllib.config import compose, parse_set
from marlo_rllib.errors import UserError
from tests.conftest import REPO


def test_priority_runs_cli_over_yaml_over_preset_over_defaults():
    experiment = {"scenario": "grid4x4", "training": {"lr": 1e-3, "num_epochs": 4}, "stop": {"timesteps": 5000}}
    config = compose(experiment, parse_set(["training.lr=2e-4", "resources.num_env_runners=3"]))
    assert config.training["lr"] == 2e-4  # --set beats the YAML
    assert config.training["num_epochs"] == 4  # the YAML beats the preset
    assert config.training["minibatch_size"] == 1024  # the CPU preset
    assert config.stop.timesteps == 5000 and config.resources.num_env_runners == 3
    assert config.stop.window == 3  # a default


def test_gpu_selects_the_gpu_preset():
    config = compose({"scenario": "grid4x4"}, {"resources": {"gpu": True}})
    assert config.training["lr"] == 5e-4 and config.training["train_batch_size_per_learner"] == 8192
    assert config.training["num_epochs"] == 10 and config.model.fcnet_hiddens == [256, 256]


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
        ({"policy": "central"}, ["critic.input=pooled", "critic.sharing=false"], "critic.input pooled is one critic"),
        ({"policy": "central"}, ["resources.num_learners=2"], "--policy central trains on at most 1 learner"),
    ],
)
def test_bad_settings_are_user_errors(experiment, items, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
        compose({"scenario": "grid4x4", **experiment}, parse_set(items))


@pytest.mark.parametrize(
    "items, message",
    [
        (["training=5"], "training must be a mapping"),
        (["stop=5"], "stop must be a mapping"),
        (["seed=abc"], "seed must be a valid integer"),
        (["seed=-1"], "seed must be greater than or equal to 0"),
        (["seed=99999999999"], "seed must be less than 2147483648"),
        (["env.demand_scale=abc"], "env.demand_scale must be a valid number"),
        (["env.demand_scale=.nan"], "env.demand_scale must be a finite number"),
        (["env.episode_seconds=-5"], "env.episode_seconds must be greater than or equal to 1"),
        (["env.reward_params=5"], "env.reward_params must be a valid dictionary"),
        (["model.fcnet_hiddens=banana"], "model.fcnet_hiddens must be a valid list"),
        (["model.fcnet_hiddens=[]"], "model.fcnet_hiddens List should have at least 1 item"),
        (["model.fcnet_activation=sigmoid"], "model.fcnet_activation must be 'tanh', 'relu' or 'silu'"),
        (["checkpoint.num_to_keep=0"], "checkpoint.num_to_keep must be greater than or equal to 1"),
        (["critic.sharing=maybe"], "critic.sharing must be a valid boolean"),
        (["critic.input=attention"], "critic.input must be 'agent_specific', 'concat' or 'pooled'"),
        (["stop.band=abc"], "stop.band must be a valid number"),
        (["stop.target=abc"], "stop.target must be a valid number"),
        (["evaluation.episodes=0"], "evaluation.episodes must be greater than or equal to 1"),
        (["lr=-1"], "training.lr must be in [0, inf)"),
        (["gamma=2"], "training.gamma must be in (0, 1]"),
        (["training.num_epochs=2.5"], "training.num_epochs must be an integer"),
        (["resources.num_cpus_per_env_runner=0"], "resources.num_cpus_per_env_runner must be greater than 0"),
    ],
)
def test_settings_of_the_wrong_type_or_range_are_one_line_errors(items, message):
    with pytest.raises(UserError) as error:
        compose({"scenario": "grid4x4"}, parse_set(items))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_hidden_layers_default_to_the_algorithms_and_yield_to_the_user():
    assert compose({"scenario": "grid4x4"}, {}).model.fcnet_hiddens == [64, 64]  # PPO on a CPU
    assert compose({"scenario": "grid4x4", "algorithm": "DQN"}, {}).model.fcnet_hiddens == [256, 256]
    from_yaml = compose({"scenario": "grid4x4", "model": {"fcnet_hiddens": [128]}}, {})
    assert from_yaml.model.fcnet_hiddens == [128]
    from_cli = compose(
        {"scenario": "grid4x4", "model": {"fcnet_hiddens": [128]}}, parse_set(["model.fcnet_hiddens=[32]"])
    )
    assert from_cli.model.fcnet_hiddens == [32]


def test_the_presets_evaluation_cadence_goes_with_the_presets_batch():
    def interval(experiment: dict, items: tuple[str, ...] = ()) -> int:
        return compose({"scenario": "grid4x4", **experiment}, parse_set(list(items))).evaluation.interval

    assert interval({}) == 2  # PPO's CPU batch is 2048 env steps: an evaluation every 4096
    assert interval({}, ("resources.gpu=true",)) == 1  # 8192
    assert interval({}, ("training.train_batch_size_per_learner=512",)) == 1  # a batch of one's own
    assert interval({"training": {"train_batch_size_per_learner": 512}}) == 1
    assert interval({"evaluation": {"interval": 1}}) == 1
    assert interval({}, ("evaluation.interval=3",)) == 3
    assert interval({"algorithm": "APPO"}) == 1  # an APPO iteration samples at least 4096 env steps


def test_a_wall_clock_budget_alone_has_no_step_budget_and_no_plateau_stop():
    minutes_only = compose({"scenario": "grid4x4"}, {"stop": {"minutes": 20}}).stop
    assert minutes_only.timesteps is None and minutes_only.patience is None
    both = compose({"scenario": "grid4x4"}, {"stop": {"minutes": 20, "timesteps": 5000}}).stop
    assert both.timesteps == 5000 and both.patience is None
    chosen = compose({"scenario": "grid4x4"}, {"stop": {"minutes": 20, "patience": 4}}).stop
    assert chosen.patience == 4
    default = compose({"scenario": "grid4x4"}, {}).stop
    assert default.timesteps == 200_000 and default.patience == 10
    with pytest.raises(UserError, match="stop.minutes must be greater than 0"):
        compose({"scenario": "grid4x4"}, {"stop": {"minutes": -1}})


def test_free_form_sections_take_any_key():
    config = compose({"scenario": "grid4x4", "env": {"timing": {"delta_time": 10}}}, {})
    assert config.env.timing == {"delta_time": 10}


def test_learner_resources_map_to_rllib():
    from marlo_rllib.training.callbacks import TrafficMetricsCallback
    from marlo_rllib.training.rllib_config import build_config

    env_config = {"scenario": "2x2grid", "seed_base": 100000, "shared_spaces": True}
    for overrides, learners, gpus, lr in (
        ({}, 0, 0, 5e-4),
        ({"resources": {"gpu": True}}, 0, 1, 5e-4),  # the GPU preset comes with --gpu
        ({"resources": {"gpu": True, "num_learners": 2, "num_gpus_per_learner": 0.5}}, 2, 0.5, 5e-4),
    ):
        config = compose({"scenario": "2x2grid"}, overrides)
        rllib = build_config(config, env_config, ["1", "2", "5", "6"], TrafficMetricsCallback)
        assert (rllib.num_learners, rllib.num_gpus_per_learner, rllib.lr) == (learners, gpus, lr)
    with pytest.raises(UserError, match="above 0 needs --gpu"):
        compose({"scenario": "2x2grid"}, {"resources": {"num_gpus_per_learner": 1}})
    with pytest.raises(UserError, match="evaluation.parallel needs an evaluation process"):
        compose(
            {"scenario": "2x2grid"}, {"evaluation": {"parallel": True}, "resources": {"evaluation_num_env_runners": 0}}
        )
    parallel = compose({"scenario": "2x2grid"}, parse_set(["evaluation.parallel=true"]))
    assert build_config(parallel, env_config, ["1"], TrafficMetricsCallback).evaluation_parallel_to_training


def test_replay_settings_count_agent_transitions_and_iterations_are_a_ppo_batch_long():
    from marlo_rllib.training.callbacks import TrafficMetricsCallback
    from marlo_rllib.training.rllib_config import build_config

    env_config = {"scenario": "2x2grid", "seed_base": 100000, "shared_spaces": True}
    agents = ["1", "2", "5", "6"]
    for policy, overrides, intensity in (
        ("shared", {}, 0.5 * 4),  # SAC's preset: one shared module takes 4 transitions per env step
        ("independent", {}, 0.5),
        ("shared", {"training": {"agent_replay_ratio": 2.0}}, 8.0),
        ("shared", {"training": {"training_intensity": 3.0}}, 3.0),  # RLlib's own wins
    ):
        config = compose({"scenario": "2x2grid", "algorithm": "SAC", "policy": policy}, overrides)
        rllib = build_config(config, env_config, agents, TrafficMetricsCallback)
        assert rllib.training_intensity == intensity
        assert rllib.min_sample_timesteps_per_iteration == 4096  # not RLlib's 100: an evaluation follows each
    ppo = build_config(compose({"scenario": "2x2grid"}, {}), env_config, agents, TrafficMetricsCallback)
    assert ppo.min_sample_timesteps_per_iteration == 0  # an iteration is the train batch
    assert ppo.log_sys_usage is False  # no psutil polling thread beside the env runners
    with pytest.raises(UserError, match="agent_replay_ratio"):
        compose({"scenario": "2x2grid", "algorithm": "PPO"}, {"training": {"agent_replay_ratio": 1.0}})
    with pytest.raises(UserError, match="agent_replay_ratio"):
        compose({"scenario": "2x2grid", "algorithm": "SAC"}, {"training": {"agent_replay_ratio": 0}})


def test_a_demand_range_trains_on_draws_and_evaluates_at_its_middle():
    from marlo_rllib.training.callbacks import TrafficMetricsCallback
    from marlo_rllib.training.rllib_config import build_config

    config = compose({"scenario": "2x2grid"}, parse_set(["env.demand_scale=[0.8, 1.4]"]))
    env_config = config.env_config()
    assert env_config["demand_scale"] == [0.8, 1.4]
    rllib = build_config(config, env_config, ["1"], TrafficMetricsCallback)
    assert rllib.env_config["demand_scale"] == [0.8, 1.4]
    assert rllib.evaluation_config["env_config"]["demand_scale"] == pytest.approx(1.1)
    with pytest.raises(UserError, match=r"env.demand_scale: a range is \[low, high\] with low <= high"):
        compose({"scenario": "2x2grid"}, parse_set(["env.demand_scale=[1.4, 0.8]"])).env_config()
    with pytest.raises(UserError, match="env.demand_scale"):
        compose({"scenario": "2x2grid"}, parse_set(["env.demand_scale=[0.8, 1.0, 1.2]"]))


def test_rollout_fragments_and_timeouts_fit_the_measured_env_speed():
    from marlo_rllib.training.callbacks import TrafficMetricsCallback
    from marlo_rllib.training.rllib_config import build_config

    env_config = {"scenario": "2x2grid", "seed_base": 100000, "shared_spaces": True}
    config = compose({"scenario": "2x2grid"}, {})  # 2048 env steps per batch, 2 env runners, 120 s timeout
    fast = build_config(
        config, env_config, ["1"], TrafficMetricsCallback, probe={"env_steps_per_s": 500.0, "episode_steps": 720}
    )
    assert fast.rollout_fragment_length == "auto" and fast.evaluation_sample_timeout_s == 120.0
    slow = build_config(
        config, env_config, ["1"], TrafficMetricsCallback, probe={"env_steps_per_s": 10.0, "episode_steps": 720}
    )
    # 1024 env steps per runner at 10/s would take 102 s; fragments of at most 10 * 120 / 8 = 150 steps
    assert slow.rollout_fragment_length == 147 and slow.sample_timeout_s == 120.0
    slow.validate_train_batch_size_vs_rollout_fragment_length()  # RLlib accepts it: 14 x 2 x 147 = 4116
    assert slow.evaluation_sample_timeout_s == 8 * 720 / 10.0  # an episode at a fraction of the probe's speed
    vector = build_config(
        compose({"scenario": "2x2grid"}, {"resources": {"envs_per_env_runner": 2}}),
        env_config,
        ["1"],
        TrafficMetricsCallback,
        probe={"env_steps_per_s": 10.0, "episode_steps": 720},
    )
    # RLlib counts a fragment per env: 2 envs of 74 steps make one sample() call of 148, as long as before
    assert (vector.rollout_fragment_length, vector.num_envs_per_env_runner) == (74, 2)
    assert vector.evaluation_config["num_envs_per_env_runner"] == 1
    vector.validate_train_batch_size_vs_rollout_fragment_length()
    with pytest.raises(UserError, match="resources.sample_timeout_s must be greater than 0"):
        compose({"scenario": "2x2grid"}, parse_set(["resources.sample_timeout_s=0"]))


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--config", "{junk}", "--scenario", "2x2grid", "--out", "{out}"],
        ["tune", "--scenario", "2x2grid", "--search", "{junk}", "--out", "{out}"],
        ["scenarios", "show", "{junk}"],
    ],
)
def test_a_file_of_random_bytes_is_one_line_and_exit_2(tmp_path, command):
    from tests.conftest import run_cli

    junk = tmp_path / "junk.yaml"
    junk.write_bytes(bytes(range(128, 256)) * 3)
    result = run_cli(*[part.format(junk=junk, out=tmp_path) for part in command])
    assert result.returncode == 2 and str(junk) in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_closed_pipe_ends_the_output_quietly():
    done = subprocess.run(
        f"{sys.executable} -m marlo_rllib.cli algos | head -1", shell=True, cwd=REPO, capture_output=True, text=True
    )
    assert done.stdout.startswith("algorithm") and done.stderr == ""


def test_one_schema_holds_defaults_types_and_help():
    from marlo_rllib.config import ExperimentConfig, describe

    defaults = ExperimentConfig(scenario="grid4x4")
    assert defaults.stop.timesteps == 200_000 and defaults.resources.num_env_runners == 2
    assert describe("resources.num_env_runners") == "SUMO processes sampling in parallel (default 2)"
    assert describe("resources.gpu").endswith("(default off)")
    with pytest.raises(UserError, match="resources.num_env_runners must be greater than or equal to 1"):
        compose({"scenario": "grid4x4"}, {"resources": {"num_env_runners": 0}})


def test_the_command_line_reaches_the_env_settings_in_one_pass():
    config = compose({"scenario": "grid4x4"}, parse_set(["env.demand_scale=1.3", "env.timing={delta_time: 10}"]))
    env = config.env_config()
    assert env["demand_scale"] == 1.3 and env["timing"]["delta_time"] == 10 and env["timing"]["yellow_time"] == 2
    assert env["seed_base"] == 100_000 and env["agent_id"] is True
    independent = compose({"scenario": "grid4x4"}, {"policy": "independent", "seed": 2}).env_config()
    assert independent["shared_spaces"] is False and "agent_id" not in independent
    assert independent["seed_base"] == 300_000
