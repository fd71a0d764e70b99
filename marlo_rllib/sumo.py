"""Finding SUMO (the eclipse-sumo wheel) and starting simulations on libsumo or TraCI.

Nobody has to export SUMO_HOME: it is taken from the wheel unless the user set one.
libsumo runs one simulation per process and is much faster; TraCI talks to a `sumo`
subprocess, so several simulations (and sumo-gui) can live in one process.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from marlo_rllib.errors import UserError

BACKENDS = ("libsumo", "traci")


def sumo_home() -> Path:
    """SUMO's home: $SUMO_HOME if set, else the eclipse-sumo wheel's folder. Also exports it for sumo-rl."""
    home = os.environ.get("SUMO_HOME")
    # importing libsumo's wheel sets SUMO_HOME to its own data-only folder, without bin/ and tools/
    if not home or not os.path.isdir(os.path.join(home, "bin")):
        try:
            import sumo  # the eclipse-sumo wheel
        except ImportError as exc:
            if not home:
                raise UserError("SUMO not found: install it with `pip install eclipse-sumo libsumo`") from exc
        else:
            home = sumo.SUMO_HOME
            os.environ["SUMO_HOME"] = home
    tools = os.path.join(home, "tools")
    if tools not in sys.path:
        sys.path.append(tools)
    return Path(home)


def binary(name: str = "sumo") -> str:
    """Path of a SUMO program (sumo, sumo-gui, netgenerate, netconvert, duarouter, ...)."""
    candidate = sumo_home() / "bin" / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise UserError(f"SUMO program {name!r} not found in {candidate.parent} or on PATH")
    return found


def tools_dir() -> Path:
    return sumo_home() / "tools"


def _inputs(cmd: list[str]) -> str:
    files = [
        cmd[i + 1] for i, arg in enumerate(cmd[:-1]) if arg in ("--net-file", "--route-files", "--additional-files")
    ]
    return ", ".join(files) or "the simulation"


@functools.lru_cache(maxsize=64)
def _xml_error(path: str, mtime_ns: int, size: int) -> str | None:
    from xml.parsers import expat

    parser = expat.ParserCreate()
    try:
        with open(path, "rb") as stream:
            parser.ParseFile(stream)
    except expat.ExpatError as exc:
        return str(exc)
    return None


def check_xml(paths: list[Path]) -> None:
    """SUMO crashes the whole process on some malformed XML: each input file must parse first."""
    for path in paths:
        try:
            stat = path.stat()
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror}") from None
        error = _xml_error(str(path), stat.st_mtime_ns, stat.st_size)
        if error:
            raise UserError(f"{path} is not valid XML: {error}")


def start(cmd: list[str], backend: str, label: str) -> Any:
    """Start a simulation and return the connection: the libsumo module, or a traci.Connection."""
    sumo_home()
    if backend == "libsumo":
        import libsumo

        if libsumo.simulation.isLoaded():
            raise RuntimeError(
                "libsumo runs one simulation per process and one is already loaded here: "
                "close the other environment, or use backend='traci'"
            )
        try:
            libsumo.start(cmd)
        except libsumo.TraCIException as exc:
            raise UserError(f"SUMO cannot load {_inputs(cmd)}: {str(exc).strip().splitlines()[0]}") from None
        return libsumo
    if backend == "traci":
        import traci

        try:
            traci.start(cmd, label=label)
        except (traci.TraCIException, traci.FatalTraCIError) as exc:
            raise UserError(f"SUMO cannot load {_inputs(cmd)}: {str(exc).strip().splitlines()[0]}") from None
        return traci.getConnection(label)
    raise UserError(f"unknown SUMO backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
