"""The run directory, the one place that knows its layout: new, load, state.json, the best
link, and where a checkpoint keeps its RLModule.

    checkpoints/<algo>_<scenario>_<timestamp>/
        config.yaml  metadata.json  README.txt   what was run, with which versions and spaces
        progress.csv                             one row per training iteration, all segments
        state.json                               latest and best checkpoints, counters, stop reason
        best -> tune_0/<trial>/checkpoint_...    always the best-scoring checkpoint (or -> best_copy)
        best_copy/                               with evaluation.parallel: a copy of the best
        tune_0/, tune_1/, ...                    Tune's experiment folders, one per (re)start
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from marlo_rllib.config import ExperimentConfig, experiment_of
from marlo_rllib.errors import UserError

RL_MODULE_PATH = Path("learner_group") / "learner" / "rl_module"  # inside an RLlib Algorithm checkpoint
BEST_COPY = "best_copy"


def writable_dir(path: Path) -> Path:
    """An --out folder, made if needed; one marlo cannot write to is a user error before any work."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".marlo-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to --out {path}: {exc.strerror}") from None
    return path


def new_run_dir(out: Path, algorithm: str, scenario: str, name: str | None = None) -> Path:
    run_dir = (out / (name or f"{algorithm}_{scenario}_{time.strftime('%Y%m%d-%H%M%S')}")).resolve()
    if run_dir.exists():
        raise UserError(f"run directory {run_dir} exists; pick another --run-name or use --resume {run_dir}")
    try:
        run_dir.mkdir(parents=True)
    except OSError as exc:
        raise UserError(f"cannot create run directory {run_dir}: {exc.strerror}") from None
    return run_dir


def load_run(run_dir: Path) -> tuple[ExperimentConfig, dict[str, Any]]:
    """(config, state) of a run directory; a folder that is not one is a user error."""
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        state = json.loads((run_dir / "state.json").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        raise UserError(f"{run_dir} is not a marlo run directory (no readable config.yaml and state.json)") from None
    if not isinstance(config, dict) or not isinstance(state, dict):
        raise UserError(f"{run_dir} is not a marlo run directory (config.yaml and state.json must be mappings)")
    if not state.get("latest_checkpoint"):
        raise UserError(f"{run_dir} has no checkpoint to resume from yet")
    check_checkpoint(run_dir / state["latest_checkpoint"])
    return experiment_of(config), state  # settings added since the run began take their defaults


def check_checkpoint(path: Path) -> None:
    """Reads every state file of an RLlib checkpoint, so that a damaged one is a one-line error here
    rather than a failed trial after Ray has started."""
    import pickle

    if not (path / "algorithm_state.pkl").is_file():
        raise UserError(f"checkpoint {path} is missing (no algorithm_state.pkl)")
    for file in sorted(path.rglob("*state.pkl")):
        try:
            with file.open("rb") as stream:
                pickle.load(stream)
        except Exception as exc:  # truncated or foreign bytes raise any of several unpickling errors
            raise UserError(
                f"checkpoint {path} is damaged: {file.relative_to(path)} does not load ({type(exc).__name__})"
            ) from None


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("marlo-rllib", "ray", "torch", "eclipse-sumo", "libsumo", "pettingzoo", "gymnasium"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_run_files(
    run_dir: Path,
    config: ExperimentConfig,
    env_config: dict[str, Any],
    spaces: dict[str, Any],
    state_dim: int,
    probe: dict[str, Any],
    command: str,
) -> None:
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(), sort_keys=False))
    info = {
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "git_commit": _git_commit(),
        "versions": _versions(),
        "env_config": env_config,
        "spaces": spaces,
        "state_dim": state_dim,
        "probe": probe,
    }
    (run_dir / "metadata.json").write_text(json.dumps(info, indent=2) + "\n")
    (run_dir / "README.txt").write_text(
        f"marlo training run: {config.algorithm} ({config.policy} policy) on {config.scenario}.\n"
        f"Started with: {command}\n\n"
        "config.yaml    the resolved experiment (defaults < preset < experiment YAML < command line)\n"
        "metadata.json  versions, git commit, command line, env settings, observation and action spaces\n"
        "progress.csv   one row per training iteration: returns, env steps, traffic metrics, evaluation\n"
        "state.json     latest and best checkpoint, timesteps, why training stopped\n"
        "best           the best-scoring checkpoint (a plain RLlib checkpoint)\n\n"
        f"Continue:   marlo train --resume {run_dir}\n"
        f"Evaluate:   marlo eval --checkpoint {run_dir} --scenario {config.scenario} --out {run_dir}/eval\n"
    )
    save_state(run_dir, new_state())


def new_state(**changes: Any) -> dict[str, Any]:
    """state.json of a run that has not trained yet."""
    return {
        "status": "starting",
        "segments": 0,
        "latest_checkpoint": None,
        "best": None,
        "timesteps": 0,
        "iteration": 0,
        "time_s": 0.0,
        "checkpointed_at": 0,
        **changes,
    }


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    temporary = run_dir / "state.json.tmp"
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    temporary.replace(run_dir / "state.json")


def read_state(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "state.json").read_text())


def point_best_at(run_dir: Path, checkpoint: str) -> None:
    """The `best` link, to a checkpoint given relative to the run directory."""
    link = run_dir / "best"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(checkpoint, target_is_directory=True)


def copy_as_best(run_dir: Path, checkpoint: str) -> str:
    """A copy of a checkpoint that Tune cannot delete, with the `best` link at it; its relative path."""
    copy, partial = run_dir / BEST_COPY, run_dir / f"{BEST_COPY}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(run_dir / checkpoint, partial)
    shutil.rmtree(copy, ignore_errors=True)
    partial.rename(copy)
    point_best_at(run_dir, BEST_COPY)
    return BEST_COPY


def run_dir_of(path: Path) -> Path | None:
    """The run directory of a run directory or of a checkpoint inside one (None: neither)."""
    for candidate in (path, *path.parents):
        if (candidate / "config.yaml").is_file() and (candidate / "state.json").is_file():
            return candidate
    return None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run directory (meaning its best checkpoint, else its latest)."""
    path = Path(path).resolve()  # RLlib's loaders take absolute paths only
    if (path / "state.json").is_file():
        try:
            state = read_state(path)
        except ValueError:
            raise UserError(f"{path}/state.json is corrupt") from None
        chosen = (state.get("best") or {}).get("checkpoint") or state.get("latest_checkpoint")
        if not chosen:
            raise UserError(f"run {path} has no checkpoint yet")
        path = path / str(chosen)
    if not (path / "rllib_checkpoint.json").is_file():
        raise UserError(f"{path} is neither a marlo run directory nor an RLlib checkpoint")
    return path
