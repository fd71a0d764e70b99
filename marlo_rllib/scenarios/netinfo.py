"""Facts read straight from a .net.xml file, without starting SUMO."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NetSummary:
    junctions: int  # real junctions: neither internal nor dead ends
    traffic_lights: int  # signal programs; each one is an agent


def summarize_net(net_file: Path) -> NetSummary:
    junctions = 0
    tls: set[str] = set()
    for _, element in ET.iterparse(net_file):
        if element.tag == "junction" and element.get("type") not in ("internal", "dead_end"):
            junctions += 1
        elif element.tag == "tlLogic":
            tls.add(element.get("id", ""))
        element.clear()
    return NetSummary(junctions=junctions, traffic_lights=len(tls))
