"""Ray cluster jobs through Ray's Jobs SDK: submit `marlo …` with the project as the job's
working directory, follow its logs, ask its status, stop it.

The dashboard's token (Ray 2.60 token authentication) is read by Ray itself, from RAY_AUTH_TOKEN,
RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token; marlo never reads or prints it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from marlo_rllib.errors import UserError

REPO = Path(__file__).resolve().parents[1]
# Not shipped with a job: environments, caches, results and datasets.
EXCLUDES = [".git", ".venv", "checkpoints", "runs", "datasets", "docs", "**/__pycache__", "*.egg-info"]
REACH_TIMEOUT_S = 10
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def _auth_hint() -> str:
    if os.environ.get("RAY_AUTH_MODE") == "token":
        return ""
    return (
        "; a token-auth cluster needs RAY_AUTH_MODE=token in this environment, and the cluster's token in "
        "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
    )


def client(address: str) -> Any:
    import requests
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    url = address if "://" in address else f"http://{address}"
    try:
        requests.get(f"{url}/api/version", timeout=REACH_TIMEOUT_S)
    except requests.RequestException:
        raise UserError(f"cannot reach a Ray dashboard at {url} within {REACH_TIMEOUT_S} s") from None
    try:
        return JobSubmissionClient(url)
    except AuthenticationError as exc:
        raise UserError(
            f"Ray at {url} refused the authentication token: {str(exc).splitlines()[0]}{_auth_hint()}"
        ) from None
    except (ConnectionError, RuntimeError) as exc:
        raise UserError(f"cannot use the Ray jobs API at {url}: {str(exc).splitlines()[0]}") from None


def call(what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    from ray.exceptions import AuthenticationError

    try:
        return function(*args, **kwargs)
    except AuthenticationError as exc:
        raise UserError(
            f"{what}: the cluster refused the authentication token: {str(exc).splitlines()[0]}{_auth_hint()}"
        ) from None
    except RuntimeError as exc:  # the SDK's HTTP errors, e.g. an unknown job id
        raise UserError(f"{what}: {str(exc).splitlines()[0][:300]}") from None


def submit(address: str, marlo_args: list[str], follow: bool = True) -> tuple[str, str]:
    """Submits `python -m marlo_rllib.cli ARGS`; returns (job id, final or current status)."""
    import shlex

    jobs = client(address)
    entrypoint = "python -m marlo_rllib.cli " + " ".join(shlex.quote(a) for a in marlo_args)
    job_id = call(
        "submit", jobs.submit_job, entrypoint=entrypoint, runtime_env={"working_dir": str(REPO), "excludes": EXCLUDES}
    )
    print(f"submitted {job_id}: {entrypoint}", flush=True)
    if not follow:
        return job_id, call("status", jobs.get_job_status, job_id).value
    return job_id, follow_logs(jobs, job_id)


def follow_logs(jobs: Any, job_id: str, poll_s: float = 2.0) -> str:
    """Prints the job's log as it grows; returns its terminal status."""
    shown = 0
    while True:
        status = call("status", jobs.get_job_status, job_id).value
        logs = call("logs", jobs.get_job_logs, job_id)
        print(logs[shown:], end="", flush=True)
        shown = len(logs)
        if status in TERMINAL:
            return status
        time.sleep(poll_s)


SLURM_TEMPLATE = REPO / "experiments" / "cluster" / "slurm_ray.sbatch"


def render_slurm(
    marlo_args: list[str], *, nodes: int, cpus_per_node: int, gpus_per_node: int, time_limit: str, setup: str
) -> str:
    """The sbatch script that starts Ray across the allocation and runs `marlo train …` on it."""
    import re
    import shlex

    if marlo_args[:1] != ["train"]:
        raise UserError("--slurm runs `train …` against the allocation's Ray cluster; put the train command after --")
    if nodes < 1 or cpus_per_node < 1 or gpus_per_node < 0:
        raise UserError("--nodes and --cpus-per-node must be at least 1, --gpus-per-node at least 0")
    match = re.fullmatch(r"(\d+-)?(\d{1,2}):(\d{2}):(\d{2})", time_limit)
    if not match or int(match[3]) > 59 or int(match[4]) > 59 or (match[1] and int(match[2]) > 23):
        raise UserError(f"--time takes HH:MM:SS or D-HH:MM:SS, got {time_limit!r}")
    lines = SLURM_TEMPLATE.read_text().splitlines(keepends=True)
    if gpus_per_node == 0:
        lines = [line for line in lines if "--gres=gpu:" not in line]
    fields = {
        "NODES": nodes,
        "CPUS_PER_NODE": cpus_per_node,
        "GPUS_PER_NODE": gpus_per_node,
        "TIME": time_limit,
        "SETUP": setup,
        "MARLO_ARGS": " ".join(shlex.quote(a) for a in marlo_args),
    }
    text = "".join(lines)
    for name, value in fields.items():
        text = text.replace(f"@{name}@", str(value))
    return text
