"""Finding SUMO (the eclipse-sumo wheel) and starting simulations on libsumo or TraCI.

Nobody has to export SUMO_HOME: it is taken from the wheel unless the user set one.
libsumo runs one simulation per process and is much faster; TraCI talks to a `sumo`
subprocess, so several simulations (and sumo-gui) can live in one process.
"""

from __future__ import annotations

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
    if not home:
        try:
            import sumo  # the eclipse-sumo wheel
        except ImportError as exc:
            raise UserError("SUMO not found: install it with `pip install eclipse-sumo libsumo`") from exc
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
        libsumo.start(cmd)
        return libsumo
    if backend == "traci":
        import traci

        traci.start(cmd, label=label)
        return traci.getConnection(label)
    raise UserError(f"unknown SUMO backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
