"""`marlo scenarios check`: what would make a scenario a poor place to train or compare.

Errors (the scenario is broken): a signal program without a yellow phase; a controlled link that
no phase ever gives green; a route file with no departure in the episode window.
Warnings (worth knowing): vehicles that could not be inserted, and teleports, in one episode under
the net's own fixed-time programs (with SUMO's default 300 s teleport time, as a detector).
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


def check_fixed_time_episode(spec: ScenarioSpec) -> list[Finding]:
    from marlo_rllib.env import TrafficSignalEnv

    env = TrafficSignalEnv(spec, program="fixed", time_to_teleport=300)
    try:
        env.reset(seed=0)
        infos: dict = {}
        while env.agents:
            _, _, _, _, infos = env.step({})
        metrics = next(iter(infos.values()))["metrics"]
        never_inserted = sum(
            1 for _, e in ET.iterparse(env.tripinfo_file) if e.tag == "tripinfo" and float(e.get("depart", -1)) < 0
        )
    finally:
        env.close()
    findings = []
    label = f"fixed-time episode {spec.begin}-{spec.end} s"
    if never_inserted:
        findings.append(
            Finding("warning", f"{label}: {never_inserted} of {metrics['vehicles']} vehicles could not be inserted")
        )
    if metrics["teleports"]:
        findings.append(Finding("warning", f"{label}: {metrics['teleports']} teleports (jams of 300 s or more)"))
    return findings


def check_scenario(spec: ScenarioSpec, episode_seconds: int | None = None) -> dict[str | None, list[Finding]]:
    """Findings per traffic demand (one entry, None, for a scenario with fixed route files)."""
    if episode_seconds:
        spec = spec.model_copy(update={"episode_seconds": episode_seconds})
    report: dict[str | None, list[Finding]] = {}
    for index, name in enumerate([t.name for t in spec.traffic] or [None]):
        built = spec.materialize(name)
        assert built.net is not None  # materialized
        findings = check_signals(built.net) if index == 0 else []
        findings += check_routes(built)
        if not any(f.level == "error" for f in findings):
            findings += check_fixed_time_episode(built)
        report[name] = findings
    return report
