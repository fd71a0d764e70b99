"""The RLlib AlgorithmConfig of a resolved marlo experiment: env, env runners sized to the env's
measured speed, learners, the policy layout's modules, evaluation, fault tolerance and, for offline
algorithms, the dataset pipeline."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from marlo_rllib.algorithms import ADVANTAGES_PER_JUNCTION, REPLAY_RATIO, STANDARDISE_ADVANTAGES, get_algorithm
from marlo_rllib.algorithms.dqn import BUFFER as PRIORITIZED_BUFFER
from marlo_rllib.config import ExperimentConfig, ResourceSettings, middle_demand_scale
from marlo_rllib.layout import SHARED_MODULE, policy_mapping


def gpus_per_learner(resources: ResourceSettings) -> float:
    if resources.num_gpus_per_learner is not None:
        return resources.num_gpus_per_learner
    return 1 if resources.gpu else 0


def shared_module_class(config: ExperimentConfig) -> type:
    """The RLModule class of the one module that drives every junction (shared or central layout)."""
    if config.policy == "central":
        from marlo_rllib.models.central_critic import CentralCriticPPOTorchRLModule

        return CentralCriticPPOTorchRLModule
    if config.model.encoder == "phase":
        from marlo_rllib.models.phase import PhasePPOTorchRLModule

        return PhasePPOTorchRLModule
    return get_algorithm(config.algorithm).masked_module_class()


SAMPLE_TIMEOUT_MARGIN = 8  # a fragment at the probe's speed takes at most 1/8 of the timeout
MIN_EVALUATION_TIMEOUT_S = 120.0


def sampling_settings(config: ExperimentConfig, probe: dict[str, Any] | None) -> dict[str, Any]:
    """Rollout fragment and timeouts sized to the env's measured speed, so that every sample() call
    returns well within RLlib's timeout (RLlib drops a late one and the iteration trains on nothing).
    A synchronous algorithm's per-runner share of the train batch is cut into equal fragments."""
    timeout = float(config.resources.sample_timeout_s)
    fragment: int | str = get_algorithm(config.algorithm).rollout_fragment_length
    evaluation_timeout = config.evaluation.timeout_s or MIN_EVALUATION_TIMEOUT_S
    if probe:
        env_steps_per_s, episode_steps = probe["env_steps_per_s"], probe["episode_steps"]
        longest = max(1, int(env_steps_per_s * timeout / SAMPLE_TIMEOUT_MARGIN))
        batch = config.training.get("train_batch_size_per_learner")
        if fragment == "auto" and isinstance(batch, int):  # (a Tune search may sample the batch size)
            resources = config.resources
            share = math.ceil(batch * max(resources.num_learners, 1) / max(resources.num_env_runners, 1))
            fragment = "auto" if share <= longest else math.ceil(share / math.ceil(share / longest))
            if isinstance(fragment, int):  # RLlib counts a fragment per env; a runner's envs step together
                fragment = math.ceil(fragment / resources.envs_per_env_runner)
        if config.evaluation.timeout_s is None:
            evaluation_timeout = max(MIN_EVALUATION_TIMEOUT_S, SAMPLE_TIMEOUT_MARGIN * episode_steps / env_steps_per_s)
    return {
        "rollout_fragment_length": fragment,
        "sample_timeout_s": timeout,
        "evaluation_timeout_s": evaluation_timeout,
    }


def evaluation_env_config(env_config: dict[str, Any]) -> dict[str, Any]:
    """The env_config of evaluations during training: other SUMO seeds, the middle demand scale, and
    one fixed demand of a generated scenario."""
    from marlo_rllib.env.rllib import SEED_STRIDE

    evaluation_env = {**env_config, "seed_base": env_config["seed_base"] + SEED_STRIDE // 2, "state_in_infos": False}
    if "demand_scale" in env_config:  # training may draw from a range
        evaluation_env["demand_scale"] = middle_demand_scale(env_config["demand_scale"])
    if env_config.get("evaluation_traffic_scenario"):
        evaluation_env["traffic_scenario"] = env_config["evaluation_traffic_scenario"]
    return evaluation_env


def build_config(
    config: ExperimentConfig,
    env_config: dict[str, Any],
    agents: list[str],
    callbacks: type,
    state_dim: int | None = None,
    probe: dict[str, Any] | None = None,
) -> Any:
    """The RLlib AlgorithmConfig of a resolved experiment (marlo_rllib.config.compose); env_config is its env_config().
    state_dim: the size of the env's global state, for a centralized critic.
    probe: the bare env's measured `env_steps_per_s` and its `episode_steps` (prepare_run's probe),
    to size rollout fragments and timeouts."""
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from marlo_rllib.env.rllib import RLlibTrafficSignalEnv
    from marlo_rllib.env.vector import MarloEnvRunner

    algorithm = get_algorithm(config.algorithm)
    training = dict(config.training)
    model = config.model.model_dump()
    learner_connector = None
    if config.policy == "central":
        from marlo_rllib.models.central_critic import AddGlobalState

        critic = {
            "state_dim": state_dim,
            "num_agents": len(agents),
            "critic_sharing": config.critic.sharing,
            "critic_input": config.critic.input,
        }
        modules = {
            SHARED_MODULE: RLModuleSpec(module_class=shared_module_class(config), model_config={**model, **critic})
        }
        learner_connector = partial(AddGlobalState, agents=agents)
    elif algorithm.offline_only:  # no env runner tells the learner the spaces: the env does, here
        env = RLlibTrafficSignalEnv(env_config).par_env
        spaces = {"observation_space": env.observation_space(agents[0]), "action_space": env.action_space(agents[0])}
        env.close()
        modules = {SHARED_MODULE: RLModuleSpec(module_class=shared_module_class(config), **spaces)}
    elif config.policy == "shared":
        modules = {SHARED_MODULE: RLModuleSpec(module_class=shared_module_class(config))}
    else:
        modules = {agent: RLModuleSpec() for agent in agents}
    resources, evaluation = config.resources, config.evaluation
    evaluation_env = evaluation_env_config(env_config)
    minibatches = training.pop("dataset_num_iters_per_learner", None)
    transitions_per_env_step = 1 if config.policy == "independent" else len(agents)  # per module
    replay_ratio = training.pop(REPLAY_RATIO, None)
    if replay_ratio is not None and training.get("training_intensity") is None:
        training["training_intensity"] = replay_ratio * transitions_per_env_step
    learner_class: type | None = None
    if training.pop(ADVANTAGES_PER_JUNCTION, False):
        from marlo_rllib.training.advantages import PerJunctionAdvantagesPPOLearner

        learner_class = PerJunctionAdvantagesPPOLearner
    if training.pop(STANDARDISE_ADVANTAGES, False):
        from marlo_rllib.training.advantages import StandardisedAdvantagesIMPALALearner

        learner_class = StandardisedAdvantagesIMPALALearner
    buffer = training.get("replay_buffer_config")
    if isinstance(buffer, dict) and buffer.get("type") == PRIORITIZED_BUFFER:
        training["replay_buffer_config"] = {**buffer, "transitions_per_env_step": transitions_per_env_step}
    sampling = sampling_settings(config, probe)
    algorithm_config = (
        algorithm.config_class()()
        .environment(
            RLlibTrafficSignalEnv,
            env_config=env_config,
            # RLlib's checker steps unmasked random actions, which the env refuses on padded greens;
            # tests/test_env_api.py runs PettingZoo's API test instead.
            disable_env_checking=True,
            # greens are discrete: nothing to unsquash or clip, and RLlib would deep-copy every action to do it
            normalize_actions=False,
            clip_actions=False,
        )
        .env_runners(
            num_env_runners=0 if algorithm.offline_only else resources.num_env_runners,
            # libsumo holds one simulation per process: MarloEnvRunner puts each of several in its own
            env_runner_cls=MarloEnvRunner,
            num_envs_per_env_runner=resources.envs_per_env_runner,
            rollout_fragment_length=sampling["rollout_fragment_length"],
            sample_timeout_s=sampling["sample_timeout_s"],
            num_cpus_per_env_runner=resources.num_cpus_per_env_runner,
        )
        .resources(num_cpus_for_main_process=resources.num_cpus_for_main_process)
        .learners(
            num_learners=resources.num_learners,
            num_gpus_per_learner=gpus_per_learner(resources),
            learner_class=learner_class,  # None: the algorithm's own
            learner_connector=learner_connector,
        )
        .multi_agent(policies=set(modules), policy_mapping_fn=policy_mapping(config.policy))
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs=modules), model_config=model)
        .training(**training)
        .evaluation(
            evaluation_interval=evaluation.interval,
            evaluation_parallel_to_training=evaluation.parallel,
            evaluation_duration=evaluation.episodes,
            evaluation_duration_unit="episodes",
            evaluation_num_env_runners=resources.evaluation_num_env_runners,
            evaluation_sample_timeout_s=sampling["evaluation_timeout_s"],
            evaluation_config=algorithm.config_class().overrides(
                explore=evaluation.actions == "sample",
                num_envs_per_env_runner=1,  # an evaluation is a whole number of episodes
                env_config=evaluation_env,
                metrics_num_episodes_for_smoothing=evaluation.episodes,  # each evaluation stands alone
            ),
        )
        .fault_tolerance(
            restart_failed_env_runners=True,
            restart_failed_sub_environments=True,
            max_num_env_runner_restarts=100,
            delay_between_env_runner_restarts_s=1.0,
        )
        .callbacks(callbacks)
        # log_sys_usage: Tune's thread polling psutil (and nvidia-smi, where GPUtil is installed) every
        # 0.7 s in the algorithm's process, beside the env runners; nothing reads its `perf` metrics.
        .debugging(seed=config.seed, log_sys_usage=False)
    )
    iteration_env_steps = evaluation.min_env_steps_per_iteration or algorithm.iteration_env_steps
    if iteration_env_steps and not algorithm.offline_only:
        algorithm_config.reporting(min_sample_timesteps_per_iteration=iteration_env_steps)
    if algorithm.offline_only:
        from marlo_rllib.offline.pipeline import offline_data_settings

        algorithm_config.offline_data(
            dataset_num_iters_per_learner=minibatches,
            **offline_data_settings(str(config.dataset), training["train_batch_size_per_learner"]),
        )
    return algorithm_config
