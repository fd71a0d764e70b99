"""Episode metrics from SUMO's own outputs (tripinfo and statistics) and from the env's per-step counts.

delay follows RESCO: per vehicle timeLoss + departDelay. Trips unfinished at the episode end are
written with their time loss so far (tripinfo-output.write-unfinished); vehicles never inserted are
written with departDelay = episode end - scheduled departure (tripinfo-output.write-undeparted).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

METRIC_NAMES = (
    "delay",
    "trip_time",
    "waiting_time",
    "queue_length",
    "stopped_ratio",
    "throughput",
    "teleports",
    "vehicles",
)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


@dataclass(frozen=True)
class TripSummary:
    delay: float  # mean over every vehicle of the episode (arrived, running, never inserted) [s]
    trip_time: float  # mean duration of the trips that arrived [s]
    waiting_time: float  # mean time spent halting, over vehicles that departed [s]
    throughput: int  # vehicles that arrived
    vehicles: int  # vehicles in the tripinfo file


def read_tripinfo(path: Path) -> TripSummary:
    delays: list[float] = []
    trip_times: list[float] = []
    waits: list[float] = []
    for _, element in ET.iterparse(path):
        if element.tag != "tripinfo":
            continue
        delays.append(float(element.get("timeLoss", 0)) + float(element.get("departDelay", 0)))
        if float(element.get("depart", -1)) >= 0:
            waits.append(float(element.get("waitingTime", 0)))
        if float(element.get("arrival", -1)) >= 0:
            trip_times.append(float(element.get("duration", 0)))
        element.clear()
    return TripSummary(_mean(delays), _mean(trip_times), _mean(waits), len(trip_times), len(delays))


def read_teleports(statistics_path: Path) -> int:
    node = ET.parse(statistics_path).getroot().find("teleports")
    return int(node.get("total", 0)) if node is not None else 0


@dataclass(frozen=True)
class EpisodeMetrics:
    delay: float
    trip_time: float
    waiting_time: float
    queue_length: float  # halting vehicles per junction, on its incoming lanes, mean over decisions
    stopped_ratio: float  # halting / present on controlled incoming lanes, mean over decisions
    throughput: int
    teleports: int
    vehicles: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class StepCounts:
    """Per-decision samples of the controlled lanes, averaged into the episode's queue and stopped ratio."""

    queue_sum: float = 0.0
    stopped_sum: float = 0.0
    samples: int = 0

    def add(self, halting_per_junction: float, halting: float, present: float) -> None:
        self.queue_sum += float(halting_per_junction)
        self.stopped_sum += float(halting / present) if present else 0.0
        self.samples += 1

    def episode(self, trips: TripSummary, teleports: int) -> EpisodeMetrics:
        n = max(self.samples, 1)
        return EpisodeMetrics(
            delay=trips.delay,
            trip_time=trips.trip_time,
            waiting_time=trips.waiting_time,
            queue_length=self.queue_sum / n,
            stopped_ratio=self.stopped_sum / n,
            throughput=trips.throughput,
            teleports=teleports,
            vehicles=trips.vehicles,
        )
