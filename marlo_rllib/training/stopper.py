"""Band-based early stopping for Tune trials."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ray.tune import Stopper

from marlo_rllib.config import SCORE_METRICS


@dataclass
class BandState:
    history: deque = field(default_factory=deque)
    best: float | None = None  # the rolling mean at the last real progress: the plateau band's reference
    plateau: int = 0
    streak: int = 0
    reason: str | None = None
    timesteps: int = 0  # env steps sampled (lifetime) at the last result
    idle: int = 0  # iterations in a row that sampled no env step
    unevaluated: int = 0  # evaluations in a row that finished no episode
    warning: str | None = None  # what went wrong in the last iteration
    failed: bool = False  # stopped because training could not make progress


def score_key(metric: str) -> str:
    """The training result's key of a checkpoint score (TrafficMetricsCallback.on_train_result)."""
    return f"marlo_score_{metric}"


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
    timesteps: the env-step budget (None: none); always stops the trial. minutes: optional wall-clock budget.
    (a) plateau: once `min_timesteps` env steps are sampled and `window` evaluations are in, the
        rolling mean m of the last `window` scores is compared with b, the rolling mean of the last
        real progress. m > b + band*|b| is real progress: b = m and the count restarts.
        b - band*|b| <= m <= b + band*|b| is inside the band: the count grows (b stays, so that many
        small gains add up to progress). m below the band restarts the count. The trial stops when
        the count reaches `patience` (None: never).
    (b) success: the trial stops after `streak` evaluations in a row that meet `target`.
    evaluation_interval: RLlib's; only every this many iterations is a new evaluation.
    initial: the counters a resumed run left off with.
    (c) no progress: `stuck_after` iterations in a row that sampled no env step, or evaluations in a
        row that finished no episode, fail the trial (RLlib drops sample() calls that pass their
        timeout and carries on with nothing); the reason names the timeout to raise.
    `interrupted = True` stops each trial at its next result (Tune then writes its final checkpoint).
    """

    def __init__(
        self,
        *,
        metric: str = "return",
        timesteps: int | None,
        minutes: float | None = None,
        min_timesteps: int = 0,
        window: int = 3,
        band: float = 0.02,
        patience: int | None = 10,
        target: float | None = None,
        streak: int = 3,
        evaluation_interval: int = 1,
        initial: BandState | None = None,
        stuck_after: int = 3,
        sample_timeout_s: float | None = None,
        evaluation_timeout_s: float | None = None,
    ) -> None:
        if metric not in SCORE_METRICS:
            raise ValueError(f"metric must be one of {SCORE_METRICS}, got {metric!r}")
        self.metric, self.timesteps, self.minutes = metric, timesteps, minutes
        self.min_timesteps, self.window, self.band, self.patience = min_timesteps, window, band, patience
        self.target, self.streak, self.evaluation_interval = target, streak, evaluation_interval
        self.interrupted = False  # set by a signal handler: each trial stops at its next result
        self.initial = initial or BandState()
        self.stuck_after, self.sample_timeout_s, self.evaluation_timeout_s = (
            stuck_after,
            sample_timeout_s,
            evaluation_timeout_s,
        )
        self.trials: dict[str, BandState] = {}

    def met_target(self, score: float) -> bool:
        if self.target is None:
            return False
        return score >= self.target if self.metric == "return" else -score <= self.target

    def observe(self, trial_id: str, timesteps: float, score: float | None) -> BandState:
        state = self.trials.get(trial_id)
        if state is None:
            start = self.initial
            state = BandState(
                deque(maxlen=self.window), start.best, start.plateau, start.streak, timesteps=start.timesteps
            )
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
                    state.plateau += 1
                else:
                    state.plateau = 0
            if self.patience is not None and state.plateau >= self.patience and state.reason is None:
                state.reason = f"plateau: {self.patience} evaluations inside a {self.band:.0%} band of the best"
        return state

    def check_progress(self, state: BandState, timesteps: int, evaluation_due: bool, score: float | None) -> None:
        state.idle = 0 if timesteps > state.timesteps else state.idle + 1
        if evaluation_due:
            state.unevaluated = state.unevaluated + 1 if score is None else 0
        state.timesteps = max(state.timesteps, int(timesteps))
        warnings = []
        if state.idle:
            warnings.append(
                f"no env steps sampled: every sample() call outlasted resources.sample_timeout_s "
                f"({self.sample_timeout_s} s)"
            )
        if evaluation_due and state.unevaluated:
            warnings.append(
                f"no evaluation episode finished within evaluation.timeout_s ({self.evaluation_timeout_s} s)"
            )
        state.warning = "; ".join(warnings) or None
        if state.reason is None and max(state.idle, state.unevaluated) >= self.stuck_after:
            count = max(state.idle, state.unevaluated)
            state.failed = True
            state.reason = (
                f"no progress in {count} iterations in a row: {state.warning}; raise that timeout "
                "(--set KEY=SECONDS) or lower the work per call (more --num-env-runners, shorter episodes)"
            )

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        timesteps = result.get("num_env_steps_sampled_lifetime", 0)
        score = evaluation_score(result, self.metric, self.evaluation_interval)
        state = self.observe(trial_id, timesteps, score)
        due = "training_iteration" in result and result["training_iteration"] % self.evaluation_interval == 0
        self.check_progress(state, timesteps, due, score)
        if state.reason is None and self.timesteps is not None and timesteps >= self.timesteps:
            state.reason = f"budget: {timesteps} of {self.timesteps} env steps"
        if state.reason is None and self.minutes is not None and result.get("time_total_s", 0) >= 60 * self.minutes:
            state.reason = f"budget: {self.minutes} minutes"
        if state.reason is None and self.interrupted:
            state.reason = "interrupted"
        return state.reason is not None

    def stop_all(self) -> bool:
        return False
