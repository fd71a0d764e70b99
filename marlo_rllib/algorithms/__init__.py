"""Algorithms by name. Each module says what it can do (ON_POLICY, DISCRETE_ACTIONS, OFFLINE_ONLY,
CENTRALIZED_CRITIC, ACTION_MASKING), ships CPU and GPU PRESETS of RLlib `training()` parameters,
and names its RLlib config class and the module a shared policy uses."""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable
from functools import cache, partial
from types import ModuleType
from typing import Any

from marlo_rllib.errors import UserError

ALGORITHMS = {
    name: f"marlo_rllib.algorithms.{name.lower()}"
    for name in ("PPO", "APPO", "IMPALA", "DQN", "SAC", "CQL", "BC", "MARWIL")
}
SHARED_MODULE = "shared"
POLICY_LAYOUTS = ("shared", "independent", "central")
ALIASES = {"MAPPO": ("PPO", "central")}  # name: (algorithm, policy layout)
CAPABILITIES = ("ON_POLICY", "DISCRETE_ACTIONS", "OFFLINE_ONLY", "CENTRALIZED_CRITIC", "ACTION_MASKING")
OFFLINE_TRAINING_KEYS = frozenset({"dataset_num_iters_per_learner"})  # RLlib's offline_data() setting, under `training`


def get_algorithm(name: str) -> ModuleType:
    key = str(name).upper()
    if key not in ALGORITHMS:
        raise UserError(f"unknown algorithm {name!r}; valid: {', '.join([*ALGORITHMS, *ALIASES])}")
    return importlib.import_module(ALGORITHMS[key])


def resolve_alias(name: str, policy: str | None) -> tuple[str, str | None]:
    """--algo MAPPO means --algo PPO --policy central."""
    if str(name).upper() not in ALIASES:
        return name, policy
    algorithm, layout = ALIASES[str(name).upper()]
    if policy not in (None, layout):
        raise UserError(f"--algo {name} is {algorithm} with --policy {layout}; drop --policy {policy}")
    return algorithm, layout


def check_combination(algorithm: ModuleType, policy: str) -> None:
    """Refuses a policy layout the algorithm cannot train."""
    if policy not in POLICY_LAYOUTS:
        raise UserError(f"unknown policy layout {policy!r}; valid: {', '.join(POLICY_LAYOUTS)}")
    if algorithm.OFFLINE_ONLY and policy != "shared":
        raise UserError(
            f"--algo {algorithm.NAME} --policy {policy}: offline algorithms train one shared policy "
            "from every junction's transitions; use --policy shared"
        )
    if policy == "central" and not algorithm.CENTRALIZED_CRITIC:
        able = [name for name in ALGORITHMS if get_algorithm(name).CENTRALIZED_CRITIC]
        raise UserError(
            f"--algo {algorithm.NAME} --policy central: {algorithm.NAME} has no centralized critic; "
            + (f"use --algo {' or '.join(able)}" if able else "no algorithm has one yet")
        )


def check_masking(algorithm: ModuleType, policy: str, scenario: str, padded: bool) -> None:
    """A shared policy on junctions with different green counts needs padded greens masked."""
    if padded and policy != "independent" and not algorithm.ACTION_MASKING:
        raise UserError(
            f"--algo {algorithm.NAME} --policy {policy} on {scenario}: its junctions have different "
            f"green counts and {algorithm.NAME} cannot mask padded greens; use --policy independent"
        )


@cache
def training_keys(name: str) -> frozenset[str]:
    """The parameter names RLlib's <Algo>Config.training() accepts, its base classes' included."""
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    algorithm = get_algorithm(name)
    names: set[str] = set(OFFLINE_TRAINING_KEYS) if algorithm.OFFLINE_ONLY else set()
    for config_class in algorithm.config_class().__mro__:
        if issubclass(config_class, AlgorithmConfig) and "training" in vars(config_class):
            names |= {
                p.name
                for p in inspect.signature(config_class.training).parameters.values()
                if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
            }
    return frozenset(names - {"self"})


def policy_mapping(policy: str) -> Callable[..., str]:
    if policy != "independent":
        return lambda agent_id, episode=None, **kwargs: SHARED_MODULE
    return lambda agent_id, episode=None, **kwargs: agent_id


def gpus_per_learner(resources: dict[str, Any]) -> float:
    if resources["num_gpus_per_learner"] is not None:
        return resources["num_gpus_per_learner"]
    return 1 if resources["gpu"] else 0


def shared_module_class(config: dict[str, Any]) -> type:
    """The RLModule class of the one module that drives every junction (shared or central layout)."""
    if config["policy"] == "central":
        from marlo_rllib.models.central_critic import CentralCriticPPOTorchRLModule

        return CentralCriticPPOTorchRLModule
    return get_algorithm(config["algorithm"]).masked_module_class()


SAMPLE_TIMEOUT_MARGIN = 8  # a fragment at the probe's speed takes at most 1/8 of the timeout
MIN_EVALUATION_TIMEOUT_S = 120.0


def sampling_settings(algorithm: ModuleType, config: dict[str, Any], probe: dict[str, Any] | None) -> dict[str, Any]:
    """Rollout fragment and timeouts sized to the env's measured speed, so that every sample() call
    returns well within RLlib's timeout (RLlib drops a late one and the iteration trains on nothing).
    A synchronous algorithm's per-runner share of the train batch is cut into equal fragments."""
    timeout = float(config["resources"]["sample_timeout_s"])
    fragment: int | str = algorithm.ROLLOUT_FRAGMENT_LENGTH
    evaluation_timeout = config["evaluation"]["timeout_s"] or MIN_EVALUATION_TIMEOUT_S
    if probe:
        env_steps_per_s, episode_steps = probe["env_steps_per_s"], probe["episode_steps"]
        longest = max(1, int(env_steps_per_s * timeout / SAMPLE_TIMEOUT_MARGIN))
        batch = config["training"].get("train_batch_size_per_learner")
        if fragment == "auto" and isinstance(batch, int):  # (a Tune search may sample the batch size)
            resources = config["resources"]
            share = math.ceil(batch * max(resources["num_learners"], 1) / max(resources["num_env_runners"], 1))
            fragment = "auto" if share <= longest else math.ceil(share / math.ceil(share / longest))
        if config["evaluation"]["timeout_s"] is None:
            evaluation_timeout = max(MIN_EVALUATION_TIMEOUT_S, SAMPLE_TIMEOUT_MARGIN * episode_steps / env_steps_per_s)
    return {
        "rollout_fragment_length": fragment,
        "sample_timeout_s": timeout,
        "evaluation_timeout_s": evaluation_timeout,
    }


def build_config(
    config: dict[str, Any],
    env_config: dict[str, Any],
    agents: list[str],
    callbacks: type,
    state_dim: int | None = None,
    probe: dict[str, Any] | None = None,
) -> Any:
    """The RLlib AlgorithmConfig of a resolved experiment (marlo_rllib.config.compose).
    state_dim: the size of the env's global state, for a centralized critic.
    probe: the bare env's measured `env_steps_per_s` and its `episode_steps` (prepare_run's probe),
    to size rollout fragments and timeouts."""
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from marlo_rllib.env.rllib import SEED_STRIDE, RLlibTrafficSignalEnv

    algorithm = get_algorithm(config["algorithm"])
    training = dict(config["training"])
    if config["policy"] == "central":
        from marlo_rllib.models.central_critic import AddGlobalState

        critic = {"state_dim": state_dim, "num_agents": len(agents), "critic_sharing": config["critic"]["sharing"]}
        modules = {
            SHARED_MODULE: RLModuleSpec(
                module_class=shared_module_class(config), model_config={**config["model"], **critic}
            )
        }
        training["learner_connector"] = partial(AddGlobalState, agents=agents)
    elif algorithm.OFFLINE_ONLY:  # no env runner tells the learner the spaces: the env does, here
        env = RLlibTrafficSignalEnv(env_config).par_env
        spaces = {"observation_space": env.observation_space(agents[0]), "action_space": env.action_space(agents[0])}
        env.close()
        modules = {SHARED_MODULE: RLModuleSpec(module_class=shared_module_class(config), **spaces)}
    elif config["policy"] == "shared":
        modules = {SHARED_MODULE: RLModuleSpec(module_class=shared_module_class(config))}
    else:
        modules = {agent: RLModuleSpec() for agent in agents}
    resources, evaluation = config["resources"], config["evaluation"]
    evaluation_env = {**env_config, "seed_base": env_config["seed_base"] + SEED_STRIDE // 2, "state_in_infos": False}
    if env_config.get("evaluation_traffic_scenario"):
        evaluation_env["traffic_scenario"] = env_config["evaluation_traffic_scenario"]
    minibatches = training.pop("dataset_num_iters_per_learner", None)
    sampling = sampling_settings(algorithm, config, probe)
    algorithm_config = (
        algorithm.config_class()()
        .environment(
            RLlibTrafficSignalEnv,
            env_config=env_config,
            # RLlib's checker steps unmasked random actions, which the env refuses on padded greens;
            # tests/test_env_api.py runs PettingZoo's API test instead.
            disable_env_checking=True,
        )
        .env_runners(
            num_env_runners=0 if algorithm.OFFLINE_ONLY else resources["num_env_runners"],
            num_envs_per_env_runner=1,  # libsumo: one simulation per process
            rollout_fragment_length=sampling["rollout_fragment_length"],
            sample_timeout_s=sampling["sample_timeout_s"],
            num_cpus_per_env_runner=resources["num_cpus_per_env_runner"],
        )
        .resources(num_cpus_for_main_process=resources["num_cpus_for_main_process"])
        .learners(num_learners=resources["num_learners"], num_gpus_per_learner=gpus_per_learner(resources))
        .multi_agent(policies=set(modules), policy_mapping_fn=policy_mapping(config["policy"]))
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs=modules), model_config=dict(config["model"]))
        .training(**training)
        .evaluation(
            evaluation_interval=evaluation["interval"],
            evaluation_duration=evaluation["episodes"],
            evaluation_duration_unit="episodes",
            evaluation_num_env_runners=resources["evaluation_num_env_runners"],
            evaluation_sample_timeout_s=sampling["evaluation_timeout_s"],
            evaluation_config=algorithm.config_class().overrides(
                explore=False,
                env_config=evaluation_env,
                metrics_num_episodes_for_smoothing=evaluation["episodes"],  # each evaluation stands alone
            ),
        )
        .fault_tolerance(
            restart_failed_env_runners=True,
            restart_failed_sub_environments=True,
            max_num_env_runner_restarts=100,
            delay_between_env_runner_restarts_s=1.0,
        )
        .callbacks(callbacks)
        .debugging(seed=config["seed"])
    )
    if algorithm.OFFLINE_ONLY:
        from marlo_rllib.offline.pipeline import offline_data_settings

        algorithm_config.offline_data(
            dataset_num_iters_per_learner=minibatches,
            **offline_data_settings(config["dataset"], training["train_batch_size_per_learner"]),
        )
    return algorithm_config
