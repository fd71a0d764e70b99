"""Algorithms by name. Each module's SPEC (spec.AlgorithmSpec) says what it can do, ships CPU and
GPU presets of RLlib `training()` parameters, and names its RLlib config class and the module a
shared policy uses."""

from __future__ import annotations

import importlib
import inspect
from functools import cache

from marlo_rllib.algorithms.spec import AlgorithmSpec
from marlo_rllib.errors import UserError
from marlo_rllib.layout import POLICY_LAYOUTS

ALGORITHMS = {
    name: f"marlo_rllib.algorithms.{name.lower()}"
    for name in ("PPO", "APPO", "IMPALA", "DQN", "SAC", "CQL", "BC", "MARWIL")
}
ALIASES = {"MAPPO": ("PPO", "central")}  # name: (algorithm, policy layout)
OFFLINE_TRAINING_KEYS = frozenset({"dataset_num_iters_per_learner"})  # RLlib's offline_data() setting, under `training`
# marlo's own: agent transitions trained per agent transition sampled, for replay algorithms. RLlib's
# training_intensity counts env steps, and a shared module takes one transition per junction per env
# step; build_config converts (an explicit training_intensity wins).
REPLAY_RATIO = "agent_replay_ratio"
# marlo's own, PPO: standardise GAE advantages per junction instead of over the module's batch
# (training/advantages.py); build_config turns it into the learner class.
ADVANTAGES_PER_JUNCTION = "advantages_per_junction"
# marlo's own, IMPALA: standardise V-trace's policy-gradient advantages over each minibatch
# (training/advantages.py); build_config turns it into the learner class.
STANDARDISE_ADVANTAGES = "standardise_advantages"


def get_algorithm(name: str) -> AlgorithmSpec:
    key = str(name).upper()
    if key not in ALGORITHMS:
        raise UserError(f"unknown algorithm {name!r}; valid: {', '.join([*ALGORITHMS, *ALIASES])}")
    return importlib.import_module(ALGORITHMS[key]).SPEC


def resolve_alias(name: str, policy: str | None) -> tuple[str, str | None]:
    """--algo MAPPO means --algo PPO --policy central."""
    if str(name).upper() not in ALIASES:
        return name, policy
    algorithm, layout = ALIASES[str(name).upper()]
    if policy not in (None, layout):
        raise UserError(f"--algo {name} is {algorithm} with --policy {layout}; drop --policy {policy}")
    return algorithm, layout


def check_combination(algorithm: AlgorithmSpec, policy: str) -> None:
    """Refuses a policy layout the algorithm cannot train."""
    if policy not in POLICY_LAYOUTS:
        raise UserError(f"unknown policy layout {policy!r}; valid: {', '.join(POLICY_LAYOUTS)}")
    if algorithm.offline_only and policy != "shared":
        raise UserError(
            f"--algo {algorithm.name} --policy {policy}: offline algorithms train one shared policy "
            "from every junction's transitions; use --policy shared"
        )
    if policy == "central" and not algorithm.centralized_critic:
        able = [name for name in ALGORITHMS if get_algorithm(name).centralized_critic]
        raise UserError(
            f"--algo {algorithm.name} --policy central: {algorithm.name} has no centralized critic; "
            + (f"use --algo {' or '.join(able)}" if able else "no algorithm has one yet")
        )


def check_masking(algorithm: AlgorithmSpec, policy: str, scenario: str, padded: bool) -> None:
    """A shared policy on junctions with different green counts needs padded greens masked."""
    if padded and policy != "independent" and not algorithm.action_masking:
        raise UserError(
            f"--algo {algorithm.name} --policy {policy} on {scenario}: its junctions have different "
            f"green counts and {algorithm.name} cannot mask padded greens; use --policy independent"
        )


@cache
def training_keys(name: str) -> frozenset[str]:
    """The parameter names RLlib's <Algo>Config.training() accepts, its base classes' included."""
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    algorithm = get_algorithm(name)
    names: set[str] = set(OFFLINE_TRAINING_KEYS) if algorithm.offline_only else set()
    for config_class in algorithm.config_class().__mro__:
        if issubclass(config_class, AlgorithmConfig) and "training" in vars(config_class):
            names |= {
                p.name
                for p in inspect.signature(config_class.training).parameters.values()
                if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
            }
    if "training_intensity" in names and not algorithm.offline_only:
        names.add(REPLAY_RATIO)
    if algorithm.name == "PPO":
        names.add(ADVANTAGES_PER_JUNCTION)
    if algorithm.name == "IMPALA":
        names.add(STANDARDISE_ADVANTAGES)
    return frozenset(names - {"self"})
