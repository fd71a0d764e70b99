"""Hyperparameter search spaces in YAML, translated into Ray Tune's search-space API.

# experiments/search/ppo.yaml: marlo setting -> one distribution
training.lr: {loguniform: [1.0e-5, 1.0e-3]}
training.minibatch_size: {choice: [256, 512, 1024]}
training.num_epochs: {grid: [4, 8]}
training.entropy_coeff: {uniform: [0.0, 0.02]}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marlo_rllib.config import read_yaml_file
from marlo_rllib.errors import UserError

KINDS = ("uniform", "loguniform", "choice", "grid")


def read_search(path: str | Path) -> dict[str, tuple[str, list[Any]]]:
    """{dotted key: (kind, values)}, checked: one known kind per key, bounds as numbers."""
    path = Path(path)
    data = read_yaml_file(path, "search space")
    if not isinstance(data, dict) or not data:
        raise UserError(
            f"search space {path} must map settings to distributions, e.g. training.lr: {{loguniform: [1e-5, 1e-3]}}"
        )
    space = {}
    for key, spec in data.items():
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
            raise UserError(f"search space {path}: {key}: give exactly one of {', '.join(KINDS)}, got {spec!r}")
        kind, values = next(iter(spec.items()))
        if not isinstance(values, list) or not values:
            raise UserError(f"search space {path}: {key}.{kind} needs a list of values, got {values!r}")
        if kind in ("uniform", "loguniform"):
            numbers = len(values) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            if not numbers or values[0] >= values[1] or (kind == "loguniform" and values[0] <= 0):
                raise UserError(
                    f"search space {path}: {key}.{kind} needs [low, high] with low < high"
                    f"{' and low > 0' if kind == 'loguniform' else ''}, got {values!r}"
                )
        space[str(key)] = (kind, values)
    return space


def nested(space: dict[str, Any]) -> dict[str, Any]:
    """{"training.lr": x} -> {"training": {"lr": x}}."""
    tree: dict[str, Any] = {}
    for key, value in space.items():
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def tune_domain(kind: str, values: list[Any]) -> Any:
    from ray import tune

    if kind == "uniform":
        return tune.uniform(*values)
    if kind == "loguniform":
        return tune.loguniform(*values)
    if kind == "choice":
        return tune.choice(values)
    return tune.grid_search(values)
