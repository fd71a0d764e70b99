"""What marlo needs to know of an algorithm: its capabilities, presets and RLlib classes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Off-policy and asynchronous algorithms iterate in RLlib steps of 100 to 1,000 env steps, each
# followed by an evaluation episode (720 env steps on most maps): SAC spent most of a run evaluating.
# An iteration of PPO's CPU train batch evaluates as often per env step as PPO.
ITERATION_ENV_STEPS = 4096
HIDDEN_LAYERS = (256, 256)  # an algorithm's model.fcnet_hiddens unless its spec says otherwise


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    offline_only: bool  # learns from a recorded dataset (--dataset), never samples SUMO for training
    centralized_critic: bool  # --policy central (MAPPO-style) is available
    action_masking: bool  # a shared policy can mask padded greens on junctions of different sizes
    rollout_fragment_length: int | str  # env steps per fragment, or "auto" (the train batch, cut evenly)
    # env steps an iteration samples at least (RLlib's min_sample_timesteps_per_iteration), and so
    # between evaluations; None: RLlib's (a PPO iteration is its train batch)
    iteration_env_steps: int | None
    presets: dict[str, dict[str, Any]]  # "cpu" and "gpu": RLlib training() parameters
    config_class: Callable[[], type[Any]]  # RLlib's AlgorithmConfig subclass
    masked_module_class: Callable[[], type]  # the RLModule of a shared policy
    # model.fcnet_hiddens unless the user sets it, "cpu" and "gpu" as the presets
    hidden_layers: dict[str, tuple[int, ...]] = field(
        default_factory=lambda: {"cpu": HIDDEN_LAYERS, "gpu": HIDDEN_LAYERS}
    )
    # evaluation.interval unless the user sets it or the train batch, "cpu" and "gpu" as the presets
    evaluation_interval: dict[str, int] = field(default_factory=lambda: {"cpu": 1, "gpu": 1})
    q_learner: bool = False  # acts by its Q-values' argmax: no distribution to sample actions from
    caution: str = ""  # what the measurements say against using it; `marlo train` and `marlo algos` print it


CAPABILITIES = ("offline_only", "centralized_critic", "action_masking")
