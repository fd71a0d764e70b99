"""Experiment configuration: defaults < algorithm preset < experiment YAML < command line.

An experiment is a nested dict whose shape is fixed by DEFAULTS; the algorithm module adds its
preset (CPU or GPU) and names the keys it accepts under `training` (RLlib's own parameter
names, e.g. `training.lr`, `training.num_epochs`). Any key outside that shape is a user error,
so a typo in `--set` or in a YAML never trains silently with the default.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

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
        "backend": "libsumo",
    },
    "training": {},  # the algorithm preset fills it
    "model": {"fcnet_hiddens": [256, 256], "fcnet_activation": "tanh"},
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
        # checkpoints are scored on evaluation delay; diff-waiting-time's return telescopes to the final queue
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
FREE_FORM = {("env", "timing"), ("env", "reward_params")}


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

    name, policy = resolve_alias(overrides.get("algorithm") or experiment.get("algorithm") or DEFAULTS["algorithm"],
                                 overrides.get("policy") or experiment.get("policy"))  # fmt: skip
    overrides = {**overrides, "algorithm": name, **({"policy": policy} if policy else {})}
    algorithm = get_algorithm(name)
    overrides = _training_shorthand(overrides, training_keys(algorithm.NAME))
    check_keys(experiment, {**DEFAULTS, "training": None}, "experiment")
    check_keys(overrides, {**DEFAULTS, "training": None}, "--set")
    chosen = deep_merge(deep_merge(DEFAULTS, experiment), overrides)
    preset = algorithm.PRESETS["gpu" if chosen["resources"]["gpu"] else "cpu"]
    base = deep_merge(DEFAULTS, {"training": preset})
    for source, update in (("experiment", experiment), ("--set", overrides)):
        for key, value in (update.get("training") or {}).items():
            if key not in training_keys(algorithm.NAME):
                raise UserError(f"{source}: unknown key 'training.{key}' for {algorithm.NAME}; "
                                f"see RLlib's {algorithm.NAME}Config.training()")  # fmt: skip
            if key in preset:
                _check_type(f"{source}: training.{key}", value, preset[key])
    config = deep_merge(deep_merge(base, experiment), overrides)
    config["algorithm"] = algorithm.NAME
    chosen_stop = {**(experiment.get("stop") or {}), **(overrides.get("stop") or {})}
    if chosen_stop.get("minutes") is not None and "timesteps" not in chosen_stop:
        config["stop"]["timesteps"] = None  # a wall-clock budget alone: no step default the user never chose
    if config["dataset"] and algorithm.OFFLINE_ONLY:
        from marlo_rllib.offline.dataset import fill_from_dataset

        fill_from_dataset(config)
    validate(config)
    return config


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
    return bool(value) and isinstance(value, list) and all(
        isinstance(p, list) and len(p) == 2 and all(_is_number(x) for x in p) for p in value)  # fmt: skip


def _check_type(name: str, value: Any, preset: Any) -> None:
    """An override must have its preset's type; numbers and [[timestep, value], ...] schedules mix."""
    if _is_number(preset) or _is_schedule(preset):
        if not (_is_number(value) or _is_schedule(value)):
            raise UserError(f"{name} must be a number (or a [[timestep, value], ...] schedule), got {value!r}")
    elif isinstance(preset, dict) and not isinstance(value, dict):
        raise UserError(f"{name} must be a mapping, got {value!r}")
    elif isinstance(preset, (bool, str, list)) and not isinstance(value, type(preset)):
        raise UserError(f"{name} must be a {type(preset).__name__}, got {value!r}")


def validate(config: dict[str, Any]) -> None:
    from marlo_rllib.algorithms import ALGORITHMS, check_combination, get_algorithm

    if not config["scenario"]:
        raise UserError("no scenario: pass --scenario or set `scenario:` in the experiment YAML")
    algorithm = get_algorithm(config["algorithm"])
    check_combination(algorithm, config["policy"])
    offline = [name for name in ALGORITHMS if get_algorithm(name).OFFLINE_ONLY]
    if algorithm.OFFLINE_ONLY and not config["dataset"]:
        raise UserError(f"--algo {algorithm.NAME} learns offline: pass --dataset DIR (record one with marlo collect)")
    if config["dataset"] and not algorithm.OFFLINE_ONLY:
        raise UserError(f"--dataset is for the offline algorithms ({', '.join(offline)}); {algorithm.NAME} learns on SUMO")
    stop, resources = config["stop"], config["resources"]
    if stop["metric"] not in ("return", "delay"):
        raise UserError(f"stop.metric must be 'return' or 'delay', got {stop['metric']!r}")
    for key in ("timesteps", "window", "patience", "streak"):
        if key == "timesteps" and stop[key] is None and stop["minutes"] is not None:
            continue
        if not isinstance(stop[key], int) or stop[key] < 1:
            raise UserError(f"stop.{key} must be a positive integer, got {stop[key]!r}")
    if stop["minutes"] is not None and (not _is_number(stop["minutes"]) or not stop["minutes"] > 0):
        raise UserError(f"stop.minutes must be a positive number, got {stop['minutes']!r}")
    if not isinstance(config["checkpoint"]["every"], int) or config["checkpoint"]["every"] < 1:
        raise UserError(f"checkpoint every must be a positive number of env steps, got {config['checkpoint']['every']!r}")
    if not isinstance(resources["num_env_runners"], int) or resources["num_env_runners"] < 1:
        raise UserError("num_env_runners must be at least 1: SUMO runs in the env runners, one per process")
    if not isinstance(resources["num_learners"], int) or resources["num_learners"] < 0:
        raise UserError(f"num_learners must be 0 or more, got {resources['num_learners']!r}")
    gpus = resources["num_gpus_per_learner"]
    if gpus is not None and (not _is_number(gpus) or gpus < 0 or (gpus > 0 and not resources["gpu"])):
        raise UserError(f"num_gpus_per_learner must be a number >= 0, and above 0 only with --gpu; got {gpus!r}")
    if not isinstance(config["evaluation"]["interval"], int) or config["evaluation"]["interval"] < 1:
        raise UserError(f"evaluation.interval must be a positive integer, got {config['evaluation']['interval']!r}")
    for key, value, optional in (("resources.sample_timeout_s", resources["sample_timeout_s"], False),
                                 ("evaluation.timeout_s", config["evaluation"]["timeout_s"], True)):  # fmt: skip
        if not (optional and value is None) and (not _is_number(value) or not value > 0):
            raise UserError(f"{key} must be a positive number of seconds, got {value!r}")
