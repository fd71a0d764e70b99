"""A trained policy as a Controller: torch and the RLModule only, no Ray cluster.

    controller = load_controller("checkpoints/PPO_grid4x4_20261121-080000")  # its best checkpoint
    env = TrafficSignalEnv("grid4x4", **controller.env_options)

The checkpoint is a plain RLlib Algorithm checkpoint; the env settings it was trained with
(observation, decision timing, padded spaces) come from the AlgorithmConfig stored inside it.

Actions are greedy (the most likely, or highest-Q, valid green of each junction) or sampled from
the policy's distribution, seeded by the episode's seed. Which one: what `marlo train` chose for
the checkpoint (evaluation.actions; auto writes its choice into the best checkpoint, ACTIONS_FILE),
else how training evaluated it; Q-learners are always greedy.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from marlo_rllib.controllers.base import Controller
from marlo_rllib.errors import UserError
from marlo_rllib.layout import SHARED_MODULE
from marlo_rllib.run_dir import RL_MODULE_PATH, resolve_checkpoint

ACTIONS_FILE = "marlo_actions.json"  # in a checkpoint: {"actions": "greedy" | "sample", ...}


def saved_config(checkpoint: Path) -> dict[str, Any]:
    """The AlgorithmConfig saved in an Algorithm checkpoint, as a dict."""
    with (checkpoint / "class_and_ctor_args.pkl").open("rb") as stream:
        saved = pickle.load(stream)
    config = saved["ctor_args_and_kwargs"][0][0]  # an AlgorithmConfig, or its dict when Tune built it
    return config if isinstance(config, dict) else config.to_dict()


def checkpoint_actions(checkpoint: Path, config: dict[str, Any]) -> str:
    """How the checkpoint acts unless told: its run's choice, else as training evaluated it."""
    chosen = checkpoint / ACTIONS_FILE
    if chosen.is_file():
        return str(json.loads(chosen.read_text())["actions"])
    explore = (config.get("evaluation_config") or {}).get("explore")
    return "sample" if explore else "greedy"


def load_modules(checkpoint: Path) -> Any:
    import logging

    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule

    # RLlib's own checkpoint code logs deprecation notices that are not the user's business
    deprecations = logging.getLogger("ray._common.deprecation")
    level = deprecations.level
    deprecations.setLevel(logging.ERROR)
    try:
        return MultiRLModule.from_checkpoint(str(checkpoint / RL_MODULE_PATH))
    finally:
        deprecations.setLevel(level)


class PolicyController(Controller):
    def __init__(
        self,
        checkpoint: Path,
        modules: Any,
        env_config: dict[str, Any],
        name: str | None = None,
        actions: str = "greedy",
    ) -> None:
        import torch

        # A small MLP on a few dozen rows: one thread is fastest, and parallel episodes share the cores.
        torch.set_num_threads(1)
        self.checkpoint = checkpoint
        self.name = name or f"ckpt:{checkpoint}"
        self.actions = actions
        self.generator = torch.Generator()
        self.modules = modules
        self.shared = SHARED_MODULE in modules.keys()
        self.env_options = {
            "shared_spaces": bool(env_config.get("shared_spaces", self.shared)),
            "observation": env_config.get("observation"),
            "timing": env_config.get("timing") or {},
            "agent_id": bool(env_config.get("agent_id")),
        }

    def module_id(self, agent: str) -> str:
        return SHARED_MODULE if self.shared else agent

    def reset(self, env, seed=None):
        super().reset(env)
        self.generator.manual_seed(0 if seed is None else seed)
        for agent in env.possible_agents:
            module_id = self.module_id(agent)
            if module_id not in self.modules.keys():
                raise UserError(
                    f"checkpoint {self.checkpoint} has no policy for junction {agent!r} of "
                    f"{env.spec.name} (it has: {', '.join(sorted(self.modules.keys()))})"
                )
            module = self.modules[module_id]
            for kind, want, have in (
                ("observation", module.observation_space, env.observation_space(agent)),
                ("action", module.action_space, env.action_space(agent)),
            ):
                if want != have:
                    raise UserError(
                        f"checkpoint {self.checkpoint} does not fit {env.spec.name}: junction {agent} "
                        f"has {kind} space {have}, the policy expects {want}"
                    )

    def act(self, observations, infos):
        import torch
        from ray.rllib.core.columns import Columns

        by_module: dict[str, list[str]] = {}
        for agent in observations:
            by_module.setdefault(self.module_id(agent), []).append(agent)
        actions = {}
        with torch.no_grad():
            for module_id, agents in by_module.items():
                first = observations[agents[0]]
                if isinstance(first, dict):
                    batch = {k: torch.as_tensor(np.stack([observations[a][k] for a in agents])) for k in first}
                else:
                    batch = torch.as_tensor(np.stack([observations[a] for a in agents]))
                outputs = self.modules[module_id].forward_inference({Columns.OBS: batch})
                if Columns.ACTIONS in outputs:  # Q-learners pick their (masked) argmax themselves
                    chosen = outputs[Columns.ACTIONS]
                elif self.actions == "sample":  # padded greens have probability 0
                    probabilities = torch.softmax(outputs[Columns.ACTION_DIST_INPUTS], dim=-1)
                    chosen = torch.multinomial(probabilities, 1, generator=self.generator).squeeze(-1)
                else:
                    chosen = outputs[Columns.ACTION_DIST_INPUTS].argmax(dim=-1)
                actions.update(zip(agents, chosen.tolist(), strict=True))
        return actions


def load_controller(path: str | Path, name: str | None = None, actions: str | None = None) -> PolicyController:
    """A Controller from a checkpoint or a run directory (its best checkpoint). actions: "greedy" or
    "sample"; None: the checkpoint's own (see the module's docstring)."""
    checkpoint = resolve_checkpoint(path)
    try:
        config = saved_config(checkpoint)
        modules = load_modules(checkpoint)
        actions = actions or checkpoint_actions(checkpoint, config)
    except Exception as exc:  # a truncated pickle, a missing state file, a torch error: all mean corrupt
        raise UserError(f"cannot load checkpoint {checkpoint}: {type(exc).__name__}: {str(exc)[:200]}") from None
    lean = {mid: inference_only(m) for mid, m in modules.items()}
    return PolicyController(checkpoint, lean, dict(config["env_config"]), name, actions)


def inference_only(module: Any) -> Any:
    """The module as env runners build it: what acting needs, without value function, centralized
    critic or target networks."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    lean: Any = RLModuleSpec(
        module_class=type(module),
        observation_space=module.observation_space,
        action_space=module.action_space,
        model_config=module.model_config,
        inference_only=True,
    ).build()
    lean.set_state(module.get_state(inference_only=True))
    return lean.eval()
