"""Experiment configuration: defaults < algorithm preset < experiment YAML < command line.

An experiment is a nested dict whose shape is fixed by DEFAULTS; the algorithm module adds its
preset (CPU or GPU) and names the keys it accepts under `training` (RLlib's own parameter
names, e.g. `training.lr`, `training.num_epochs`). Any key outside that shape is a user error,
so a typo in `--set` or in a YAML never trains silently with the default.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from marlo_rllib.errors import UserError

DEFAULTS: dict[str, Any] = {
    "scenario": None,
    "algorithm": "PPO",
    "policy": "shared",
    "seed": 0,
    "dataset": None,  # offline algorithms (CQL, BC, MARWIL): a `marlo collect` folder
    "env": {
        "observation": None,  # the scenario's
        "reward": None,  # the scenario's
        "reward_params": None,
        "timing": {},  # overrides of delta_time, yellow_time, min_green, max_green
        "episode_seconds": None,
        "demand_scale": 1.0,
        "traffic_scenario": None,  # a generated scenario's demand by name: train and evaluate on it alone
        "backend": "libsumo",
        "agent_id": True,  # a shared policy's observations end with the junction's one-hot (not with --policy independent)
    },
    "training": {},  # the algorithm preset fills it
    # encoder "phase": one network scores every green from what it serves (models/phase.py; PPO, shared)
    "model": {"fcnet_hiddens": [256, 256], "fcnet_activation": "tanh", "encoder": "mlp"},
    "critic": {"sharing": True},  # --policy central: one critic for all junctions (plus a one-hot), or one each
    "resources": {
        "gpu": False,
        "num_env_runners": 2,
        "num_cpus_per_env_runner": 1,
        "num_cpus_for_main_process": 2,  # the learner's torch threads; it runs while the runners wait
        "evaluation_num_env_runners": 1,
        "num_learners": 0,  # 0: the learner runs in the algorithm's own process
        "num_gpus_per_learner": None,  # None: 1 with gpu, else 0
        "ray_address": None,  # None: start a local Ray; "auto" or HOST:PORT joins a running cluster
        # RLlib drops a sample() call that takes longer; fragments are sized to fit well within it
        "sample_timeout_s": 120.0,
    },
    # timeout_s: None sizes it to an evaluation episode at the env's measured speed (at least 120 s)
    "evaluation": {"interval": 1, "episodes": 1, "timeout_s": None},
    "stop": {
        "timesteps": 200_000,  # env steps; with only `minutes` given, no step budget
        "minutes": None,  # wall-clock budget
        # checkpoints are scored on evaluation delay; a diff-waiting return telescopes to the final queue
        "metric": "delay",  # or "return"
        "min_timesteps": 50_000,
        "window": 3,
        "band": 0.02,
        "patience": 10,
        "target": None,
        "streak": 3,
    },
    "checkpoint": {"every": 50_000, "num_to_keep": 3},
}


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `3e-4` as a string; learning rates are written that way, so read it as a float."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


# Sections whose keys are free-form (validated by the code that consumes them).
FREE_FORM = {("training",), ("env", "timing"), ("env", "reward_params")}


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def check_keys(update: dict[str, Any], shape: dict[str, Any], source: str, prefix: tuple[str, ...] = ()) -> None:
    for key, value in update.items():
        path = (*prefix, key)
        if key not in shape:
            valid = ", ".join(sorted(shape)) or "(none)"
            raise UserError(f"{source}: unknown key {'.'.join(path)!r}; valid here: {valid}")
        if isinstance(shape[key], dict) and not isinstance(value, dict):
            raise UserError(f"{source}: {'.'.join(path)} must be a mapping of settings, got {value!r}")
        if isinstance(value, dict) and isinstance(shape[key], dict) and path not in FREE_FORM:
            check_keys(value, shape[key], source, path)


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


def compose(experiment: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The resolved experiment. `overrides` are the command line's (flags and --set)."""
    from marlo_rllib.algorithms import get_algorithm, resolve_alias, training_keys

    name, policy = resolve_alias(
        _first_given(overrides.get("algorithm"), experiment.get("algorithm"), DEFAULTS["algorithm"]),
        _first_given(overrides.get("policy"), experiment.get("policy")),
    )
    overrides = {**overrides, "algorithm": name, **({"policy": policy} if policy else {})}
    algorithm = get_algorithm(name)
    overrides = _training_shorthand(overrides, training_keys(algorithm.NAME))
    check_keys(experiment, DEFAULTS, "experiment")
    check_keys(overrides, DEFAULTS, "--set")
    chosen = deep_merge(deep_merge(DEFAULTS, experiment), overrides)
    preset = algorithm.PRESETS["gpu" if chosen["resources"]["gpu"] else "cpu"]
    base = deep_merge(DEFAULTS, {"training": preset})
    for source, update in (("experiment", experiment), ("--set", overrides)):
        for key, value in (update.get("training") or {}).items():
            if key not in training_keys(algorithm.NAME):
                raise UserError(
                    f"{source}: unknown key 'training.{key}' for {algorithm.NAME}; "
                    f"see RLlib's {algorithm.NAME}Config.training()"
                )
            if key in preset:
                _check_type(f"{source}: training.{key}", value, preset[key])
    config = deep_merge(deep_merge(base, experiment), overrides)
    config["algorithm"] = algorithm.NAME
    chosen_stop = {**(experiment.get("stop") or {}), **(overrides.get("stop") or {})}
    if chosen_stop.get("minutes") is not None and "timesteps" not in chosen_stop:
        config["stop"]["timesteps"] = None  # a wall-clock budget alone: no step default the user never chose
    if config["dataset"] and algorithm.OFFLINE_ONLY:
        _fill_from_dataset(config)
    validate(config)
    return config


def _fill_from_dataset(config: dict[str, Any]) -> None:
    """An offline run's scenario and env settings default to its dataset's (check_fits refuses conflicts)."""
    from marlo_rllib.offline.dataset import ENV_KEYS, load_dataset

    info = load_dataset(config["dataset"])
    config["dataset"] = info["path"]  # absolute: Ray Data reads it from other processes
    config["scenario"] = config["scenario"] or info["scenario_source"]
    for key in ENV_KEYS:
        if config["env"][key] == DEFAULTS["env"][key] and info["env"].get(key) is not None:
            config["env"][key] = info["env"][key]


def _first_given(*values: Any) -> Any:
    """The first value that is not None: an empty name given on purpose is an error, not a default."""
    return next((value for value in values if value is not None), None)


def _training_shorthand(overrides: dict[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """`--set lr=1e-4` means `--set training.lr=1e-4` when `lr` is no top-level key."""
    moved = {key: value for key, value in overrides.items() if key not in DEFAULTS and key in keys}
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


Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
AtLeastOne = Annotated[int, Field(ge=1)]
SUMO_SEEDS = 2**31  # SUMO's --seed is a C int


def check_seeds(seeds: list[int]) -> None:
    wrong = [seed for seed in seeds if not 0 <= seed < SUMO_SEEDS]
    if wrong:
        raise UserError(f"SUMO seeds are 0 to {SUMO_SEEDS - 1}, got {wrong[0]}")


class _Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Env(_Section):
    observation: str | None
    reward: str | None
    reward_params: dict[str, Any] | None
    timing: dict[str, Any]
    episode_seconds: AtLeastOne | None
    demand_scale: Positive
    traffic_scenario: str | None
    backend: str
    agent_id: bool


class _Model(_Section):
    fcnet_hiddens: Annotated[list[AtLeastOne], Field(min_length=1)]
    fcnet_activation: Literal["tanh", "relu", "silu"]
    encoder: Literal["mlp", "phase"]


class _Critic(_Section):
    sharing: bool


class _Resources(_Section):
    gpu: bool
    num_env_runners: AtLeastOne
    num_cpus_per_env_runner: Positive
    num_cpus_for_main_process: Positive
    evaluation_num_env_runners: Annotated[int, Field(ge=0)]
    num_learners: Annotated[int, Field(ge=0)]
    num_gpus_per_learner: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None
    ray_address: str | None
    sample_timeout_s: Positive


class _Evaluation(_Section):
    interval: AtLeastOne
    episodes: AtLeastOne
    timeout_s: Positive | None


class _Stop(_Section):
    timesteps: AtLeastOne | None
    minutes: Positive | None
    metric: Literal["return", "delay"]
    min_timesteps: Annotated[int, Field(ge=0)]
    window: AtLeastOne
    band: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    patience: AtLeastOne
    target: Annotated[float, Field(allow_inf_nan=False)] | None
    streak: AtLeastOne


class _Checkpoint(_Section):
    every: AtLeastOne
    num_to_keep: AtLeastOne | None


class _Experiment(_Section):
    """Types and ranges of every setting but `training` (RLlib's own keys; see TRAINING_RANGES)."""

    scenario: str
    algorithm: str
    policy: str
    seed: Annotated[int, Field(ge=0, lt=SUMO_SEEDS)]
    dataset: str | None
    env: _Env
    training: dict[str, Any]
    model: _Model
    critic: _Critic
    resources: _Resources
    evaluation: _Evaluation
    stop: _Stop
    checkpoint: _Checkpoint


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
    path = ".".join(str(part) for part in error["loc"])
    message = error["msg"].replace("Input should", "must").replace("Value error, ", "")
    return f"{path} {message}, got {error['input']!r}"


def validate(config: dict[str, Any]) -> None:
    from marlo_rllib.algorithms import ALGORITHMS, check_combination, get_algorithm

    if not config["scenario"]:
        raise UserError("no scenario: pass --scenario or set `scenario:` in the experiment YAML")
    try:
        _Experiment.model_validate(config)
    except ValidationError as exc:
        raise UserError(_schema_error(exc.errors()[0])) from None
    _check_training(config["training"])
    algorithm = get_algorithm(config["algorithm"])
    check_combination(algorithm, config["policy"])
    offline = [name for name in ALGORITHMS if get_algorithm(name).OFFLINE_ONLY]
    if algorithm.OFFLINE_ONLY and not config["dataset"]:
        raise UserError(f"--algo {algorithm.NAME} learns offline: pass --dataset DIR (record one with marlo collect)")
    if config["dataset"] and not algorithm.OFFLINE_ONLY:
        raise UserError(
            f"--dataset is for the offline algorithms ({', '.join(offline)}); {algorithm.NAME} learns on SUMO"
        )
    if config["model"]["encoder"] == "phase" and (algorithm.NAME, config["policy"]) != ("PPO", "shared"):
        raise UserError(
            f"model.encoder phase is a shared PPO policy; this run is {algorithm.NAME} with policy {config['policy']!r}"
        )
    if config["model"]["encoder"] == "phase" and config["env"]["observation"] != "phase":
        raise UserError("model.encoder phase scores greens from env.observation phase; add --set env.observation=phase")
    stop, resources = config["stop"], config["resources"]
    if stop["timesteps"] is None and stop["minutes"] is None:
        raise UserError("stop needs timesteps or minutes: a budget to train for")
    if resources["num_gpus_per_learner"] and not resources["gpu"]:
        raise UserError(f"num_gpus_per_learner above 0 needs --gpu; got {resources['num_gpus_per_learner']!r}")


TRAINING_SEED_BASE = 100_000  # SUMO seeds below this are never used in training (benchmarks use them)


def env_config_of(config: dict[str, Any]) -> dict[str, Any]:
    """What every env runner passes to TrafficSignalEnv (timing fully resolved, so a checkpoint
    knows the decision interval it was trained with)."""
    from pydantic import ValidationError

    from marlo_rllib.env.traffic_signal_env import Timing
    from marlo_rllib.scenarios import catalog, load_scenario
    from marlo_rllib.scenarios.spec import validation_message

    spec = load_scenario(config["scenario"])
    portable = catalog().get(spec.name) == spec.source  # a catalog name travels with a checkpoint
    env = config["env"]
    if env["traffic_scenario"] is not None:
        spec.check_traffic(env["traffic_scenario"], "env.traffic_scenario")
    try:
        timing = Timing(**{**spec.timing.model_dump(), **(env["timing"] or {})}).model_dump()
    except ValidationError as exc:
        raise UserError(validation_message("env.timing", exc)) from None
    settings = {
        "scenario": spec.name if portable else str(spec.source),
        "backend": env["backend"],
        "observation": env["observation"],
        "reward": env["reward"],
        "reward_params": env["reward_params"],
        "timing": timing,
        "episode_seconds": env["episode_seconds"],
        "demand_scale": env["demand_scale"],
        "shared_spaces": config["policy"] != "independent",
        "state_in_infos": config["policy"] == "central" or None,
        "agent_id": (env["agent_id"] and config["policy"] != "independent") or None,
        "seed_base": TRAINING_SEED_BASE * (1 + int(config["seed"])),
        "traffic_scenario": env["traffic_scenario"],
        # generated scenarios: evaluate on the held-out demand, if the scenario marks one
        "evaluation_traffic_scenario": env["traffic_scenario"] or next(iter(spec.evaluation_traffic), None),
    }
    return {key: value for key, value in settings.items() if value is not None}
