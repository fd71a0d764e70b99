"""Algorithms by name. Each module says what it can do (ON_POLICY, DISCRETE_ACTIONS, OFFLINE_ONLY,
CENTRALIZED_CRITIC, ACTION_MASKING), ships CPU and GPU PRESETS of RLlib `training()` parameters,
and names its RLlib config class and the module a shared policy uses."""

from __future__ import annotations

import importlib
import inspect
from functools import cache
from types import ModuleType

from marlo_rllib.errors import UserError
from marlo_rllib.layout import POLICY_LAYOUTS

ALGORITHMS = {
    name: f"marlo_rllib.algorithms.{name.lower()}"
    for name in ("PPO", "APPO", "IMPALA", "DQN", "SAC", "CQL", "BC", "MARWIL")
}
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
