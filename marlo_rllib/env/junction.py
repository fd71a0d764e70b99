"""One signalised junction (one agent): its green phases, yellow transitions and lanes.

Read once per simulation start from SUMO itself, so the structure is exactly what SUMO runs.
Several SUMO junctions may share one traffic light; the traffic light is the agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

VEHICLE_SPACE_M = 7.5  # a car's length plus its minimum gap: lane capacity = length / this


@dataclass
class Junction:
    id: str
    greens: list[str]  # the program's distinct green states, in program order
    in_lanes: list[str]  # controlled incoming lanes, in link order, without repeats
    out_lanes: list[str]
    links: list[tuple[int, int]]  # (index in in_lanes, index in out_lanes) per controlled movement
    serves: np.ndarray  # (greens, links): 1 where a green gives the movement right of way
    in_capacity: np.ndarray  # vehicles that fit on each incoming lane
    out_capacity: np.ndarray
    in_edges: set[str] = field(default_factory=set)
    out_edges: set[str] = field(default_factory=set)
    neighbours: list[str] = field(default_factory=list)  # traffic lights one edge away, up or downstream
    in_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # rows in the env's lane table
    out_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _yellows: dict[tuple[int, int], str] = field(default_factory=dict, repr=False)

    @property
    def n_greens(self) -> int:
        return len(self.greens)

    @property
    def link_in(self) -> np.ndarray:
        """Per movement, its incoming lane's index in in_lanes."""
        return self._link_lanes[0]

    @property
    def link_out(self) -> np.ndarray:
        return self._link_lanes[1]

    def __post_init__(self) -> None:
        self._link_lanes = np.array(self.links, dtype=np.int64).reshape(-1, 2).T

    def yellow(self, current: int, target: int) -> str:
        """The transition state: every movement that loses its green shows yellow."""
        key = (current, target)
        if key not in self._yellows:
            old, new = self.greens[current], self.greens[target]
            self._yellows[key] = "".join("y" if o in "Gg" and n in "rs" else o for o, n in zip(old, new, strict=True))
        return self._yellows[key]

    def green_index(self, state: str) -> int | None:
        try:
            return self.greens.index(state)
        except ValueError:
            return None


def is_green(state: str) -> bool:
    return "y" not in state.lower() and any(c in "Gg" for c in state)


def read_junction(conn: Any, tls_id: str) -> Junction:
    program = conn.trafficlight.getProgram(tls_id)
    logics = conn.trafficlight.getAllProgramLogics(tls_id)
    logic = next((lg for lg in logics if lg.programID == program), logics[0])
    greens = list(dict.fromkeys(p.state for p in logic.phases if is_green(p.state)))
    if not greens:
        raise ValueError(f"traffic light {tls_id!r} has no green phase in program {program!r}")

    in_lanes: dict[str, int] = {}
    out_lanes: dict[str, int] = {}
    links: dict[tuple[int, int], list[int]] = {}  # movement -> the signal indices that control it
    for signal_index, link_group in enumerate(conn.trafficlight.getControlledLinks(tls_id)):
        for in_lane, out_lane, _via in link_group:
            i = in_lanes.setdefault(in_lane, len(in_lanes))
            o = out_lanes.setdefault(out_lane, len(out_lanes))
            links.setdefault((i, o), []).append(signal_index)
    serves = np.array(
        [[any(green[s] in "Gg" for s in signals) for signals in links.values()] for green in greens], dtype=np.float32
    )

    def capacity(lanes: dict[str, int]) -> np.ndarray:
        return np.array([max(conn.lane.getLength(lane) / VEHICLE_SPACE_M, 1.0) for lane in lanes], dtype=np.float32)

    return Junction(
        id=tls_id,
        greens=greens,
        in_lanes=list(in_lanes),
        out_lanes=list(out_lanes),
        links=list(links),
        serves=serves,
        in_capacity=capacity(in_lanes),
        out_capacity=capacity(out_lanes),
        in_edges={conn.lane.getEdgeID(lane) for lane in in_lanes},
        out_edges={conn.lane.getEdgeID(lane) for lane in out_lanes},
    )


def link_neighbours(junctions: dict[str, Junction]) -> None:
    """Two traffic lights are neighbours when an edge leaves one and enters the other."""
    for a in junctions.values():
        a.neighbours = sorted(
            b.id for b in junctions.values() if b.id != a.id and (a.out_edges & b.in_edges or b.out_edges & a.in_edges)
        )
