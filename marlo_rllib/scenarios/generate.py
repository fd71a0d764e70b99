"""Generated scenarios: a grid network and its traffic demands, built by SUMO's own tools.

    network (netgenerate, then netconvert)       traffic (randomTrips, then duarouter)
    ─────────────────────────────────────        ──────────────────────────────────────
    an N×N grid with fringe edges at the         `num_vehicles` a day, departures drawn from an
    border; `junctions_to_remove` inner          hourly profile; private cars between random
    junctions dropped (seeded); arterials        edges (a share with a rerouting device: the
    get more lanes; every junction left          "realtime" routing strategy), buses on fixed
    gets a traffic light                         lines from fringe to fringe

Builds are cached under a hash of the spec (and of the SUMO version); the same spec gives
byte-identical files (SUMO's header comment, which holds a date and absolute paths, is removed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from marlo_rllib import sumo
from marlo_rllib.errors import UserError

GENERATOR_VERSION = 1
DAY = 86_400

# Hourly departure weights, midnight to midnight.
DEPARTURE_PATTERNS: dict[str, list[float]] = {
    "uniform": [1.0] * 24,
    "rush_hour": [
        0.3,
        0.2,
        0.2,
        0.2,
        0.3,
        0.8,
        2.0,
        3.5,
        3.5,
        2.0,
        1.2,
        1.2,
        1.3,
        1.2,
        1.2,
        1.5,
        2.5,
        3.5,
        3.0,
        1.8,
        1.2,
        0.9,
        0.6,
        0.4,
    ],
    "off_peak": [
        0.4,
        0.3,
        0.2,
        0.2,
        0.3,
        0.5,
        0.8,
        1.0,
        1.1,
        1.3,
        1.5,
        1.6,
        1.6,
        1.6,
        1.5,
        1.4,
        1.3,
        1.2,
        1.1,
        1.0,
        0.9,
        0.8,
        0.6,
        0.5,
    ],
}
# traffic_light_strategy -> netconvert's --tls.layout and --tls.default-type. opposites: opposite
# approaches share a green, then a protected left-turn green; partial_opposites: the same without the
# protected left-turn green (lefts yield); incoming: one green per approach; actuated: opposites,
# gap-actuated.
TLS_LAYOUTS = {
    "opposites": ("opposites", "static"),
    "incoming": ("incoming", "static"),
    "partial_opposites": ("opposites", "static"),
    "actuated": ("opposites", "actuated"),
}


def _shares(text: str, valid: tuple[str, ...], field: str) -> dict[str, float]:
    """'passenger 90 public 10' -> {'passenger': 0.9, 'public': 0.1}."""
    parts = text.split()
    if len(parts) % 2 or not parts:
        raise ValueError(f"{field} takes pairs of name and percentage, e.g. '{valid[0]} 100'")
    shares: dict[str, float] = {}
    for name, value in zip(parts[::2], parts[1::2], strict=False):
        if name not in valid:
            raise ValueError(f"unknown {field} entry {name!r}; valid: {', '.join(valid)}")
        try:
            shares[name] = float(value)
        except ValueError:
            raise ValueError(f"{field}: {value!r} is not a number") from None
        if shares[name] < 0:
            raise ValueError(f"{field}: {name} must not be negative")
    if abs(sum(shares.values()) - 100) > 1e-6:
        raise ValueError(f"{field} percentages must add up to 100, got {sum(shares.values()):g}")
    return {name: value / 100 for name, value in shares.items()}


class NetworkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    network_seed: int
    grid_dimension: int = Field(ge=2, le=30)
    junctions_to_remove: int = Field(0, ge=0)
    block_size_m: float = Field(200.0, gt=20)
    lane_count: Literal["realistic"] | int = "realistic"
    step_length: float = Field(1.0, gt=0, le=10)
    traffic_light_strategy: Literal["opposites", "incoming", "partial_opposites", "actuated"] = "partial_opposites"

    @field_validator("lane_count")
    @classmethod
    def _lanes(cls, value):
        if isinstance(value, int) and not 1 <= value <= 5:
            raise ValueError("lane_count must be 'realistic' or 1 to 5")
        return value

    @model_validator(mode="after")
    def _removable(self) -> NetworkSpec:
        inner = (self.grid_dimension - 2) ** 2
        if self.junctions_to_remove > inner:
            raise ValueError(
                f"junctions_to_remove ({self.junctions_to_remove}) exceeds the {inner} inner junctions "
                f"of a {self.grid_dimension}x{self.grid_dimension} grid"
            )
        return self

    @property
    def signalised_junctions(self) -> int:
        return self.grid_dimension**2 - self.junctions_to_remove


class TrafficSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    num_vehicles: int = Field(ge=0, description="vehicles a day")
    private_traffic_seed: int
    public_traffic_seed: int
    departure_pattern: str | list[float] = "uniform"
    vehicle_types: str = "passenger 100"
    routing_strategy: str = "shortest 100"
    start_time_hour: float = Field(8.0, ge=0, lt=24)
    evaluation_only: bool = False

    @field_validator("departure_pattern")
    @classmethod
    def _pattern(cls, value):
        if isinstance(value, str) and value not in DEPARTURE_PATTERNS:
            raise ValueError(
                f"unknown departure_pattern {value!r}; valid: {', '.join(DEPARTURE_PATTERNS)}, "
                "or a list of 24 hourly weights"
            )
        if isinstance(value, list) and (len(value) != 24 or min(value) < 0 or sum(value) <= 0):
            raise ValueError("a custom departure_pattern is 24 non-negative hourly weights, not all zero")
        return value

    @field_validator("vehicle_types")
    @classmethod
    def _types(cls, value):
        _shares(value, ("passenger", "public"), "vehicle_types")
        return value

    @field_validator("routing_strategy")
    @classmethod
    def _routing(cls, value):
        _shares(value, ("shortest", "realtime"), "routing_strategy")
        return value

    @property
    def begin(self) -> int:
        return int(round(self.start_time_hour * 3600))

    @property
    def hourly_weights(self) -> list[float]:
        pattern = self.departure_pattern
        return list(DEPARTURE_PATTERNS[pattern] if isinstance(pattern, str) else pattern)


# ---- building ---------------------------------------------------------------------------------


def cache_root() -> Path:
    return Path(os.environ.get("MARLO_CACHE", Path.home() / ".cache" / "marlo")) / "scenarios"


def spec_hash(network: NetworkSpec, traffic: list[TrafficSpec]) -> str:
    payload = {
        "generator": GENERATOR_VERSION,
        "sumo": metadata.version("eclipse-sumo"),
        "network": network.model_dump(mode="json"),
        "traffic": [t.model_dump(mode="json") for t in traffic],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise UserError(f"{what} failed: {message[-1] if message else f'exit status {done.returncode}'}")


def _strip_header(path: Path) -> None:
    """Drop SUMO's leading comment (generation date, options with absolute paths)."""
    text = path.read_text()
    start = text.find("<!--")
    first_tag = text.find("<", text.find("?>") + 2 if text.startswith("<?xml") else 0)
    if start != -1 and start == first_tag:
        text = text[:start] + text[text.find("-->", start) + 3 :].lstrip("\n")
    path.write_text(text)


def _grid_position(node_id: str) -> tuple[int, int] | None:
    """netgenerate names grid junctions <column letter(s)><row number>, e.g. 'B3'."""
    letters = "".join(ch for ch in node_id if ch.isalpha())
    digits = node_id[len(letters) :]
    if not letters or not digits.isdigit() or not letters.isupper():
        return None
    column = 0
    for ch in letters:
        column = column * 26 + (ord(ch) - ord("A") + 1)
    return column - 1, int(digits)


def _line_of(start: str, end: str, grid: dict[str, tuple[int, int]]) -> int:
    """The row (of a horizontal edge) or column (of a vertical edge) an edge runs along; a fringe
    edge continues the row or column of the junction it attaches to."""
    a, b = grid.get(start), grid.get(end)
    if a and b:
        return a[1] if a[1] == b[1] else a[0]
    junction, fringe = (a, end) if a else (b, start)
    assert junction is not None, f"edge {start} -> {end} touches no grid junction"
    return junction[1] if fringe.startswith(("left", "right")) else junction[0]


def build_network(network: NetworkSpec, out: Path) -> Path:
    n, length = network.grid_dimension, network.block_size_m
    work = Path(tempfile.mkdtemp(prefix="marlo-net-"))
    try:
        plain = work / "plain"
        _run(
            [
                sumo.binary("netgenerate"),
                "--grid",
                "--grid.number",
                str(n),
                "--grid.length",
                str(length),
                "--grid.attach-length",
                str(length),
                "--default.lanenumber",
                "1",
                "--seed",
                str(network.network_seed),
                "--no-turnarounds",
                "true",
                "--plain-output-prefix",
                str(plain),
                "-o",
                str(work / "raw.net.xml"),
            ],
            "netgenerate",
        )
        nodes, edges = ET.parse(f"{plain}.nod.xml"), ET.parse(f"{plain}.edg.xml")
        positions = {node.attrib["id"]: _grid_position(node.attrib["id"]) for node in nodes.getroot().iter("node")}
        grid = {node_id: pos for node_id, pos in positions.items() if pos is not None}
        inner = sorted(node_id for node_id, (x, y) in grid.items() if 0 < x < n - 1 and 0 < y < n - 1)
        rng = np.random.default_rng(network.network_seed)
        removed = set(rng.choice(inner, size=network.junctions_to_remove, replace=False).tolist()) if inner else set()

        arterial_lines = {i for i in range(n) if i % 3 == 1}  # every third row and column carries more lanes
        for node in list(nodes.getroot().iter("node")):
            if node.get("id") in removed:
                nodes.getroot().remove(node)
            elif node.get("id") in grid:
                node.set("type", "traffic_light")
        for edge in list(edges.getroot().iter("edge")):
            ends = (edge.attrib["from"], edge.attrib["to"])
            if removed & set(ends):
                edges.getroot().remove(edge)
                continue
            if network.lane_count == "realistic":
                lanes = 2 if _line_of(*ends, grid) in arterial_lines else 1
            else:
                lanes = network.lane_count
            edge.set("numLanes", str(lanes))
        nodes.write(work / "grid.nod.xml")
        edges.write(work / "grid.edg.xml")

        layout, kind = TLS_LAYOUTS[network.traffic_light_strategy]
        command = [
            sumo.binary("netconvert"),
            "--node-files",
            str(work / "grid.nod.xml"),
            "--edge-files",
            str(work / "grid.edg.xml"),
            "--tls.layout",
            layout,
            "--tls.default-type",
            kind,
            "--no-turnarounds",
            "true",
            "--seed",
            str(network.network_seed),
            "-o",
            str(out),
        ]
        if network.traffic_light_strategy == "partial_opposites":
            command += ["--tls.left-green.time", "0"]
        _run(command, "netconvert")
        _strip_header(out)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _departures(traffic: TrafficSpec, count: int, seed: int) -> np.ndarray:
    """`count` departure times in seconds after midnight, drawn from the hourly profile, sorted."""
    rng = np.random.default_rng(seed)
    weights = np.asarray(traffic.hourly_weights, dtype=float)
    hours = rng.choice(24, size=count, p=weights / weights.sum())
    return np.sort(hours * 3600 + rng.uniform(0, 3600, size=count)).round(1)


def _bus_lines(net: Path, seed: int) -> list[tuple[str, str]]:
    """Bus lines: a third of the rows and columns (at least one), chosen by seed, each from its
    left (bottom) fringe edge to its right (top) fringe edge."""
    edges = [e for e in ET.parse(net).getroot().iter("edge") if e.get("function") is None]
    entries = {e.attrib["from"]: e.attrib["id"] for e in edges if e.get("from", "").startswith(("left", "bottom"))}
    exits = {e.attrib["to"]: e.attrib["id"] for e in edges if e.get("to", "").startswith(("right", "top"))}
    pairs = []
    for start in sorted(entries):
        end = start.replace("left", "right", 1) if start.startswith("left") else start.replace("bottom", "top", 1)
        if end in exits:
            pairs.append((entries[start], exits[end]))
    if not pairs:
        return []
    chosen = np.random.default_rng(seed).choice(len(pairs), size=max(1, len(pairs) // 3), replace=False)
    return [pairs[i] for i in sorted(chosen)]


def build_traffic(net: Path, traffic: TrafficSpec, out: Path) -> Path:
    types = _shares(traffic.vehicle_types, ("passenger", "public"), "vehicle_types")
    routing = _shares(traffic.routing_strategy, ("shortest", "realtime"), "routing_strategy")
    private = int(round(traffic.num_vehicles * types.get("passenger", 0.0)))
    public = traffic.num_vehicles - private
    work = Path(tempfile.mkdtemp(prefix="marlo-demand-"))
    try:
        trips = work / "trips.xml"
        root = ET.Element("routes")
        ET.SubElement(root, "vType", id="passenger", vClass="passenger")
        realtime = ET.SubElement(root, "vType", id="passenger_realtime", vClass="passenger")
        ET.SubElement(realtime, "param", key="has.rerouting.device", value="true")
        ET.SubElement(root, "vType", id="bus", vClass="bus", length="12", maxSpeed="17")
        items: list[tuple[float, ET.Element]] = []
        if private:
            random_trips = work / "random.trips.xml"
            _run(
                [
                    sys.executable,
                    str(sumo.tools_dir() / "randomTrips.py"),
                    "-n",
                    str(net),
                    "-o",
                    str(random_trips),
                    "-r",
                    str(work / "random.rou.xml"),
                    "--seed",
                    str(traffic.private_traffic_seed),
                    "-b",
                    "0",
                    "-e",
                    str(private),
                    "-p",
                    "1",
                    "--fringe-factor",
                    "5",
                    "--min-distance",
                    str(300),
                    "--validate",
                    "--vclass",
                    "passenger",
                ],
                "randomTrips",
            )
            generated = [t for t in ET.parse(random_trips).getroot().iter("trip")]
            rng = np.random.default_rng(traffic.private_traffic_seed + 1)
            departs = _departures(traffic, len(generated), traffic.private_traffic_seed)
            rerouting = rng.random(len(generated)) < routing.get("realtime", 0.0)
            for i, (trip, depart, reroute) in enumerate(zip(generated, departs, rerouting, strict=True)):
                element = ET.Element(
                    "trip",
                    id=f"car{i}",
                    type="passenger_realtime" if reroute else "passenger",
                    depart=f"{depart:.1f}",
                    attrib={"from": trip.attrib["from"], "to": trip.attrib["to"]},
                )
                element.set("departLane", "best")
                items.append((float(depart), element))
        lines = _bus_lines(net, traffic.public_traffic_seed) if public else []
        if public and not lines:
            raise UserError(f"traffic {traffic.name}: the network has no fringe-to-fringe bus line")
        for line_index, (first, last) in enumerate(lines):
            buses = public // len(lines) + (1 if line_index < public % len(lines) else 0)
            headway = DAY / max(buses, 1)
            offset = np.random.default_rng(traffic.public_traffic_seed + line_index).uniform(0, headway)
            for k in range(buses):
                depart = round(offset + k * headway, 1)
                element = ET.Element(
                    "trip",
                    id=f"bus{line_index}_{k}",
                    type="bus",
                    depart=f"{depart:.1f}",
                    attrib={"from": first, "to": last, "line": f"line{line_index}"},
                )
                items.append((depart, element))
        for _, element in sorted(items, key=lambda item: item[0]):
            root.append(element)
        ET.ElementTree(root).write(trips)
        _run(
            [
                sumo.binary("duarouter"),
                "-n",
                str(net),
                "--route-files",
                str(trips),
                "-o",
                str(out),
                "--seed",
                str(traffic.private_traffic_seed),
                "--ignore-errors",
                "true",
                "--no-step-log",
                "true",
                "--no-warnings",
                "true",
                "--alternatives-output",
                str(work / "routes.alt.xml"),
            ],
            "duarouter",
        )
        _strip_header(out)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build(name: str, network: NetworkSpec, traffic: list[TrafficSpec], force: bool = False) -> tuple[Path, bool]:
    """Builds (or finds in the cache) the net and every traffic demand. Returns the folder and
    whether it was a cache hit. Files: net.net.xml and <traffic name>.rou.xml."""
    folder = cache_root() / f"{name}-{spec_hash(network, traffic)}"
    if (folder / "complete").exists() and not force:
        return folder, True
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    try:
        net = build_network(network, staging / "net.net.xml")
        for item in traffic:
            build_traffic(net, item, staging / f"{item.name}.rou.xml")
        (staging / "complete").write_text("")
        if force and folder.exists():
            shutil.rmtree(folder)
        try:
            staging.rename(folder)
        except OSError:
            pass  # another process finished the same build first: its files are identical
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder, False
