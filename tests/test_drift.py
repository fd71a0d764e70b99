"""MMD and the drift trigger (marlo_rllib/adaptation/drift.py) on small hand-checked samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marlo_rllib.adaptation.drift import Standardizer, bucket_mmd, median_bandwidth, mmd, triggers

X, Y = np.array([[0.0], [1.0]]), np.array([[2.0]])
# k(a, b) = exp(-(a - b)² / 2): mean k(X, X) = (1 + e^-0.5) / 2, k(Y, Y) = 1, mean k(X, Y) = (e^-2 + e^-0.5) / 2
BY_HAND = math.sqrt((1 + math.exp(-0.5)) / 2 + 1 - (math.exp(-2) + math.exp(-0.5)))


def test_mmd_matches_the_hand_computed_value():
    assert mmd(X, Y, bandwidth=1.0) == pytest.approx(BY_HAND)
    assert median_bandwidth(np.concatenate([X, Y])) == pytest.approx(1.0)  # distances 1, 2, 1
    assert mmd(X, Y) == pytest.approx(BY_HAND)


def test_mmd_is_zero_for_one_sample_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 3, 2))  # rows are flattened: (200, 6)
    assert mmd(base, base) == pytest.approx(0.0, abs=1e-7)
    near, far = mmd(base, base + 0.2, bandwidth=2.0), mmd(base, base + 1.0, bandwidth=2.0)
    assert 0 < near < far


def test_bucket_mmd_averages_draws_of_the_offline_data():
    rng = np.random.default_rng(1)
    offline = rng.normal(size=(500, 4))
    same, shifted = rng.normal(size=(100, 4)), rng.normal(loc=1.0, size=(100, 4))
    assert bucket_mmd(shifted, offline, 5, np.random.default_rng(2)) > 2 * bucket_mmd(
        same, offline, 5, np.random.default_rng(2)
    )


@pytest.mark.parametrize(
    "mmds, ratio, expected",
    [
        ([0.1, 0.5], 1.5, False),  # bucket 1: too early, whatever its jump
        ([0.1, 0.1, 0.16], 1.5, True),
        ([0.1, 0.1, 0.15], 1.5, False),  # equal to ratio x previous is not above it
        ([0.1, 0.3, 0.2], 1.5, False),
        ([0.2, 0.2, 0.2, 0.2, 0.5], 2.0, True),
    ],
)
def test_trigger_rule(mmds, ratio, expected):
    assert triggers(mmds, ratio) is expected


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="ratio must be greater than 0"):
        triggers([0.1, 0.1, 0.2], 0)
    with pytest.raises(ValueError, match="differ in width"):
        mmd(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="at least one row"):
        mmd(np.zeros((0, 3)), np.zeros((2, 3)))


def test_standardizer_z_scores_by_the_reference_and_leaves_out_constant_and_dropped_features():
    reference = np.array([[0.0, 1.0, 5.0, 0.0], [2.0, 1.0, 7.0, 1.0]])  # means 1, 1, 6, 0.5; stds 1, 0, 1, 0.5
    features = Standardizer(reference, drop=[3])
    np.testing.assert_allclose(features(np.array([[3.0, 9.0, 4.0, 1.0]])), [[2.0, -2.0]])
    with pytest.raises(ValueError, match="constant"):
        Standardizer(np.ones((3, 2)))


def test_standardized_mmd_sees_a_shift_of_one_feature_that_raw_one_hots_hide():
    rng = np.random.default_rng(0)
    one_hot = np.eye(16)[rng.integers(16, size=400)]
    before = np.hstack([one_hot, rng.uniform(0, 0.05, (400, 1))])
    after = np.hstack([np.eye(16)[rng.integers(16, size=400)], rng.uniform(0.02, 0.07, (400, 1))])
    features = Standardizer(before, drop=list(range(16)))
    assert mmd(features(after), features(before)) > 5 * mmd(after, before)
