"""Observation functions, chosen by name.

Each one lays its vector out in blocks (phase one-hot, lanes, neighbours) whose widths come from
a Layout. With shared spaces every junction gets the network's largest layout, so a block means
the same thing for every junction and the padding is zeros at the end of each block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from marlo_rllib.env.junction import Junction
from marlo_rllib.env.traffic import JunctionTraffic, Signal


@dataclass(frozen=True)
class Layout:
    greens: int
    lanes: int
    neighbours: int

    @classmethod
    def of(cls, junction: Junction) -> Layout:
        return cls(junction.n_greens, len(junction.in_lanes), len(junction.neighbours))

    @classmethod
    def widest(cls, layouts: list[Layout]) -> Layout:
        return cls(
            *(
                max(values)
                for values in zip(*((each.greens, each.lanes, each.neighbours) for each in layouts), strict=True)
            )
        )


@dataclass(frozen=True)
class StepContext:
    junctions: dict[str, Junction]
    signals: dict[str, Signal]
    traffic: dict[str, JunctionTraffic]
    min_green: float


class Observation(Protocol):
    low: float

    def size(self, layout: Layout) -> int: ...

    def __call__(self, ctx: StepContext, agent: str, layout: Layout) -> np.ndarray: ...


def _padded(values: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros(width, dtype=np.float32)
    out[: len(values)] = values
    return out


def _one_hot(index: int, width: int) -> np.ndarray:
    out = np.zeros(width, dtype=np.float32)
    out[index] = 1.0
    return out


def _phase_blocks(ctx: StepContext, agent: str, layout: Layout) -> list[np.ndarray]:
    signal = ctx.signals[agent]
    can_switch = np.float32(signal.green_time >= ctx.min_green)
    return [_one_hot(signal.green, layout.greens), np.array([can_switch], dtype=np.float32)]


def _queue_ratio(ctx: StepContext, agent: str) -> np.ndarray:
    return np.minimum(ctx.traffic[agent].in_halting / ctx.junctions[agent].in_capacity, 1.0)


class LocalObservation:
    """sumo-rl's default: phase one-hot, min-green passed, lane density, lane queue."""

    low = 0.0

    def size(self, layout: Layout) -> int:
        return layout.greens + 1 + 2 * layout.lanes

    def __call__(self, ctx: StepContext, agent: str, layout: Layout) -> np.ndarray:
        junction, traffic = ctx.junctions[agent], ctx.traffic[agent]
        density = np.minimum(traffic.in_count / junction.in_capacity, 1.0)
        return np.concatenate(
            [
                *_phase_blocks(ctx, agent, layout),
                _padded(density, layout.lanes),
                _padded(_queue_ratio(ctx, agent), layout.lanes),
            ]
        )


class NeighbourObservation(LocalObservation):
    """The local observation plus each neighbouring traffic light's green phase and mean queue."""

    def size(self, layout: Layout) -> int:
        return super().size(layout) + layout.neighbours * (layout.greens + 1)

    def __call__(self, ctx: StepContext, agent: str, layout: Layout) -> np.ndarray:
        blocks = [super().__call__(ctx, agent, layout)]
        for neighbour in ctx.junctions[agent].neighbours:
            blocks.append(_one_hot(ctx.signals[neighbour].green, layout.greens))
            blocks.append(np.array([_queue_ratio(ctx, neighbour).mean()], dtype=np.float32))
        return _padded(np.concatenate(blocks), self.size(layout))


class PressureObservation:
    """Phase one-hot, min-green passed, and per incoming lane its density minus its exits' density."""

    low = -1.0

    def size(self, layout: Layout) -> int:
        return layout.greens + 1 + layout.lanes

    def __call__(self, ctx: StepContext, agent: str, layout: Layout) -> np.ndarray:
        junction, traffic = ctx.junctions[agent], ctx.traffic[agent]
        in_density = np.minimum(traffic.in_count / junction.in_capacity, 1.0)
        out_density = np.minimum(traffic.out_count / junction.out_capacity, 1.0)
        n_in = len(in_density)
        exit_density = np.bincount(junction.link_in, weights=out_density[junction.link_out], minlength=n_in)
        exits = np.bincount(junction.link_in, minlength=n_in)
        pressure = (in_density - exit_density / np.maximum(exits, 1)).astype(np.float32)
        return np.concatenate([*_phase_blocks(ctx, agent, layout), _padded(pressure, layout.lanes)])


PHASE_FEATURES = 4


class PhaseObservation:
    """Per green phase, what choosing it would serve: [is the current green, mean queue ratio, mean
    density and mean pressure (density in minus density out) of the movements it gives right of
    way], phase after phase, then the min-green-passed flag. Every junction's phases are described
    the same way whatever its lanes, so one network can score the phases of any junction
    (models/phase.py); padded phases are zeros."""

    low = -1.0

    def size(self, layout: Layout) -> int:
        return layout.greens * PHASE_FEATURES + 1

    def __call__(self, ctx: StepContext, agent: str, layout: Layout) -> np.ndarray:
        junction, traffic, signal = ctx.junctions[agent], ctx.traffic[agent], ctx.signals[agent]
        queue = _queue_ratio(ctx, agent)[junction.link_in]
        density = np.minimum(traffic.in_count / junction.in_capacity, 1.0)[junction.link_in]
        out_density = np.minimum(traffic.out_count / junction.out_capacity, 1.0)[junction.link_out]
        served = junction.serves / np.maximum(junction.serves.sum(axis=1, keepdims=True), 1)  # mean over movements
        phases = np.zeros((layout.greens, PHASE_FEATURES), dtype=np.float32)
        phases[signal.green, 0] = 1.0
        phases[: junction.n_greens, 1] = served @ queue
        phases[: junction.n_greens, 2] = served @ density
        phases[: junction.n_greens, 3] = served @ (density - out_density)
        can_switch = np.float32(signal.green_time >= ctx.min_green)
        return np.concatenate([phases.ravel(), np.array([can_switch], dtype=np.float32)])


OBSERVATIONS: dict[str, Callable[[], Observation]] = {
    "phase": PhaseObservation,
    "default": LocalObservation,
    "neighbors": NeighbourObservation,
    "pressure": PressureObservation,
}
