"""Offline datasets: per-junction transitions of behaviour controllers, as Parquet in RLlib's
offline column schema, plus dataset.json.

    datasets/NAME/
        dataset.json          scenario, env settings, spaces, behaviours, episode count, statistics
        data/*.parquet        one file per episode, one row per junction and decision:
                              eps_id agent_id t obs actions rewards new_obs terminateds truncateds
                              returns behaviour [action_mask]
        dataset.npz           (--format npz) dict of (episodes, steps, agents, ...) arrays

Observations are recorded in the padded layout a shared policy sees (the env's `shared_spaces`):
`obs` is the padded vector, `action_mask` (written where junctions have different green counts)
marks the greens a junction really has. `returns` is the discounted return-to-go of that
junction's rewards (dataset.json's `gamma`), the value target MARWIL regresses on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from marlo_rllib.errors import UserError

FORMAT = "marlo-offline-1"
DATA_DIR = "data"
COLUMNS = (
    "eps_id",
    "agent_id",
    "t",
    "obs",
    "actions",
    "rewards",
    "new_obs",
    "terminateds",
    "truncateds",
    "returns",
    "behaviour",
)
INFO_KEYS = ("format", "rows", "scenario", "env", "spaces")
ENV_KEYS = (
    "observation",
    "reward",
    "reward_params",
    "timing",
    "episode_seconds",
    "demand_scale",
    "agent_id",
    "traffic_scenario",
)


class TransitionRecorder:
    """Collects one episode's per-junction transitions and writes them as one Parquet file."""

    def __init__(self, env: Any, episode_id: str, behaviour: str, gamma: float) -> None:
        if not env.shared_spaces:
            raise ValueError("record with shared_spaces=True: the dataset holds the padded observations")
        self.env, self.episode_id, self.behaviour, self.gamma = env, episode_id, behaviour, gamma
        self.steps: list[tuple[dict, dict, dict, dict, dict, dict]] = []

    def add(
        self,
        observations: dict,
        actions: dict,
        rewards: dict,
        next_observations: dict,
        terminations: dict,
        truncations: dict,
    ) -> None:
        # A program (fixed, actuated) picks no actions: the logged action is the green that ran.
        taken = {a: int(actions[a]) if a in actions else self.env.signals[a].green for a in rewards}
        self.steps.append((observations, taken, rewards, next_observations, terminations, truncations))

    def columns(self) -> dict[str, np.ndarray]:
        agents = self.env.possible_agents
        steps = len(self.steps)
        rewards = np.array([[step[2][a] for a in agents] for step in self.steps], dtype=np.float32)
        returns = np.zeros_like(rewards)
        running = np.zeros(len(agents), dtype=np.float32)
        for t in range(steps - 1, -1, -1):
            running = rewards[t] + self.gamma * running
            returns[t] = running

        def rows(index: int, dtype: Any, key: str | None = None) -> np.ndarray:
            """One entry per step and agent, step-major: the step tuple's `index` field (its `key`)."""
            return np.array(
                [step[index][a] if key is None else step[index][a][key] for step in self.steps for a in agents],
                dtype=dtype,
            )

        columns = {
            "eps_id": np.full(steps * len(agents), self.episode_id),
            "agent_id": np.tile(np.array(agents), steps),
            "t": np.repeat(np.arange(steps, dtype=np.int32), len(agents)),
            "obs": rows(0, np.float32, "observations"),
            "actions": rows(1, np.int64),
            "rewards": rewards.reshape(-1),
            "new_obs": rows(3, np.float32, "observations"),
            "terminateds": rows(4, bool),
            "truncateds": rows(5, bool),
            "returns": returns.reshape(-1),
            "behaviour": np.full(steps * len(agents), self.behaviour),
        }
        masks = rows(0, np.int8, "action_mask")
        if masks.min() == 0:  # junctions with fewer greens than the widest
            columns["action_mask"] = masks
        return columns

    def write(self, path: Path) -> tuple[int, float]:
        """Writes the Parquet file; returns its row count and the sum of its rewards."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = self.columns()
        arrays = {}
        for name, values in columns.items():
            if values.ndim == 2:  # fixed-size vectors per row
                arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
            else:
                arrays[name] = pa.array(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        pq.write_table(pa.table(arrays), temporary)
        temporary.replace(path)
        return len(columns["eps_id"]), float(columns["rewards"].sum())


def epsilon_mix(actions: dict[str, int], env: Any, rng: np.random.Generator, epsilon: float) -> dict[str, int]:
    """Each junction's action, replaced with probability epsilon by a uniformly drawn real green."""
    return {
        a: int(rng.integers(env.junctions[a].n_greens)) if rng.random() < epsilon else int(action)
        for a, action in actions.items()
    }


def space_summary(env: Any) -> dict[str, Any]:
    """What a policy trained on the dataset must match: the padded spaces and each junction's greens."""
    agent = env.possible_agents[0]
    return {
        "observation": str(env.observation_space(agent)),
        "action": str(env.action_space(agent)),
        "observation_size": int(env.observation_space(agent)["observations"].shape[0]),
        "greens": int(env.action_space(agent).n),
        "agents": list(env.possible_agents),
        "action_masks": {a: env.action_mask(a).tolist() for a in env.possible_agents},
    }


# ---- reading ---------------------------------------------------------------------------------


def parquet_files(dataset: Path) -> list[Path]:
    return sorted((dataset / DATA_DIR).glob("*.parquet"))


def load_dataset(path: str | Path) -> dict[str, Any]:
    """dataset.json of a dataset folder, after checking that every Parquet file is there and readable."""
    import pyarrow.parquet as pq

    dataset = Path(path).resolve()
    if not (dataset / "dataset.json").is_file():
        raise UserError(f"no dataset at {dataset} (no dataset.json); record one with marlo collect")
    try:
        info = json.loads((dataset / "dataset.json").read_text())
        expected = int(info["rows"])
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{dataset}/dataset.json is corrupt") from None
    missing = [key for key in INFO_KEYS if key not in info]
    if missing:
        raise UserError(f"{dataset}/dataset.json is corrupt: it lacks {', '.join(missing)}")
    if info.get("format") != FORMAT:
        raise UserError(f"{dataset}: unknown dataset format {info.get('format')!r}; this marlo reads {FORMAT}")
    files = parquet_files(dataset)
    if not files:
        raise UserError(f"dataset {dataset} has no Parquet files in {DATA_DIR}/")
    rows = 0
    for file in files:
        try:
            parquet = pq.ParquetFile(file)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
            raise UserError(
                f"dataset {dataset}: {file.name} is not a readable Parquet file "
                f"({type(exc).__name__}: {str(exc)[:120]})"
            ) from None
        absent = [column for column in COLUMNS if column not in parquet.schema_arrow.names]
        if absent:
            raise UserError(
                f"dataset {dataset}: {file.name} lacks the columns {', '.join(absent)}; "
                "it was not written by marlo collect"
            )
        rows += parquet.metadata.num_rows
    if rows != expected:
        raise UserError(
            f"dataset {dataset}: dataset.json counts {expected} rows, the Parquet files hold {rows} "
            "(a file is missing or was added)"
        )
    info["path"] = str(dataset)
    return info


def check_fits(info: dict[str, Any], env: Any, env_config: dict[str, Any]) -> None:
    """Refuses to train on a dataset recorded with other spaces or other env settings than the run's."""
    spaces = space_summary(env)
    recorded = info["spaces"]
    if (recorded["observation"], recorded["action"]) != (spaces["observation"], spaces["action"]):
        raise UserError(
            f"dataset {info['path']} was recorded on {info['scenario']} (observations {recorded['observation']}, "
            f"actions {recorded['action']}); {env.spec.name} has observations {spaces['observation']}, "
            f"actions {spaces['action']}"
        )
    if recorded["action_masks"] != spaces["action_masks"]:
        raise UserError(
            f"dataset {info['path']} was recorded on {info['scenario']}, whose junctions differ from {env.spec.name}'s"
        )
    for key in ENV_KEYS:
        if info["env"].get(key) != env_config.get(key):
            raise UserError(
                f"dataset {info['path']} was recorded with env.{key} = {info['env'].get(key)!r}; "
                f"this run has {env_config.get(key)!r}"
            )


def export_npz(dataset: Path) -> Path:
    """dataset.npz: observations, actions, rewards, next_observations, dones as (episodes, steps, agents, ...)."""
    import pyarrow.parquet as pq

    info = json.loads((dataset / "dataset.json").read_text())
    agents = info["spaces"]["agents"]
    episodes = []
    for file in parquet_files(dataset):
        table = pq.read_table(file).to_pydict()
        steps = len(table["t"]) // len(agents)

        def grid(name: str, dtype: Any, table: dict = table, steps: int = steps) -> np.ndarray:
            values = np.asarray(table[name], dtype=dtype)
            return values.reshape(steps, len(agents), *values.shape[1:])

        episodes.append(
            {
                "observations": grid("obs", np.float32),
                "actions": grid("actions", np.int64),
                "rewards": grid("rewards", np.float32),
                "next_observations": grid("new_obs", np.float32),
                "dones": grid("terminateds", bool) | grid("truncateds", bool),
                "behaviour": table["behaviour"][0],
            }
        )
    lengths = {len(e["actions"]) for e in episodes}
    if len(lengths) > 1:
        raise UserError(f"--format npz needs episodes of one length; {dataset} has {sorted(lengths)} steps")
    arrays: dict[str, Any] = {
        key: np.stack([e[key] for e in episodes])
        for key in ("observations", "actions", "rewards", "next_observations", "dones")
    }
    path = dataset / "dataset.npz"
    np.savez_compressed(
        path,
        **arrays,
        agents=np.array(agents),
        behaviour=np.array([e["behaviour"] for e in episodes]),
        action_mask=np.array([info["spaces"]["action_masks"][a] for a in agents], dtype=np.int8),
    )
    return path
