"""The env runner's two per-step connectors, done directly for marlo's env.

RLlib's default env-to-module and module-to-env pipelines are nine connectors that walk every
episode and agent at every env step (about half an env runner's own cost per step on a map of many
junctions, benchmarks/runner_overhead.py). For marlo's env they come down to: stack each module's
newest observations into tensors, then sample the actions and split them back per env and agent.
The results are the ones RLlib's defaults give (tests/test_connectors.py): the same batch for the
module, and the same actions, action-distribution inputs and log-probabilities for the episodes.

They hold only where nothing else is in those pipelines (`direct_connectors_fit`), and rely on marlo's
env: every junction acts at every env step, and an episode ends for all junctions at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.utils.numpy import convert_to_numpy  # as RLlib's TensorToNumpy: 64-bit numbers become 32-bit

ROWS = "marlo_rows"  # shared_data key: per module, the (env index, agent) of each batch row


def direct_connectors_fit(config: Any, module: Any) -> bool:
    """Whether a runner with this config and (multi-)module can act through these connectors."""
    return (
        config._env_to_module_connector is None
        and config._module_to_env_connector is None
        and config.add_default_connectors_to_env_to_module_pipeline
        and config.add_default_connectors_to_module_to_env_pipeline
        and config.normalize_actions is False
        and config.clip_actions is False
        and module is not None
        and not any(module[m].is_stateful() for m in module.keys())
    )


def _stack(items: list[Any]) -> Any:
    first = items[0]
    if isinstance(first, dict):
        return {key: _stack([item[key] for item in items]) for key in first}
    tensor = torch.from_numpy(np.stack(items))
    return tensor.float() if tensor.is_floating_point() else tensor


def observations_to_module(*, episodes: list, shared_data: dict, **kwargs: Any) -> dict[str, Any]:
    """env-to-module: {module: {obs: stacked newest observations}} of the episodes still running.
    kwargs[obs] holds each env index's newest observations (RLlib passes `self._ongoing_episodes`
    with them; a finished episode, or one not yet reset, has no one to act)."""
    observations = kwargs[Columns.OBS]
    rows: dict[str, list[tuple[int, str]]] = {}
    values: dict[str, list[Any]] = {}
    for index, episode in enumerate(episodes):
        if episode.is_done or not episode.is_reset:
            continue
        for agent, observation in observations[index].items():
            module = episode.module_for(agent)
            rows.setdefault(module, []).append((index, agent))
            values.setdefault(module, []).append(observation)
    shared_data[ROWS] = rows
    return {module: {Columns.OBS: _stack(items)} for module, items in values.items()}


def actions_to_envs(
    *, rl_module: Any, batch: dict[str, Any], episodes: list, explore: bool, shared_data: dict, **kwargs: Any
) -> dict[str, list[dict[str, Any]]]:
    """module-to-env: {column: [{agent: value} per env index]}, actions sampled (or, not exploring,
    the distribution's mode) where the module gave only their distribution's inputs."""
    rows = shared_data[ROWS]
    columns: dict[str, list[dict[str, Any]]] = {}
    for module_id, outputs in batch.items():
        outputs = dict(outputs)
        if Columns.ACTIONS not in outputs:
            module = rl_module[module_id]
            dist_class = module.get_exploration_action_dist_cls() if explore else module.get_inference_action_dist_cls()
            distribution = dist_class.from_logits(outputs[Columns.ACTION_DIST_INPUTS])
            if not explore:
                distribution = distribution.to_deterministic()
            outputs[Columns.ACTIONS] = distribution.sample()
            if Columns.ACTION_LOGP not in outputs:
                outputs[Columns.ACTION_LOGP] = distribution.logp(outputs[Columns.ACTIONS])
        for column, value in outputs.items():
            per_env = columns.setdefault(column, [{} for _ in episodes])
            for (index, agent), row in zip(rows[module_id], convert_to_numpy(value), strict=True):
                per_env[index][agent] = row
    return columns
