"""The band stopper on metric sequences (no Ray run needed)."""

from __future__ import annotations

import math

import pytest

from marlo_rllib.training.stopper import BandStopper, evaluation_score


def feed(stopper: BandStopper, scores, steps_per_result: int = 1000, metric: str = "return"):
    """Feeds one evaluated result per score; returns the 1-based index of the result that stopped."""
    key = "episode_return_mean" if metric == "return" else "delay"
    for i, score in enumerate(scores, start=1):
        result = {"num_env_steps_sampled_lifetime": i * steps_per_result, "evaluation": {"env_runners": {key: score}}}
        if stopper("trial", result):
            return i
    return None


def test_plateau_stops_after_patience_evaluations_inside_the_band():
    stopper = BandStopper(timesteps=10**9, window=2, band=0.05, patience=3)
    # Rolling means -90, -70, -50, -40.5 improve by more than 5%; then -40.5, -39.5, -39.5 stay inside.
    stopped = feed(stopper, [-100, -80, -60, -40, -41, -40, -39, -40, -41])
    assert stopped == 8
    assert stopper.trials["trial"].reason.startswith("plateau")


def test_steady_progress_is_not_a_plateau():
    stopper = BandStopper(timesteps=10**9, window=2, band=0.02, patience=3)
    assert feed(stopper, [-100 * 0.9**i for i in range(30)]) is None


def test_slow_steady_progress_inside_the_band_is_not_a_plateau():
    # 1% better per evaluation never leaves a 2% band step by step, but adds up to progress
    stopper = BandStopper(metric="delay", timesteps=10**9, window=1, band=0.02, patience=3)
    assert feed(stopper, [40 * 0.99**i for i in range(30)], metric="delay") is None


def test_falling_below_the_band_restarts_the_plateau_count():
    stopper = BandStopper(timesteps=10**9, window=1, band=0.05, patience=3)
    # two inside the band, a collapse, then two inside again: never three in a row
    assert feed(stopper, [-10, -10, -10, -30, -10, -10]) is None
    assert stopper.trials["trial"].plateau == 2


def test_plateau_waits_for_min_timesteps():
    stopper = BandStopper(timesteps=10**9, window=1, band=0.05, patience=2, min_timesteps=5000)
    assert feed(stopper, [-10] * 7) == 7  # counting starts at 5000 steps: 5th, 6th, 7th evaluation


def test_no_patience_never_stops_on_a_plateau():
    stopper = BandStopper(timesteps=10**9, window=1, band=0.05, patience=None)
    assert feed(stopper, [-10] * 50) is None
    assert stopper.trials["trial"].plateau == 49


def test_success_streak_on_delay_target():
    stopper = BandStopper(metric="delay", timesteps=10**9, target=40.0, streak=3, patience=100)
    stopped = feed(stopper, [90, 60, 39, 38, 45, 39, 35, 30, 50], metric="delay")
    assert stopped == 8
    assert stopper.trials["trial"].reason.startswith("success")


def test_budget_always_stops_and_unevaluated_results_do_not_count():
    stopper = BandStopper(timesteps=2500, window=1, patience=1)
    assert not stopper("t", {"num_env_steps_sampled_lifetime": 1000})
    assert stopper.trials["t"].history == type(stopper.trials["t"].history)()
    assert stopper("t", {"num_env_steps_sampled_lifetime": 3000})
    assert stopper.trials["t"].reason.startswith("budget")


def test_interrupt_stops_at_the_next_result():
    stopper = BandStopper(timesteps=10**9)
    assert not stopper("t", {"num_env_steps_sampled_lifetime": 10})
    stopper.interrupted = True
    assert stopper("t", {"num_env_steps_sampled_lifetime": 20})
    assert stopper.trials["t"].reason == "interrupted"


def test_evaluation_score_is_bigger_is_better():
    result = {"evaluation": {"env_runners": {"episode_return_mean": -5.0, "delay": 42.0}}}
    assert evaluation_score(result, "return") == -5.0
    assert evaluation_score(result, "delay") == -42.0
    assert evaluation_score({"evaluation": {"env_runners": {"delay": math.nan}}}, "delay") is None
    assert evaluation_score({}, "return") is None
    # With evaluation every 5 iterations, iteration 6 repeats iteration 5's metrics: no new evaluation.
    assert evaluation_score({**result, "training_iteration": 5}, "delay", interval=5) == -42.0
    assert evaluation_score({**result, "training_iteration": 6}, "delay", interval=5) is None
    with pytest.raises(ValueError):
        BandStopper(metric="speed", timesteps=1)


def test_iterations_without_samples_fail_the_trial_after_stuck_after_in_a_row():
    stopper = BandStopper(timesteps=10**9, stuck_after=3, sample_timeout_s=60.0, evaluation_timeout_s=120.0)
    lifetime = [0, 100, 100, 200, 200, 200, 200]  # idle, progress, idle, progress, then idle three times
    stopped = [
        stopper(
            "trial",
            {
                "num_env_steps_sampled_lifetime": steps,
                "training_iteration": i,
                "evaluation": {"env_runners": {"episode_return_mean": -1.0}},
            },
        )
        for i, steps in enumerate(lifetime, start=1)
    ]
    state = stopper.trials["trial"]
    assert stopped == [False] * 6 + [True]
    assert state.failed and state.idle == 3
    assert "resources.sample_timeout_s (60.0 s)" in state.reason and state.reason.startswith("no progress in 3")


def test_evaluations_that_finish_no_episode_fail_the_trial():
    stopper = BandStopper(timesteps=10**9, stuck_after=2, evaluation_interval=2, evaluation_timeout_s=120.0)
    results = [{"num_env_steps_sampled_lifetime": 10 * i, "training_iteration": i} for i in range(1, 5)]
    assert [stopper("trial", r) for r in results] == [False, False, False, True]  # evaluations due at 2 and 4
    state = stopper.trials["trial"]
    assert state.failed and state.idle == 0 and "evaluation.timeout_s (120.0 s)" in state.reason
