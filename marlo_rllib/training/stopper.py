"""Band-based early stopping for Tune trials."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ray.tune import Stopper


@dataclass
class BandState:
    history: deque = field(default_factory=deque)
    best: float | None = None
    plateau: int = 0
    streak: int = 0
    reason: str | None = None


def evaluation_score(result: dict[str, Any], metric: str, interval: int = 1) -> float | None:
    """This iteration's evaluation, bigger-is-better: the mean return, or minus the mean delay.
    RLlib evaluates every `interval` iterations, and repeats the last evaluation's metrics in the
    result after it; those repeats are no new evaluation."""
    if result.get("training_iteration", 0) % interval:
        return None
    evaluation = result.get("evaluation", {}).get("env_runners", {})
    value = evaluation.get("episode_return_mean" if metric == "return" else "delay")
    if value is None or value != value:  # missing or NaN: no episode finished
        return None
    return float(value) if metric == "return" else -float(value)


class BandStopper(Stopper):
    """Stops a trial on a plateau, on success, or at its budget.

    It scores only iterations that ran an evaluation (`evaluation_score`): the mean evaluation
    return, or minus the mean evaluation delay, so that bigger is always better.

    metric: "return" or "delay"; `target` is in the metric's own units (a return to reach, or a
        delay in seconds to get under).
    timesteps: the env-step budget; always stops the trial. minutes: optional wall-clock budget.
    (a) plateau: once `min_timesteps` env steps are sampled and `window` evaluations are in, the
        rolling mean m of the last `window` scores is compared with the best rolling mean b so far.
        m > b + band*|b| is real progress: b = m and the count restarts. b - band*|b| <= m <= b + band*|b|
        is inside the band: the count grows (and b = max(b, m)). m below the band restarts the count.
        The trial stops when the count reaches `patience`.
    (b) success: the trial stops after `streak` evaluations in a row that meet `target`.
    evaluation_interval: RLlib's; only every this many iterations is a new evaluation.
    initial: the counters a resumed run left off with.
    `interrupted = True` stops each trial at its next result (Tune then writes its final checkpoint).
    """

    def __init__(self, *, metric: str = "return", timesteps: int, minutes: float | None = None,
                 min_timesteps: int = 0, window: int = 3, band: float = 0.02, patience: int = 10,
                 target: float | None = None, streak: int = 3, evaluation_interval: int = 1,
                 initial: BandState | None = None) -> None:  # fmt: skip
        if metric not in ("return", "delay"):
            raise ValueError(f"metric must be 'return' or 'delay', got {metric!r}")
        self.metric, self.timesteps, self.minutes = metric, timesteps, minutes
        self.min_timesteps, self.window, self.band, self.patience = min_timesteps, window, band, patience
        self.target, self.streak, self.evaluation_interval = target, streak, evaluation_interval
        self.interrupted = False  # set by a signal handler: each trial stops at its next result
        self.initial = initial or BandState()
        self.trials: dict[str, BandState] = {}

    def met_target(self, score: float) -> bool:
        if self.target is None:
            return False
        return score >= self.target if self.metric == "return" else -score <= self.target

    def observe(self, trial_id: str, timesteps: float, score: float | None) -> BandState:
        state = self.trials.get(trial_id)
        if state is None:
            start = self.initial
            state = BandState(deque(maxlen=self.window), start.best, start.plateau, start.streak)
            self.trials[trial_id] = state
        if score is None:
            return state
        state.history.append(score)
        state.streak = state.streak + 1 if self.met_target(score) else 0
        if state.streak >= self.streak:
            state.reason = f"success: {self.streak} evaluations in a row met the target {self.target}"
        if timesteps >= self.min_timesteps and len(state.history) == self.window:
            mean = sum(state.history) / self.window
            if state.best is None:
                state.best, state.plateau = mean, 0
            else:
                width = self.band * abs(state.best)
                if mean > state.best + width:
                    state.best, state.plateau = mean, 0
                elif mean >= state.best - width:
                    state.best, state.plateau = max(state.best, mean), state.plateau + 1
                else:
                    state.plateau = 0
            if state.plateau >= self.patience and state.reason is None:
                state.reason = f"plateau: {self.patience} evaluations inside a {self.band:.0%} band of the best"
        return state

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        timesteps = result.get("num_env_steps_sampled_lifetime", 0)
        state = self.observe(trial_id, timesteps, evaluation_score(result, self.metric, self.evaluation_interval))
        if state.reason is None and timesteps >= self.timesteps:
            state.reason = f"budget: {timesteps} of {self.timesteps} env steps"
        if state.reason is None and self.minutes is not None and result.get("time_total_s", 0) >= 60 * self.minutes:
            state.reason = f"budget: {self.minutes} minutes"
        if state.reason is None and self.interrupted:
            state.reason = "interrupted"
        return state.reason is not None


    def stop_all(self) -> bool:
        return False
