"""The phase observation and the phase-scoring shared policy (models/phase.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from marlo_rllib.env.observations import PHASE_FEATURES
from marlo_rllib.models.phase import PhasePPOTorchRLModule

GREENS, FLAGS = 4, 3


def module() -> PhasePPOTorchRLModule:
    torch.manual_seed(0)
    width = GREENS * PHASE_FEATURES + FLAGS
    space = gym.spaces.Dict(
        {
            "observations": gym.spaces.Box(-1.0, 1.0, (width,), np.float32),
            "action_mask": gym.spaces.Box(0, 1, (GREENS,), np.int8),
        }
    )
    return RLModuleSpec(
        module_class=PhasePPOTorchRLModule,
        observation_space=space,
        action_space=gym.spaces.Discrete(GREENS),
        model_config={"fcnet_hiddens": [16, 16], "fcnet_activation": "tanh"},
    ).build()


def batch(phases: np.ndarray, flags: np.ndarray, mask: np.ndarray) -> dict:
    flat = np.concatenate([phases.reshape(len(phases), -1), flags], axis=1)
    return {
        Columns.OBS: {
            "observations": torch.as_tensor(flat, dtype=torch.float32),
            "action_mask": torch.as_tensor(mask, dtype=torch.float32),
        }
    }


def test_greens_are_scored_alike_in_any_order():
    rng = np.random.default_rng(0)
    phases = rng.uniform(-1, 1, (5, GREENS, PHASE_FEATURES))
    flags = rng.uniform(0, 1, (5, FLAGS))
    mask = np.ones((5, GREENS))
    order = [2, 0, 3, 1]
    policy = module()
    with torch.no_grad():
        logits = policy.forward_train(batch(phases, flags, mask))[Columns.ACTION_DIST_INPUTS]
        permuted = policy.forward_train(batch(phases[:, order], flags, mask))[Columns.ACTION_DIST_INPUTS]
        values = policy.compute_values(batch(phases, flags, mask))
        permuted_values = policy.compute_values(batch(phases[:, order], flags, mask))
    torch.testing.assert_close(permuted, logits[:, order])
    torch.testing.assert_close(permuted_values, values)


def test_a_padded_green_changes_nothing_and_is_never_chosen():
    rng = np.random.default_rng(1)
    phases = rng.uniform(-1, 1, (5, GREENS, PHASE_FEATURES))
    flags = rng.uniform(0, 1, (5, FLAGS))
    mask = np.ones((5, GREENS))
    mask[:, -1] = 0
    garbage = phases.copy()
    garbage[:, -1] = rng.uniform(-1, 1, (5, PHASE_FEATURES))
    policy = module()
    with torch.no_grad():
        logits = policy.forward_train(batch(phases, flags, mask))[Columns.ACTION_DIST_INPUTS]
        other = policy.forward_train(batch(garbage, flags, mask))[Columns.ACTION_DIST_INPUTS]
        values = policy.compute_values(batch(phases, flags, mask))
        other_values = policy.compute_values(batch(garbage, flags, mask))
    torch.testing.assert_close(other[:, :-1], logits[:, :-1])
    torch.testing.assert_close(other_values, values)
    assert (logits.argmax(dim=-1) != GREENS - 1).all() and (logits[:, -1] < -1e30).all()


def test_the_phase_observation_describes_what_each_green_serves(make_env):
    env = make_env("cologne8", observation="phase", shared_spaces=True, episode_seconds=200)
    observations, _ = env.reset(seed=3)
    for _ in range(15):
        observations, *_ = env.step({a: 1 % env.junctions[a].n_greens for a in env.agents})
    greens = env.action_space(env.possible_agents[0]).n
    for agent in env.possible_agents:
        junction, traffic = env.junctions[agent], env.traffic[agent]
        flat = observations[agent]["observations"]
        phases = flat[: greens * PHASE_FEATURES].reshape(greens, PHASE_FEATURES)
        assert phases[:, 0].tolist() == [float(g == env.signals[agent].green) for g in range(greens)]
        queue = np.minimum(traffic.in_halting / junction.in_capacity, 1.0)
        for g in range(junction.n_greens):
            movements = np.flatnonzero(junction.serves[g])
            assert phases[g, 1] == pytest.approx(queue[junction.link_in[movements]].mean(), abs=1e-6)
        assert not phases[junction.n_greens :].any()  # padded greens are zeros
        assert flat[greens * PHASE_FEATURES] in (0.0, 1.0)  # min green passed
    assert any(observations[a]["observations"][1 : greens * PHASE_FEATURES : PHASE_FEATURES].any() for a in env.agents)
