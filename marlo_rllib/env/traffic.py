"""What the env knows after each step: signal states and per-junction lane traffic."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Signal:
    """The controller-side state of one traffic light."""

    green: int = 0  # index into Junction.greens
    green_time: float = 0.0  # seconds the current green has been shown


@dataclass(frozen=True)
class JunctionTraffic:
    in_count: np.ndarray  # vehicles on each incoming lane
    in_halting: np.ndarray  # of which halting (speed < 0.1 m/s)
    in_waiting: np.ndarray  # summed waiting time of the vehicles on each incoming lane [s]
    out_count: np.ndarray
    vehicles: frozenset[str] = field(default_factory=frozenset)  # ids on incoming lanes, when tracked
    # waiting time the vehicles on the incoming lanes accumulated since they reached them [s], when tracked
    accumulated_waiting: float = 0.0
    # time the vehicles SUMO has not yet inserted, whose route meets this light first, have waited [s], when tracked
    pending_waiting: float = 0.0
    # time the vehicles on the incoming lanes lost (SUMO's timeLoss) during the last step [s], when tracked
    time_loss: float = 0.0

    @classmethod
    def empty(cls, n_in: int, n_out: int) -> JunctionTraffic:
        zeros_in = np.zeros(n_in, dtype=np.float32)
        return cls(zeros_in, zeros_in, zeros_in, np.zeros(n_out, dtype=np.float32))
