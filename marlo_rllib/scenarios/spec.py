"""Scenario files: one YAML per scenario, validated on load.

A scenario names a SUMO network and its traffic demand, the signal timing, and the default
observation and reward. Either it points at files (`net:`, `routes:`; paths relative to the YAML
file, or starting with `sumo-rl:` for the networks inside the sumo-rl package, RESCO's among
them), or it describes a generated grid (`network:`) and its traffic demands (`scenarios:`),
which `materialize()` builds into a cache (marlo_rllib.scenarios.generate).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from marlo_rllib.errors import UserError
from marlo_rllib.scenarios.generate import NetworkSpec, TrafficSpec

SUMO_RL_PREFIX = "sumo-rl:"
REPO_SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


class Timing(BaseModel):
    """Signal timing in simulated seconds. max_green is enforced: a green that reaches it is ended."""

    model_config = ConfigDict(extra="forbid")

    delta_time: int = Field(5, gt=0, description="seconds between two decisions (one env step)")
    yellow_time: int = Field(2, ge=0, description="yellow shown between two different greens")
    min_green: int = Field(5, ge=0, description="a green is held at least this long")
    max_green: int = Field(50, gt=0, description="a green is ended after this long")

    @model_validator(mode="after")
    def _consistent(self) -> Timing:
        if self.yellow_time >= self.delta_time:
            raise ValueError(f"yellow_time ({self.yellow_time}) must be shorter than delta_time ({self.delta_time})")
        if self.min_green > self.max_green:
            raise ValueError(f"min_green ({self.min_green}) must not exceed max_green ({self.max_green})")
        return self


class RewardSpec(BaseModel):
    """A reward by registry name, with its parameters (e.g. `{name: stopped-ratio, params: {alpha: 2}}`);
    the env's registry checks both (env.check_names)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class ScenarioSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    net: Path | None = None
    routes: list[Path] = Field(default_factory=list)
    network: NetworkSpec | None = None
    traffic: list[TrafficSpec] = Field(default_factory=list, description="`scenarios:` in the YAML")
    traffic_name: str | None = Field(None, exclude=True, description="the demand materialize() chose")
    step_length: float = Field(1.0, gt=0)
    begin: int = Field(0, ge=0, description="simulation time at which an episode starts")
    episode_seconds: int = Field(3600, gt=0)
    time_to_teleport: int = Field(
        -1, ge=-1, description="SUMO's --time-to-teleport for this scenario's episodes; -1: teleports off"
    )
    timing: Timing = Field(default_factory=Timing)
    # a name in the env's registry (env.check_names); phase: docs/LEARNING.md, "levers MAP phase observation"
    observation: str = "phase"
    reward: RewardSpec = Field(default_factory=lambda: RewardSpec(name="diff-accumulated-waiting"))
    source: Path | None = Field(None, exclude=True, description="the YAML file this came from")

    @field_validator("reward", mode="before")
    @classmethod
    def _reward_by_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _files_or_generated(self) -> ScenarioSpec:
        if self.network is None:
            if self.traffic:
                raise ValueError("`scenarios:` (traffic demands) needs a generated `network:`")
            if self.net is None or not self.routes:
                raise ValueError("a scenario needs `net:` and `routes:`, or a generated `network:` and `scenarios:`")
            return self
        if (
            self.net is not None
            or self.routes
            or "begin" in self.model_fields_set
            or "step_length" in self.model_fields_set
        ):
            raise ValueError(
                "a generated scenario takes no net, routes, begin or step_length: "
                "they come from `network:` and each entry of `scenarios:`"
            )
        names = [t.name for t in self.traffic]
        if not names:
            raise ValueError("a generated `network:` needs at least one entry under `scenarios:`")
        if len(set(names)) != len(names):
            raise ValueError(f"traffic scenario names repeat: {', '.join(names)}")
        if all(t.evaluation_only for t in self.traffic):
            raise ValueError("every traffic scenario is evaluation_only: none is left to train on")
        return self

    @property
    def end(self) -> int:
        return self.begin + self.episode_seconds

    @property
    def generated(self) -> bool:
        return self.network is not None

    @property
    def training_traffic(self) -> list[str]:
        return [t.name for t in self.traffic if not t.evaluation_only]

    @property
    def evaluation_traffic(self) -> list[str]:
        return [t.name for t in self.traffic if t.evaluation_only]

    def check_traffic(self, name: str, source: str) -> None:
        """A user's name for one of the traffic demands; `source` names the setting in the error."""
        names = [t.name for t in self.traffic]
        if name not in names:
            raise UserError(
                f"{source} {name!r}: {self.name} has "
                + (f"the traffic demands {', '.join(names)}" if names else "one traffic demand, unnamed")
            )

    def materialize(self, traffic: str | int | None = None) -> ScenarioSpec:
        """This spec with net, routes and begin filled in: for a generated scenario, built (or found
        in the cache) with one traffic demand. traffic: a name, or an index into the training
        demands (round-robin, so worker i can pass i); None is the first training demand."""
        if not self.generated or (self.traffic_name is not None and traffic in (None, self.traffic_name)):
            return self  # files already, or already built with the demand asked for
        from marlo_rllib.scenarios.generate import build

        if traffic is None or isinstance(traffic, int):
            chosen_name = self.training_traffic[(traffic or 0) % len(self.training_traffic)]
        elif traffic in [t.name for t in self.traffic]:
            chosen_name = traffic
        else:
            raise UserError(
                f"{self.name} has no traffic scenario {traffic!r}; valid: {', '.join(t.name for t in self.traffic)}"
            )
        chosen = next(t for t in self.traffic if t.name == chosen_name)
        assert self.network is not None
        folder, _ = build(self.name, self.network, self.traffic)
        return self.model_copy(
            update={
                "net": folder / "net.net.xml",
                "routes": [folder / f"{chosen.name}.rou.xml"],
                "begin": chosen.begin,
                "step_length": self.network.step_length,
                "traffic_name": chosen.name,
            }
        )


def _sumo_rl_dir() -> Path:
    spec = importlib.util.find_spec("sumo_rl")  # located, not imported: importing it needs SUMO_HOME
    if spec is None or not spec.submodule_search_locations:
        raise UserError("sumo-rl is not installed; it ships the RESCO networks (`pip install sumo-rl`)")
    return Path(list(spec.submodule_search_locations)[0])


def _resolve(path: str, base: Path) -> Path:
    if path.startswith(SUMO_RL_PREFIX):
        return _sumo_rl_dir() / path[len(SUMO_RL_PREFIX) :]
    return (base / path).resolve()


def validation_message(source: str, exc: ValidationError) -> str:
    error = exc.errors()[0]
    parts = ["scenarios" if i == 0 and part == "traffic" else str(part) for i, part in enumerate(error["loc"])]
    key = ".".join(parts) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}'"
    if error["type"] == "missing":
        return f"{source}: missing key '{key}'"
    message = error["msg"].removeprefix("Value error, ")
    if "input" in error and not isinstance(error["input"], dict):
        message += f" (got {error['input']!r})"
    return f"{source}: key '{key}': {message}"


def load_scenario_file(path: Path) -> ScenarioSpec:
    """Read, validate and resolve one scenario YAML; every mistake becomes a one-line UserError."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read scenario file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise UserError(f"{path}: a scenario file must be YAML text") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: malformed YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: a scenario file must be a mapping of keys to values")
    data.setdefault("name", path.stem)
    if "scenarios" in data:
        data["traffic"] = data.pop("scenarios")
    base = path.parent
    if isinstance(data.get("net"), str):
        data["net"] = _resolve(data["net"], base)
    if isinstance(data.get("routes"), str):
        data["routes"] = [data["routes"]]
    if isinstance(data.get("routes"), list):
        data["routes"] = [_resolve(r, base) if isinstance(r, str) else r for r in data["routes"]]
    try:
        spec = ScenarioSpec(**data, source=path)
    except ValidationError as exc:
        raise UserError(validation_message(str(path), exc)) from None
    for needed in [] if spec.generated else [spec.net, *spec.routes]:
        if needed is None or not needed.is_file():
            raise UserError(f"{path}: file not found: {needed}")
    return spec


def scenario_dirs() -> list[Path]:
    """Where scenarios are looked up: $MARLO_SCENARIOS (os.pathsep-separated), ./scenarios, the repo's."""
    extra = [Path(p) for p in os.environ.get("MARLO_SCENARIOS", "").split(os.pathsep) if p]
    dirs = [*extra, Path.cwd() / "scenarios", REPO_SCENARIOS]
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in unique:
            unique.append(d.resolve())
    return unique


def catalog() -> dict[str, Path]:
    """Scenario name -> YAML file; the first directory in `scenario_dirs()` wins."""
    found: dict[str, Path] = {}
    for directory in scenario_dirs():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def load_scenario(name_or_path: str | Path) -> ScenarioSpec:
    """A scenario by catalog name, or by the path of a YAML file."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        return load_scenario_file(Path(text))
    known = catalog()
    if text not in known:
        raise UserError(f"unknown scenario {text!r}; valid: {', '.join(sorted(known))}")
    return load_scenario_file(known[text])
