"""`marlo scenarios check`: what would make a scenario a poor place to train or compare.

The files' errors (scenarios/check.py), then, where they pass, warnings from one episode under the
net's own fixed-time programs (with SUMO's default 300 s teleport time, as a detector): vehicles
that could not be inserted, and teleports.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from marlo_rllib.scenarios.check import Finding, check_routes, check_signals
from marlo_rllib.scenarios.spec import ScenarioSpec


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
    from marlo_rllib.env import check_names

    check_names(spec)
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
