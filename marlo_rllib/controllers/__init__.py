"""Controllers by name: the baselines, and `ckpt:PATH` for a trained policy."""

from __future__ import annotations

import re

from marlo_rllib.controllers.base import Controller
from marlo_rllib.controllers.baselines import BASELINES
from marlo_rllib.errors import UserError

__all__ = ["BASELINES", "Controller", "controller_label", "make_controller"]


def make_controller(name: str) -> Controller:
    """A baseline by name, or `ckpt:PATH` for a trained policy (a checkpoint or a run directory)."""
    if name.startswith("ckpt:"):
        from marlo_rllib.controllers.policy import load_controller

        return load_controller(name.removeprefix("ckpt:"), name=name)
    if name not in BASELINES:
        raise UserError(f"unknown controller {name!r}; valid: {', '.join(BASELINES)}, ckpt:PATH")
    return BASELINES[name]()


def controller_label(name: str) -> str:
    """A file-name-safe controller name: ckpt:checkpoints/PPO_grid4x4 -> PPO_grid4x4."""
    if name.startswith("ckpt:"):
        name = name.removeprefix("ckpt:").rstrip("/").split("/")[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
