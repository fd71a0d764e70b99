"""Experiment configuration: defaults < dataset < algorithm preset < experiment YAML < command line.

ExperimentConfig holds every setting's default, type, range and help; the algorithm module adds its
preset (CPU or GPU) and names the keys it accepts under `training` (RLlib's own parameter names,
e.g. `training.lr`, `training.num_epochs`). Any key outside that shape is a user error, so a typo
in `--set` or in a YAML never trains silently with the default.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from marlo_rllib.algorithms.spec import HIDDEN_LAYERS
from marlo_rllib.errors import UserError

ScoreMetric = Literal["return", "delay"]  # what scores checkpoints: the evaluation return or delay
SCORE_METRICS: tuple[str, ...] = get_args(ScoreMetric)

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
AtLeastOne = Annotated[int, Field(ge=1)]
SUMO_SEEDS = 2**31  # SUMO's --seed is a C int


class _Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", validate_assignment=True)


def middle_demand_scale(scale: float | list[float]) -> float:
    """The demand scale, or a range's middle: where a policy trained on the range is evaluated."""
    return sum(scale) / 2 if isinstance(scale, list) else scale


class EnvSettings(_Section):
    observation: str | None = Field(None, description="observation function; none: the scenario's")
    reward: str | None = Field(None, description="reward function; none: the scenario's")
    reward_params: dict[str, Any] | None = Field(None, description="keyword arguments of the reward")
    timing: dict[str, Any] = Field(
        default_factory=dict, description="overrides of delta_time, yellow_time, min_green, max_green (s)"
    )
    episode_seconds: AtLeastOne | None = Field(None, description="simulated seconds per episode; none: the scenario's")
    demand_scale: Positive | Annotated[list[Positive], Field(min_length=2, max_length=2)] = Field(
        1.0,
        description="multiplies every flow of the demand; a range [low, high]: each training episode draws its "
        "scale from it, and evaluation runs at its middle",
    )
    traffic_scenario: str | None = Field(
        None, description="a generated scenario's demand by name: train and evaluate on it alone"
    )
    backend: str = Field("libsumo", description="libsumo (one simulation per process) or traci")
    agent_id: bool = Field(
        True,
        description="a shared policy's observations end with the junction's one-hot (not with --policy independent)",
    )


class ModelSettings(_Section):
    fcnet_hiddens: Annotated[list[AtLeastOne], Field(min_length=1)] = Field(
        default_factory=lambda: list(HIDDEN_LAYERS),
        description="hidden layer sizes; default: the algorithm's (marlo algos)",
    )
    fcnet_activation: Literal["tanh", "relu", "silu"] = Field("tanh", description="hidden layers' activation")
    encoder: Literal["mlp", "phase"] = Field(
        "mlp", description="phase: one network scores every green from what it serves (models/phase.py; PPO, shared)"
    )


class CriticSettings(_Section):
    sharing: bool = Field(
        True, description="--policy central: one critic for all junctions (plus a one-hot), or one each"
    )
    input: Literal["agent_specific", "concat", "pooled"] = Field(
        "agent_specific",
        description="--policy central: the junction's own observation beside the global state; or the global "
        "state as one vector (plus a one-hot); or each junction's part through one shared encoder, mean-pooled, "
        "beside the junction's own (one shared critic)",
    )


class ResourceSettings(_Section):
    gpu: bool = Field(False, description="give the learner one GPU and use the GPU preset")
    num_env_runners: AtLeastOne = Field(2, description="SUMO processes sampling in parallel")
    envs_per_env_runner: AtLeastOne = Field(
        1, description="SUMO simulations per env runner; above 1 each runs in its own process, stepped together"
    )
    num_cpus_per_env_runner: Positive = Field(1, description="CPUs Ray reserves for each env runner")
    num_cpus_for_main_process: Positive = Field(
        2, description="the learner's torch threads; it runs while the runners wait"
    )
    evaluation_num_env_runners: Annotated[int, Field(ge=0)] = Field(
        1, description="processes running evaluation episodes; 0: the algorithm's own"
    )
    num_learners: Annotated[int, Field(ge=0)] = Field(
        0, description="learner actors; 0: learn in the algorithm's process"
    )
    num_gpus_per_learner: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        None, description="GPUs per learner; none: 1 with gpu, else 0"
    )
    ray_address: str | None = Field(
        None, description="join a running Ray cluster ('auto' or HOST:PORT); none: start a local Ray"
    )
    sample_timeout_s: Positive = Field(
        120.0, description="RLlib drops a sample() call that takes longer; fragments are sized to fit well within it"
    )


class EvaluationSettings(_Section):
    interval: AtLeastOne = Field(
        1,
        description="training iterations between evaluations; unset (and the batch unset), the algorithm's: "
        "2 for PPO's CPU preset (an evaluation every 4096 env steps), else 1",
    )
    episodes: AtLeastOne = Field(1, description="episodes per evaluation")
    parallel: bool = Field(
        False,
        description="evaluate beside the next training iteration, not between two (for machines with cores to "
        "spare); each evaluation scores the weights the iteration before it ended with, and those are the best "
        "checkpoint it finds",
    )
    min_env_steps_per_iteration: AtLeastOne | None = Field(
        None,
        description="env steps a training iteration samples at least, so between evaluations; "
        "none: the algorithm's (4096 for APPO, IMPALA, DQN, SAC; a PPO iteration is its train batch)",
    )
    timeout_s: Positive | None = Field(
        None, description="none: an evaluation episode at the env's measured speed (at least 120 s)"
    )
    actions: Literal["auto", "greedy", "sample"] = Field(
        "auto",
        description="how the trained policy acts in evaluations and after: greedy (its most likely green), "
        "sample (drawn from its distribution), or auto: evaluations during training are greedy, then the "
        "best checkpoint runs both ways on unseen seeds and keeps the lower delay (Q-learners: greedy)",
    )


class StopSettings(_Section):
    timesteps: AtLeastOne | None = Field(200_000, description="env-step budget; with minutes given, none unless set")
    minutes: Positive | None = Field(None, description="wall-clock budget")
    # a diff-waiting return telescopes to the final queue: checkpoints are scored on evaluation delay
    metric: ScoreMetric = Field("delay", description="what scores checkpoints and the band")
    min_timesteps: Annotated[int, Field(ge=0)] = Field(50_000, description="no plateau stop before this many env steps")
    window: AtLeastOne = Field(3, description="evaluations averaged into the band's score")
    band: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        0.02, description="a gain below this fraction of the best is no progress"
    )
    patience: AtLeastOne | None = Field(
        10,
        description="evaluations without progress before a plateau stop; none: no plateau stop "
        "(the default when minutes are given)",
    )
    target: Annotated[float, Field(allow_inf_nan=False)] | None = Field(
        None, description="stop once the score reaches it"
    )
    streak: AtLeastOne = Field(3, description="evaluations at the target before stopping")


class CheckpointSettings(_Section):
    every: AtLeastOne = Field(50_000, description="env steps between periodic checkpoints")
    num_to_keep: AtLeastOne | None = Field(3, description="best-scoring checkpoints kept (and always the latest)")


class ExperimentConfig(_Section):
    """One experiment: defaults, types, ranges and help of every setting. `training` holds RLlib's own
    parameter names (e.g. lr, num_epochs); the algorithm's preset fills it (see TRAINING_RANGES)."""

    scenario: str = Field(description="catalog name or path of a scenario YAML")
    algorithm: str = Field("PPO", description="algorithm name")
    policy: str = Field("shared", description="policy layout: shared, independent or central")
    seed: Annotated[int, Field(ge=0, lt=SUMO_SEEDS)] = Field(
        0, description="seeds torch and the SUMO demand of training"
    )
    dataset: str | None = Field(None, description="offline algorithms (CQL, BC, MARWIL): a marlo collect folder")
    env: EnvSettings = Field(default_factory=EnvSettings)
    training: dict[str, Any] = Field(
        default_factory=dict, description="RLlib <Algo>Config.training() parameters over the algorithm's preset"
    )
    model: ModelSettings = Field(default_factory=ModelSettings)
    critic: CriticSettings = Field(default_factory=CriticSettings)
    resources: ResourceSettings = Field(default_factory=ResourceSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    stop: StopSettings = Field(default_factory=StopSettings)
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings)

    def env_config(self) -> dict[str, Any]:
        """What every env runner passes to TrafficSignalEnv (timing fully resolved, so a checkpoint
        knows the decision interval it was trained with)."""
        from marlo_rllib.scenarios import catalog, load_scenario
        from marlo_rllib.scenarios.spec import Timing, validation_message

        spec = load_scenario(self.scenario)
        portable = catalog().get(spec.name) == spec.source  # a catalog name travels with a checkpoint
        env = self.env
        if env.traffic_scenario is not None:
            spec.check_traffic(env.traffic_scenario, "env.traffic_scenario")
        if isinstance(env.demand_scale, list) and env.demand_scale[0] > env.demand_scale[1]:
            raise UserError(f"env.demand_scale: a range is [low, high] with low <= high, got {env.demand_scale}")
        try:
            timing = Timing(**{**spec.timing.model_dump(), **env.timing}).model_dump()
        except ValidationError as exc:
            raise UserError(validation_message("env.timing", exc)) from None
        settings = {
            "scenario": spec.name if portable else str(spec.source),
            "backend": env.backend,
            "observation": env.observation,
            "reward": env.reward,
            "reward_params": env.reward_params,
            "timing": timing,
            "episode_seconds": env.episode_seconds,
            "demand_scale": env.demand_scale,
            "shared_spaces": self.policy != "independent",
            "state_in_infos": self.policy == "central" or None,
            "agent_id": (env.agent_id and self.policy != "independent") or None,
            "seed_base": TRAINING_SEED_BASE * (1 + self.seed),
            "traffic_scenario": env.traffic_scenario,
            # generated scenarios: every evaluation episode runs one training demand (the one benchmarks
            # run by default), so that iterations compare; evaluation-only demands stay unseen
            "evaluation_traffic_scenario": env.traffic_scenario or next(iter(spec.training_traffic), None),
        }
        return {key: value for key, value in settings.items() if value is not None}


TRAINING_SEED_BASE = 100_000  # SUMO seeds below this are never used in training (benchmarks use them)


def describe(path: str) -> str:
    """A setting's help and default, for the command line's help (path: e.g. "stop.timesteps")."""
    model: type[BaseModel] = ExperimentConfig
    *sections, name = path.split(".")
    for section in sections:
        model = _section_of(model.model_fields[section])  # type: ignore[assignment]
    field = model.model_fields[name]
    default = field.get_default(call_default_factory=True)
    shown = {None: "none", False: "off", True: "on"}.get(default, default)
    return f"{field.description} (default {shown})"


def _section_of(field: Any) -> type[_Section] | None:
    annotation = field.annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, _Section) else None


def updated(config: ExperimentConfig, changes: dict[str, Any]) -> ExperimentConfig:
    """A copy with `changes` (a partial experiment) merged in and validated as a whole."""
    return experiment_of(deep_merge(config.model_dump(), changes))


def experiment_of(data: dict[str, Any]) -> ExperimentConfig:
    """The typed experiment of a merged mapping; a wrong type or range is a one-line user error."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(_schema_error(exc.errors()[0])) from None


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `3e-4` as a string; learning rates are written that way, so read it as a float."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def check_keys(
    update: dict[str, Any], source: str, model: type[BaseModel] = ExperimentConfig, prefix: tuple[str, ...] = ()
) -> None:
    """Every key of a partial experiment names a setting: a typo never trains with the default."""
    for key, value in update.items():
        path = (*prefix, key)
        field = model.model_fields.get(key)
        if field is None:
            valid = ", ".join(sorted(model.model_fields)) or "(none)"
            raise UserError(f"{source}: unknown key {'.'.join(path)!r}; valid here: {valid}")
        section = _section_of(field)
        if (section is not None or field.annotation == dict[str, Any]) and not isinstance(value, dict):
            raise UserError(f"{source}: {'.'.join(path)} must be a mapping of settings, got {value!r}")
        if section is not None:
            check_keys(value, source, section, path)


def parse_set(items: list[str]) -> dict[str, Any]:
    """["training.lr=1e-4", "model.fcnet_hiddens=[64,64]"] -> nested dict (values parsed as YAML)."""
    update: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set takes key=value, got {item!r}")
        try:
            value = load_yaml(text) if text.strip() else None
        except yaml.YAMLError:
            raise UserError(f"--set {key}: cannot parse value {text!r}") from None
        node = update
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return update


def read_yaml_file(path: Path, what: str) -> Any:
    """The YAML document at path; an unreadable or malformed file is a user error naming `what`."""
    try:
        return load_yaml(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not a text file") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{what} {path} is not valid YAML: {str(exc).splitlines()[0]}") from None


def read_experiment(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    data = read_yaml_file(path, "experiment")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"experiment {path} must be a mapping of settings")
    return data


def compose(experiment: dict[str, Any], overrides: dict[str, Any]) -> ExperimentConfig:
    """The resolved experiment. `overrides` are the command line's (flags and --set)."""
    from marlo_rllib.algorithms import get_algorithm, resolve_alias, training_keys

    default_algorithm = ExperimentConfig.model_fields["algorithm"].default
    name, policy = resolve_alias(
        _first_given(overrides.get("algorithm"), experiment.get("algorithm"), default_algorithm),
        _first_given(overrides.get("policy"), experiment.get("policy")),
    )
    overrides = {**overrides, "algorithm": name, **({"policy": policy} if policy else {})}
    algorithm = get_algorithm(name)
    overrides = _training_shorthand(overrides, training_keys(algorithm.name))
    check_keys(experiment, "experiment")
    check_keys(overrides, "--set")
    gpu = _first_given((overrides.get("resources") or {}).get("gpu"), (experiment.get("resources") or {}).get("gpu"))
    device = "gpu" if gpu else "cpu"
    preset = algorithm.presets[device]
    for source, update in (("experiment", experiment), ("--set", overrides)):
        for key, value in (update.get("training") or {}).items():
            if key not in training_keys(algorithm.name):
                raise UserError(
                    f"{source}: unknown key 'training.{key}' for {algorithm.name}; "
                    f"see RLlib's {algorithm.name}Config.training()"
                )
            if key in preset:
                _check_type(f"{source}: training.{key}", value, preset[key])
    defaults = {"training": preset, "model": {"fcnet_hiddens": list(algorithm.hidden_layers[device])}}
    merged = deep_merge(deep_merge(defaults, experiment), overrides)
    merged["algorithm"] = algorithm.name
    chosen_stop = {**(experiment.get("stop") or {}), **(overrides.get("stop") or {})}
    if chosen_stop.get("minutes") is not None:
        # the user chose the time: no step default they never chose, and no plateau stop unless
        # asked for (evaluation delay still creeps down after the band calls it flat; grid4x4:
        # 33.6 s at 10 minutes, 30.8 s at 20, docs/LEARNING.md "levers grid4x4 wallclock")
        for key in ("timesteps", "patience"):
            if key not in chosen_stop:
                merged.setdefault("stop", {})[key] = None
    batch_chosen = any("train_batch_size_per_learner" in (u.get("training") or {}) for u in (experiment, overrides))
    if not batch_chosen and not any("interval" in (u.get("evaluation") or {}) for u in (experiment, overrides)):
        # the preset's evaluation cadence goes with the preset's batch; a batch of one's own evaluates every iteration
        merged.setdefault("evaluation", {})["interval"] = algorithm.evaluation_interval[device]
    if algorithm.offline_only and merged.get("dataset"):
        _fill_from_dataset(merged)
    if not merged.get("scenario"):
        raise UserError("no scenario: pass --scenario or set `scenario:` in the experiment YAML")
    config = experiment_of(merged)
    validate(config)
    return config


def _fill_from_dataset(config: dict[str, Any]) -> None:
    """An offline run's scenario and env settings default to its dataset's (check_fits refuses conflicts)."""
    from marlo_rllib.offline.dataset import ENV_KEYS, load_dataset

    info = load_dataset(config["dataset"])
    config["dataset"] = str(info["path"])  # absolute: Ray Data reads it from other processes
    config["scenario"] = config.get("scenario") or info["scenario_source"]
    env = config.setdefault("env", {})
    for key in ENV_KEYS:
        default = EnvSettings.model_fields[key].get_default(call_default_factory=True)
        if env.get(key, default) == default and info["env"].get(key) is not None:
            env[key] = info["env"][key]


def _first_given(*values: Any) -> Any:
    """The first value that is not None: an empty name given on purpose is an error, not a default."""
    return next((value for value in values if value is not None), None)


def _training_shorthand(overrides: dict[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """`--set lr=1e-4` means `--set training.lr=1e-4` when `lr` is no top-level key."""
    moved = {key: value for key, value in overrides.items() if key not in ExperimentConfig.model_fields and key in keys}
    if not moved:
        return overrides
    rest = {key: value for key, value in overrides.items() if key not in moved}
    return deep_merge(rest, {"training": moved})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_schedule(value: Any) -> bool:
    return (
        bool(value)
        and isinstance(value, list)
        and all(isinstance(p, list) and len(p) == 2 and all(_is_number(x) for x in p) for p in value)
    )


def _check_type(name: str, value: Any, preset: Any) -> None:
    """An override must have its preset's type; numbers and [[timestep, value], ...] schedules mix."""
    if isinstance(preset, int) and not isinstance(preset, bool):
        if not isinstance(value, int) or isinstance(value, bool):
            raise UserError(f"{name} must be an integer, got {value!r}")
    elif _is_number(preset) or _is_schedule(preset):
        if not (_is_number(value) or _is_schedule(value)):
            raise UserError(f"{name} must be a number (or a [[timestep, value], ...] schedule), got {value!r}")
    elif isinstance(preset, dict) and not isinstance(value, dict):
        raise UserError(f"{name} must be a mapping, got {value!r}")
    elif isinstance(preset, (bool, str, list)) and not isinstance(value, type(preset)):
        raise UserError(f"{name} must be a {type(preset).__name__}, got {value!r}")


def check_seeds(seeds: list[int]) -> None:
    wrong = [seed for seed in seeds if not 0 <= seed < SUMO_SEEDS]
    if wrong:
        raise UserError(f"SUMO seeds are 0 to {SUMO_SEEDS - 1}, got {wrong[0]}")


# (low, high, low inclusive) for the RLlib training keys every user touches; None: unbounded
TRAINING_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "lr": (0, None, True),
    "gamma": (0, 1, False),
    "lambda_": (0, 1, True),
    "clip_param": (0, None, False),
    "entropy_coeff": (0, None, True),
    "vf_loss_coeff": (0, None, True),
    "grad_clip": (0, None, False),
    "kl_coeff": (0, None, True),
    "tau": (0, 1, False),
    "vtrace_clip_rho_threshold": (0, None, False),
    "num_epochs": (1, None, True),
    "minibatch_size": (1, None, True),
    "train_batch_size_per_learner": (1, None, True),
    "agent_replay_ratio": (0, None, False),
    "training_intensity": (0, None, False),
}


def _check_training(training: dict[str, Any]) -> None:
    for key, (low, high, inclusive) in TRAINING_RANGES.items():
        value: Any = training.get(key)
        if not _is_number(value):
            continue  # absent, None or a schedule
        below = value < low if inclusive else value <= low
        if not math.isfinite(value) or below or (high is not None and value > high):
            span = f"{'[' if inclusive else '('}{low}, {high if high is not None else 'inf'}{']' if high is not None else ')'}"
            raise UserError(f"training.{key} must be in {span}, got {value!r}")


def _schema_error(error: Any) -> str:
    # a union's member tags ("constrained-float", "list[...]") are no part of the user's key
    path = ".".join(str(part) for part in error["loc"] if re.fullmatch(r"\w+", str(part)))
    message = error["msg"].replace("Input should", "must").replace("Value error, ", "")
    return f"{path} {message}, got {error['input']!r}"


def validate(config: ExperimentConfig) -> None:
    """What the types cannot say: the algorithm, policy layout, dataset and model fit together."""
    from marlo_rllib.algorithms import ALGORITHMS, check_combination, get_algorithm
    from marlo_rllib.scenarios import load_scenario

    _check_training(config.training)
    algorithm = get_algorithm(config.algorithm)
    check_combination(algorithm, config.policy)
    offline = [name for name in ALGORITHMS if get_algorithm(name).offline_only]
    if algorithm.offline_only and not config.dataset:
        raise UserError(f"--algo {algorithm.name} learns offline: pass --dataset DIR (record one with marlo collect)")
    if config.dataset and not algorithm.offline_only:
        raise UserError(
            f"--dataset is for the offline algorithms ({', '.join(offline)}); {algorithm.name} learns on SUMO"
        )
    if config.model.encoder == "phase" and (algorithm.name, config.policy) != ("PPO", "shared"):
        raise UserError(
            f"model.encoder phase is a shared PPO policy; this run is {algorithm.name} with policy {config.policy!r}"
        )
    if (
        config.model.encoder == "phase"
        and (config.env.observation or load_scenario(config.scenario).observation) != "phase"
    ):
        raise UserError("model.encoder phase scores greens from env.observation phase; add --set env.observation=phase")
    if config.critic.input == "pooled" and not config.critic.sharing:
        raise UserError("critic.input pooled is one critic shared by all junctions; drop critic.sharing=false")
    stop, resources = config.stop, config.resources
    if config.policy == "central" and resources.num_learners > 1:
        # With 2+ learners RLlib shards the episodes by slicing them, and MultiAgentEpisode.slice
        # drops the infos, where the critic's global state travels (KeyError 'state').
        raise UserError("--policy central trains on at most 1 learner (resources.num_learners 0 or 1)")
    if stop.timesteps is None and stop.minutes is None:
        raise UserError("stop needs timesteps or minutes: a budget to train for")
    if config.evaluation.parallel and not resources.evaluation_num_env_runners:
        raise UserError("evaluation.parallel needs an evaluation process; set resources.evaluation_num_env_runners=1")
    if resources.num_gpus_per_learner and not resources.gpu:
        raise UserError(f"num_gpus_per_learner above 0 needs --gpu; got {resources.num_gpus_per_learner!r}")
