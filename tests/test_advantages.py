"""Advantage standardisation (training/advantages.py): PPO's per junction inside a shared module, IMPALA's per minibatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.evaluation.postprocessing import Postprocessing

from marlo_rllib.config import compose
from marlo_rllib.errors import UserError
from marlo_rllib.training.advantages import (
    PerJunctionAdvantagesPPOLearner,
    StandardiseAdvantagesPerAgent,
    StandardisedAdvantagesIMPALALearner,
    standardised,
)
from marlo_rllib.training.callbacks import TrafficMetricsCallback
from marlo_rllib.training.rllib_config import build_config


def _episode(agent: str, steps: int) -> SingleAgentEpisode:
    return SingleAgentEpisode(
        observations=[0] * (steps + 1),
        actions=[0] * steps,
        rewards=[0.0] * steps,
        agent_id=agent,
        module_id="shared",
        len_lookback_buffer=0,
    )


def test_each_junctions_advantages_are_standardised_on_their_own_in_batch_order():
    episodes = [_episode("busy", 3), _episode("quiet", 2), _episode("busy", 2)]
    advantages = [100.0, -50.0, 300.0, 1.0, -1.0, 0.0, 150.0]
    batch = {"shared": {Postprocessing.ADVANTAGES: torch.tensor(advantages)}}

    out = StandardiseAdvantagesPerAgent()(rl_module=None, episodes=episodes, batch=batch)

    result = out["shared"][Postprocessing.ADVANTAGES].numpy()
    busy = np.array([100.0, -50.0, 300.0, 0.0, 150.0])
    busy = (busy - busy.mean()) / busy.std()
    np.testing.assert_allclose(result[[0, 1, 2, 5, 6]], busy, rtol=1e-5)
    np.testing.assert_allclose(result[[3, 4]], [1.0, -1.0], rtol=1e-5)


def test_a_batch_that_does_not_line_up_with_its_episodes_is_left_alone():
    episodes = [_episode("busy", 3), _episode("quiet", 2)]
    padded = torch.tensor([[5.0, 1.0, 2.0], [3.0, 0.0, 0.0]])  # a stateful module's zero-padded rows
    batch = {"shared": {Postprocessing.ADVANTAGES: padded.clone()}}

    out = StandardiseAdvantagesPerAgent()(rl_module=None, episodes=episodes, batch=batch)

    assert torch.equal(out["shared"][Postprocessing.ADVANTAGES], padded)


def test_the_setting_picks_the_learner_and_is_ppos_alone():
    env_config = {"scenario": "2x2grid", "seed_base": 100000, "shared_spaces": True}
    default = build_config(compose({"scenario": "2x2grid"}, {}), env_config, ["1"], TrafficMetricsCallback)
    assert default.learner_class is PPOTorchLearner
    chosen = compose({"scenario": "2x2grid"}, {"training": {"advantages_per_junction": True}})
    assert (
        build_config(chosen, env_config, ["1"], TrafficMetricsCallback).learner_class is PerJunctionAdvantagesPPOLearner
    )
    with pytest.raises(UserError, match="training.advantages_per_junction"):
        compose({"scenario": "2x2grid"}, {"training": {"advantages_per_junction": "yes"}})
    with pytest.raises(UserError, match="unknown key 'training.advantages_per_junction' for APPO"):
        compose({"scenario": "2x2grid", "algorithm": "APPO"}, {"training": {"advantages_per_junction": True}})


def test_impala_advantages_are_standardised_over_the_loss_mask_only():
    advantages = torch.tensor([[2.0, 4.0], [6.0, 1000.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # the last is a bootstrap step: not in the loss

    out = standardised(advantages, mask)

    kept = np.array([2.0, 4.0, 6.0])
    np.testing.assert_allclose(out[mask.bool()].numpy(), (kept - kept.mean()) / kept.std(), rtol=1e-5)


def test_impalas_setting_picks_its_learner():
    env_config = {"scenario": "2x2grid", "seed_base": 100000, "shared_spaces": True}
    chosen = compose({"scenario": "2x2grid", "algorithm": "IMPALA"}, {"training": {"standardise_advantages": True}})
    learner = build_config(chosen, env_config, ["1"], TrafficMetricsCallback).learner_class
    assert learner is StandardisedAdvantagesIMPALALearner
    with pytest.raises(UserError, match="unknown key 'training.standardise_advantages' for PPO"):
        compose({"scenario": "2x2grid"}, {"training": {"standardise_advantages": True}})
