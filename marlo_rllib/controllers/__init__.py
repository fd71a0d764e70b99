"""Controllers by name: the baselines, and `ckpt:PATH` for a trained policy (`ckpt-greedy:PATH`,
`ckpt-sample:PATH` to override how it acts)."""

from __future__ import annotations

import re

from marlo_rllib.controllers.base import Controller
from marlo_rllib.controllers.baselines import BASELINES
from marlo_rllib.errors import UserError

__all__ = ["BASELINES", "Controller", "controller_label", "make_controller", "policy_path"]


# a trained policy: ckpt: acts as its run chose (see controllers/policy.py); the others force a way
POLICY_PREFIXES = {"ckpt:": None, "ckpt-greedy:": "greedy", "ckpt-sample:": "sample"}


def policy_path(name: str) -> tuple[str, str | None] | None:
    """(PATH, forced actions) of a trained-policy controller name, None for a baseline."""
    for prefix, actions in POLICY_PREFIXES.items():
        if name.startswith(prefix):
            return name.removeprefix(prefix), actions
    return None


def make_controller(name: str) -> Controller:
    """A baseline by name, or `ckpt:PATH` for a trained policy (a checkpoint or a run directory)."""
    policy = policy_path(name)
    if policy:
        from marlo_rllib.controllers.policy import load_controller

        return load_controller(policy[0], name=name, actions=policy[1])
    if name not in BASELINES:
        raise UserError(
            f"unknown controller {name!r}; valid: {', '.join(BASELINES)}, ckpt:PATH, ckpt-greedy:PATH, ckpt-sample:PATH"
        )
    return BASELINES[name]()


def controller_label(name: str) -> str:
    """A file-name-safe controller name: ckpt:checkpoints/PPO_grid4x4 -> PPO_grid4x4,
    ckpt-sample:checkpoints/PPO_grid4x4 -> PPO_grid4x4-sample."""
    policy = policy_path(name)
    if policy:
        path, actions = policy
        name = path.rstrip("/").split("/")[-1] + (f"-{actions}" if actions else "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
