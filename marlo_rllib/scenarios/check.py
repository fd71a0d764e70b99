"""What the files alone say is broken in a scenario (errors): a signal program without a yellow
phase; a controlled link that no phase ever gives green; a route file with no departure in the
episode window. `marlo scenarios check` adds an episode's findings (evaluation/scenario_check.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from marlo_rllib.scenarios.spec import ScenarioSpec


@dataclass(frozen=True)
class Finding:
    level: str  # "error" or "warning"
    message: str


def check_signals(net: Path) -> list[Finding]:
    root = ET.parse(net).getroot()
    link_lanes: dict[tuple[str, int], str] = {}
    for connection in root.iter("connection"):
        if connection.get("tl") is not None:
            key = (connection.attrib["tl"], int(connection.attrib["linkIndex"]))
            link_lanes.setdefault(key, f"{connection.get('from')}_{connection.get('fromLane')}")
    findings = []
    for logic in root.iter("tlLogic"):
        tls, program = logic.attrib["id"], logic.get("programID")
        states = [phase.attrib["state"] for phase in logic.iter("phase")]
        if not any("y" in state.lower() for state in states):
            findings.append(Finding("error", f"traffic light {tls} (program {program}) has no yellow phase"))
        for index in range(len(states[0]) if states else 0):
            if not any(state[index] in "Gg" for state in states):
                lane = link_lanes.get((tls, index), "?")
                findings.append(
                    Finding("error", f"traffic light {tls}: link {index} (from lane {lane}) never gets green")
                )
    return findings


def _departures(route_file: Path) -> list[float]:
    times = []
    for _, element in ET.iterparse(route_file):
        if element.tag in ("vehicle", "trip", "person"):
            depart = element.get("depart", "0")
            times.append(float(depart) if depart.replace(".", "", 1).isdigit() else 0.0)
        elif element.tag == "flow":
            times.append(float(element.get("begin", "0")))
    return times


def check_routes(spec: ScenarioSpec) -> list[Finding]:
    findings = []
    for route_file in spec.routes:
        inside = [t for t in _departures(route_file) if spec.begin <= t < spec.end]
        if not inside:
            findings.append(
                Finding(
                    "error", f"{route_file.name}: no vehicle departs in the episode window {spec.begin}-{spec.end} s"
                )
            )
    return findings
