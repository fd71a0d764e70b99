"""Scenario files: one YAML per scenario, validated on load.

A scenario names a SUMO network and its traffic demand, the signal timing, and the default
observation and reward. Paths are relative to the YAML file, or start with `sumo-rl:` for the
networks that ship inside the sumo-rl package (the RESCO benchmark among them).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from marlo_rllib.errors import UserError

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
    def _consistent(self) -> "Timing":
        if self.yellow_time >= self.delta_time:
            raise ValueError(f"yellow_time ({self.yellow_time}) must be shorter than delta_time ({self.delta_time})")
        if self.min_green > self.max_green:
            raise ValueError(f"min_green ({self.min_green}) must not exceed max_green ({self.max_green})")
        return self


class RewardSpec(BaseModel):
    """A reward by registry name, with its parameters (e.g. `{name: stopped-ratio, params: {alpha: 2}}`)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _buildable(self) -> "RewardSpec":
        from marlo_rllib.env.rewards import make_reward

        try:
            make_reward(self.name, self.params)
        except UserError as exc:
            raise ValueError(str(exc)) from None
        return self


class ScenarioSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    net: Path
    routes: list[Path] = Field(min_length=1)
    begin: int = Field(0, ge=0, description="simulation time at which an episode starts")
    episode_seconds: int = Field(3600, gt=0)
    timing: Timing = Field(default_factory=Timing)
    observation: str = "default"
    reward: RewardSpec = Field(default_factory=lambda: RewardSpec(name="diff-waiting-time"))
    source: Path | None = Field(None, exclude=True, description="the YAML file this came from")

    @field_validator("reward", mode="before")
    @classmethod
    def _reward_by_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("observation")
    @classmethod
    def _known_observation(cls, name: str) -> str:
        from marlo_rllib.env.observations import OBSERVATIONS

        if name not in OBSERVATIONS:
            raise ValueError(f"unknown observation {name!r}; valid: {', '.join(sorted(OBSERVATIONS))}")
        return name

    @property
    def end(self) -> int:
        return self.begin + self.episode_seconds


def _sumo_rl_dir() -> Path:
    spec = importlib.util.find_spec("sumo_rl")  # located, not imported: importing it needs SUMO_HOME
    if spec is None or not spec.submodule_search_locations:
        raise UserError("sumo-rl is not installed; it ships the RESCO networks (`pip install sumo-rl`)")
    return Path(list(spec.submodule_search_locations)[0])


def _resolve(path: str, base: Path) -> Path:
    if path.startswith(SUMO_RL_PREFIX):
        return _sumo_rl_dir() / path[len(SUMO_RL_PREFIX) :]
    return (base / path).resolve()


def _validation_message(source: str, exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
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
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: malformed YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: a scenario file must be a mapping of keys to values")
    data.setdefault("name", path.stem)
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
        raise UserError(_validation_message(str(path), exc)) from None
    for needed in [spec.net, *spec.routes]:
        if not needed.is_file():
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
