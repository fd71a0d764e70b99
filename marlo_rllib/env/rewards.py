"""Reward functions, chosen by name, with parameters.

A reward is computed per junction from its traffic now and one env step before.
`make_reward("stopped-ratio", {"alpha": 2.0})` returns the callable; bad names or parameters
raise UserError.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marlo_rllib.env.traffic import JunctionTraffic
from marlo_rllib.errors import UserError


def diff_waiting_time(now: JunctionTraffic, before: JunctionTraffic, scale: float = 100.0) -> float:
    """Fall of the summed waiting time on the incoming lanes since the last step, over `scale` seconds."""
    return float(before.in_waiting.sum() - now.in_waiting.sum()) / scale


def diff_accumulated_waiting(
    now: JunctionTraffic, before: JunctionTraffic, scale: float = 100.0, pending: float = 1.0
) -> float:
    """sumo-rl's diff-waiting-time: the fall of the waiting time that the vehicles on the incoming lanes
    accumulated since they reached them (a vehicle that creeps up its queue keeps its wait; one that
    crosses takes all of it away), over `scale` seconds. `pending` weighs the time the vehicles that
    SUMO could not yet insert, and whose route meets this junction first, have waited to enter:
    without it (0, sumo-rl's), a junction that starves an entry hides that entry's queue outside
    the network."""
    before_total = before.accumulated_waiting + pending * before.pending_waiting
    return (before_total - now.accumulated_waiting - pending * now.pending_waiting) / scale


def time_loss(now: JunctionTraffic, before: JunctionTraffic, scale: float = 100.0, pending: float = 1.0) -> float:
    """Minus the time the vehicles on the incoming lanes lost during the step (SUMO's per-vehicle
    timeLoss: time behind the free-flow trip), over `scale` seconds; summed over an episode, minus
    the delay incurred at this junction, the quantity the benchmarks report. `pending` weighs the
    change of the wait of vehicles SUMO could not yet insert, as in diff-accumulated-waiting."""
    return (-now.time_loss + pending * (before.pending_waiting - now.pending_waiting)) / scale


def queue(now: JunctionTraffic, before: JunctionTraffic, scale: float = 1.0) -> float:
    """Minus the halting vehicles on the incoming lanes."""
    return -float(now.in_halting.sum()) / scale


def pressure(now: JunctionTraffic, before: JunctionTraffic, scale: float = 1.0) -> float:
    """Minus (vehicles on incoming lanes - vehicles on outgoing lanes)."""
    return -float(now.in_count.sum() - now.out_count.sum()) / scale


def stopped_ratio(now: JunctionTraffic, before: JunctionTraffic, alpha: float = 1.0) -> float:
    """-alpha * stopped / total on the incoming lanes (0 when they are empty)."""
    total = float(now.in_count.sum())
    return -alpha * float(now.in_halting.sum()) / total if total else 0.0


def throughput(now: JunctionTraffic, before: JunctionTraffic, scale: float = 1.0) -> float:
    """Vehicles that left the incoming lanes (crossed the junction) during the step."""
    return len(before.vehicles - now.vehicles) / scale


TERMS: dict[str, Callable[..., float]] = {
    "diff-waiting-time": diff_waiting_time,
    "diff-accumulated-waiting": diff_accumulated_waiting,
    "time-loss": time_loss,
    "queue": queue,
    "pressure": pressure,
    "stopped-ratio": stopped_ratio,
    "throughput": throughput,
}
REWARDS = (*TERMS, "weighted")  # weighted: a sum of TERMS, see make_reward


@dataclass(frozen=True)
class Reward:
    fn: Callable[[JunctionTraffic, JunctionTraffic], float]
    needs_vehicle_ids: bool
    needs_accumulated_waiting: bool = False
    needs_time_loss: bool = False

    def __call__(self, now: JunctionTraffic, before: JunctionTraffic) -> float:
        return self.fn(now, before)


def _bind(name: str, params: dict[str, Any]) -> Reward:
    if name not in TERMS:
        raise UserError(f"unknown reward {name!r}; valid: {', '.join(REWARDS)}")
    fn = TERMS[name]
    allowed = [p for p in inspect.signature(fn).parameters if p not in ("now", "before")]
    for key, value in params.items():
        if key not in allowed:
            raise UserError(f"reward {name!r} has no parameter {key!r}; valid: {', '.join(allowed) or 'none'}")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UserError(f"reward {name!r} parameter {key!r} must be a number, got {value!r}")
    accumulated = fn is diff_accumulated_waiting
    return Reward(
        lambda now, before: fn(now, before, **params),
        needs_vehicle_ids=fn in (throughput, time_loss) or accumulated,
        needs_accumulated_waiting=accumulated,
        needs_time_loss=fn is time_loss,
    )


def make_reward(name: str, params: dict[str, Any] | None = None) -> Reward:
    """`weighted` takes `terms: {reward_name: weight | {weight: w, params: {...}}}`."""
    params = dict(params or {})
    if name != "weighted":
        return _bind(name, params)
    terms = params.pop("terms", None)
    if params or not isinstance(terms, dict) or not terms:
        raise UserError("reward 'weighted' takes one parameter, terms: {reward_name: weight, ...}")
    parts: list[tuple[float, Reward]] = []
    for term, setting in terms.items():
        if term == "weighted":
            raise UserError("reward 'weighted' cannot contain itself")
        weight, term_params = (
            (setting.get("weight", 1.0), setting.get("params", {})) if isinstance(setting, dict) else (setting, {})
        )
        if not isinstance(weight, (int, float)):
            raise UserError(f"weight of reward term {term!r} must be a number, got {weight!r}")
        parts.append((float(weight), _bind(term, term_params)))
    return Reward(
        lambda now, before: sum(w * r(now, before) for w, r in parts),
        needs_vehicle_ids=any(r.needs_vehicle_ids for _, r in parts),
        needs_accumulated_waiting=any(r.needs_accumulated_waiting for _, r in parts),
        needs_time_loss=any(r.needs_time_loss for _, r in parts),
    )
