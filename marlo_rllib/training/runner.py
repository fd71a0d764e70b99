"""One training run, from a resolved experiment to a run directory of checkpoints (its layout:
run_dir.py).

RLlib's Algorithm runs as a Tune trainable. The band stopper ends it; checkpoints are written
every `checkpoint.every` env steps, at every new best evaluation, at the end and on Ctrl+C; Tune
keeps the `num_to_keep` best.
`--resume` restores the latest checkpoint (weights, optimizer, counters) into a new segment.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
import numbers
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from marlo_rllib.config import ExperimentConfig, ResourceSettings
from marlo_rllib.errors import UserError
from marlo_rllib.run_dir import (
    RL_MODULE_PATH,
    copy_as_best,
    load_run,
    new_run_dir,
    point_best_at,
    read_state,
    resolve_checkpoint,
    save_state,
    write_run_files,
)
from marlo_rllib.training.actions import choose_actions
from marlo_rllib.training.stopper import BandState, BandStopper, evaluation_score, score_key

PROGRESS_COLUMNS = (
    "iteration",
    "timesteps",
    "time_s",
    "episode_return_mean",
    "episode_return_min",
    "episode_return_max",
    "episode_len_mean",
    "env_steps_sampled",
    "agent_steps_sampled",
    "env_steps_per_s",
    "success_streak",
    "delay",
    "trip_time",
    "waiting_time",
    "queue_length",
    "stopped_ratio",
    "throughput",
    "eval_return_mean",
    "eval_delay",
    "score",
    "warning",
)


def prepare_run(
    config: ExperimentConfig, out: Path, run_name: str | None, command: str, resume_from: str | None = None
) -> tuple[Path, Path | None]:
    """Checks the env settings (and --resume-from's fit) on the env itself, then makes the run
    directory. Returns it and the checkpoint whose weights start the run, if any."""
    check_resources(config.resources)
    from marlo_rllib.algorithms import check_masking, get_algorithm
    from marlo_rllib.controllers.policy import PolicyController, load_modules
    from marlo_rllib.env.rllib import RLlibTrafficSignalEnv
    from marlo_rllib.layout import SHARED_MODULE
    from marlo_rllib.offline.dataset import check_fits, load_dataset
    from marlo_rllib.training.rllib_config import shared_module_class

    env_config = config.env_config()
    weights = resolve_checkpoint(resume_from) if resume_from else None
    env = RLlibTrafficSignalEnv(env_config).par_env  # the env exactly as the env runners build it
    try:
        spaces = {
            a: {"observation": str(env.observation_space(a)), "action": str(env.action_space(a))}
            for a in env.possible_agents
        }
        state_dim = int(env.state_space.shape[0])
        padded = any(min(env.action_mask(a)) == 0 for a in env.possible_agents) if env.shared_spaces else False
        check_masking(get_algorithm(config.algorithm), config.policy, config.scenario, padded)
        if config.dataset:
            check_fits(load_dataset(config.dataset), env, env_config)
        if weights is not None:
            try:
                modules = load_modules(weights)
            except Exception as exc:
                raise UserError(f"cannot load checkpoint {weights}: {type(exc).__name__}") from None
            if (SHARED_MODULE in modules.keys()) != (config.policy != "independent"):
                raise UserError(f"--resume-from {weights}: its policy layout differs from policy {config.policy!r}")
            found = type(modules[SHARED_MODULE]) if SHARED_MODULE in modules.keys() else None
            if found is not None and found is not shared_module_class(config):
                raise UserError(
                    f"--resume-from {weights}: its module is a {found.__name__}, {config.algorithm} "
                    f"--policy {config.policy} trains a {shared_module_class(config).__name__}"
                )
            PolicyController(weights, modules, env_config).reset(env)  # refuses spaces that do not fit
        probe = probe_speed(env)
    finally:
        env.close()
    run_dir = new_run_dir(out, config.algorithm, env.spec.name, run_name)
    write_run_files(run_dir, config, env_config, spaces, state_dim, probe, command)
    return run_dir, weights


def resume_run(
    run_dir: Path, *, timesteps: int | None = None, minutes: float | None = None, address: str | None = None
) -> tuple[ExperimentConfig, Path, int]:
    """An interrupted run's experiment, with a new budget or cluster address if given (what may
    change on a resume; nothing else does), the checkpoint it continues from, and its env steps."""
    from marlo_rllib.config import updated, validate

    config, state = load_run(run_dir)
    budget = {key: value for key, value in (("timesteps", timesteps), ("minutes", minutes)) if value is not None}
    config = updated(config, {"stop": budget, "resources": {"ray_address": address} if address else {}})
    validate(config)
    check_resources(config.resources)
    return config, run_dir / state["latest_checkpoint"], state["timesteps"]


PROBE_SECONDS, PROBE_STEPS = 3.0, 200


def probe_speed(env: Any) -> dict[str, Any]:
    """The bare env's env steps per second under random greens (at most PROBE_SECONDS or
    PROBE_STEPS), and the env steps of an episode: what sizes rollout fragments and timeouts."""
    import numpy as np

    rng = np.random.default_rng(0)
    greens = {a: np.flatnonzero(env.action_mask(a)) for a in env.possible_agents}
    steps, started = 0, time.perf_counter()
    while steps < PROBE_STEPS and time.perf_counter() - started < PROBE_SECONDS and env.agents:
        env.step({a: int(rng.choice(greens[a])) for a in env.agents})
        steps += 1
    rate = steps / max(time.perf_counter() - started, 1e-9)
    return {
        "env_steps_per_s": round(rate, 1),
        "episode_steps": math.ceil((env.end - env.begin) / env.timing.delta_time),
    }


# ---- Tune callback: progress log, periodic checkpoints, best pointer --------------------------


def _number(value: Any) -> Any:
    if isinstance(value, dict):  # RLlib reports some agent-step counts per agent
        value = sum(v for v in value.values() if isinstance(v, numbers.Number))
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else ""
    return "" if value is None else value


def make_recorder(
    config: ExperimentConfig,
    stopper: BandStopper,
    record_of: Callable[[Any], tuple[Path, dict, float]],
    quiet: bool = False,
) -> Any:
    """A Tune callback that keeps a marlo run directory per trial: progress.csv, state.json, the best
    pointer, and Tune's checkpoint decisions. record_of(trial) -> (run_dir, state, seconds before)."""
    from ray import tune

    metric, every = config.stop.metric, config.checkpoint.every
    interval, parallel = config.evaluation.interval, config.evaluation.parallel

    def record_best(state: dict[str, Any], checkpoint: str, score: float) -> None:
        """The latest checkpoint's weights are the best, kept at `checkpoint` (relative to the run dir)."""
        state["best"] = {
            "checkpoint": checkpoint,
            "score": score,
            "metric": metric,
            "timesteps": state["checkpointed_at"],
            "iteration": state["latest_checkpoint_iteration"],
        }

    class RunRecorder(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            run_dir, state, time_offset = record_of(trial)
            score = evaluation_score(result, metric, interval)
            best = state.get("best")
            steps = int(result.get("num_env_steps_sampled_lifetime", 0))
            new_best = score is not None and (best is None or score > best["score"])
            if parallel:
                # The evaluation reported with iteration i ran beside it, on the weights iteration i-1 ended
                # with: those are checkpointed, and a new best is a copy of that checkpoint (Tune may delete it).
                if (result["training_iteration"] + 1) % interval == 0:
                    result["should_checkpoint"] = True
                if new_best and state.get("latest_checkpoint_iteration") == result["training_iteration"] - 1:
                    record_best(state, copy_as_best(run_dir, state["latest_checkpoint"]), score)
            elif new_best:
                result["should_checkpoint"] = True  # a new best is always kept
            if steps // every > state["checkpointed_at"] // every:
                result["should_checkpoint"] = True
            runners = result.get("env_runners", {})
            evaluation = result.get("evaluation", {}).get("env_runners", {}) if score is not None else {}
            band = stopper.trials.get(trial.trial_id, BandState())
            elapsed = time_offset + result.get("time_total_s", 0.0)
            row = {
                "iteration": result.get("training_iteration"),
                "timesteps": steps,
                "time_s": elapsed,
                "env_steps_sampled": runners.get("num_env_steps_sampled"),
                "agent_steps_sampled": runners.get("num_agent_steps_sampled"),
                "env_steps_per_s": runners.get("num_env_steps_sampled") / result["time_this_iter_s"]
                if result.get("time_this_iter_s") and runners.get("num_env_steps_sampled")
                else None,
                "success_streak": band.streak,
                "eval_return_mean": evaluation.get("episode_return_mean"),
                "eval_delay": evaluation.get("delay"),
                "score": score,
                "warning": band.warning,
                **{k: runners.get(k) for k in PROGRESS_COLUMNS if k in runners},
            }
            path = run_dir / "progress.csv"
            new = not path.exists()
            with path.open("a", newline="") as stream:
                writer = csv.DictWriter(stream, PROGRESS_COLUMNS)
                if new:
                    writer.writeheader()
                writer.writerow({k: _number(row.get(k)) for k in PROGRESS_COLUMNS})
            state.update(timesteps=steps, iteration=row["iteration"], time_s=round(elapsed, 1))
            save_state(run_dir, state)
            if quiet:
                return
            print(
                f"iter {row['iteration']:>4}  steps {steps:>9}  {elapsed:7.0f} s  "
                f"return {_fmt(runners.get('episode_return_mean'))}  delay {_fmt(runners.get('delay'))}  "
                f"eval return {_fmt(evaluation.get('episode_return_mean'))}  eval delay {_fmt(evaluation.get('delay'))}"
                + (f"  WARNING: {band.warning}" if band.warning else ""),
                flush=True,
            )

        def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
            run_dir, state, _ = record_of(trial)
            path = Path(checkpoint.path)
            result = trial.last_result
            score = result.get(score_key(metric), -math.inf)
            state["latest_checkpoint"] = str(path.relative_to(run_dir))
            state["latest_checkpoint_iteration"] = result.get("training_iteration")
            state["checkpointed_at"] = int(result.get("num_env_steps_sampled_lifetime", 0))
            best = state.get("best")
            if not parallel and math.isfinite(score) and (best is None or score > best["score"]):
                record_best(state, state["latest_checkpoint"], score)
                point_best_at(run_dir, state["latest_checkpoint"])
            save_state(run_dir, state)

    return RunRecorder()


def _fmt(value: Any) -> str:
    return f"{value:9.2f}" if isinstance(value, (int, float)) and math.isfinite(value) else "        -"


# ---- running ---------------------------------------------------------------------------------


def check_resources(resources: ResourceSettings) -> None:
    """Before anything is written: a cluster address must answer, and --gpu without a cluster needs
    a local GPU (a cluster's GPUs are counted once Ray joins it)."""
    address = resources.ray_address or os.environ.get("RAY_ADDRESS")
    if address and address != "auto":
        import socket

        host, _, port = address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except ValueError:
            raise UserError(f"--address takes HOST:PORT (or auto), got {address!r}") from None
        except OSError as exc:
            raise UserError(f"cannot reach a Ray cluster at {address}: {exc.strerror or exc}") from None
    elif resources.gpu and not address:
        import torch

        if torch.cuda.device_count() == 0:
            raise UserError("--gpu: torch sees no CUDA GPU on this machine; drop --gpu to train on CPU")


def init_ray(config: ExperimentConfig, algorithm_config: Any, debug: bool) -> None:
    import ray

    from marlo_rllib.training.rllib_config import gpus_per_learner

    # An iteration without an evaluation scores -inf (callbacks.py); Tune's TensorBoard writer would warn of each.
    logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)
    resources = config.resources
    address = resources.ray_address or os.environ.get("RAY_ADDRESS")  # a Ray job's driver gets RAY_ADDRESS
    if address:
        try:
            ray.init(address=address, log_to_driver=debug)
        except (ConnectionError, RuntimeError) as exc:
            raise UserError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
    else:  # a local Ray with at least the CPUs one trial asks for: its actors take turns on the cores
        needed = algorithm_config.algo_class.default_resource_request(algorithm_config).required_resources["CPU"]
        if algorithm_config.is_offline:  # Ray Data runs outside the trial's reservation
            from marlo_rllib.offline.pipeline import DATA_CPUS

            needed += DATA_CPUS
        ray.init(num_cpus=max(os.cpu_count() or 1, math.ceil(needed)), include_dashboard=False, log_to_driver=debug)
    wanted = max(resources.num_learners, 1) * gpus_per_learner(resources)
    seen = ray.cluster_resources().get("GPU", 0)
    if resources.gpu and seen == 0:
        raise UserError("--gpu: Ray sees no GPU on this machine (or cluster); drop --gpu to train on CPU")
    if wanted > seen:
        raise UserError(
            f"the learners ask for {wanted:g} GPUs, Ray sees {seen:g}; lower --num-learners or --num-gpus-per-learner"
        )


def callbacks_class(restore: Path | None, weights: Path | None) -> type:
    from marlo_rllib.training.callbacks import TrafficMetricsCallback

    def on_algorithm_init(self, *, algorithm, **kwargs):
        if restore is not None:
            algorithm.restore_from_path(str(restore))
        if weights is not None:
            modules = str(weights / RL_MODULE_PATH)
            if algorithm.env_runner_group is None:  # offline: Algorithm.restore_from_path would sync env runners
                algorithm.learner_group.restore_from_path(modules, component="learner/rl_module")
            else:
                algorithm.restore_from_path(modules, component="learner_group/learner/rl_module")

    return type("MarloCallbacks", (TrafficMetricsCallback,), {"on_algorithm_init": on_algorithm_init})


def checkpoint_config(config: ExperimentConfig) -> Any:
    """Tune keeps the `num_to_keep` best checkpoints by evaluation score, the latest, and one at the end."""
    from ray import tune

    return tune.CheckpointConfig(
        num_to_keep=config.checkpoint.num_to_keep,
        checkpoint_score_attribute=score_key(config.stop.metric),
        checkpoint_score_order="max",
        checkpoint_at_end=True,
    )


def make_stopper(
    config: ExperimentConfig, initial: BandState | None = None, probe: dict[str, Any] | None = None
) -> BandStopper:
    from marlo_rllib.training.rllib_config import sampling_settings

    sampling = sampling_settings(config, probe)
    return BandStopper(
        **config.stop.model_dump(),
        evaluation_interval=config.evaluation.interval,
        initial=initial,
        sample_timeout_s=sampling["sample_timeout_s"],
        evaluation_timeout_s=round(sampling["evaluation_timeout_s"], 1),
    )


def train(
    run_dir: Path,
    config: ExperimentConfig,
    *,
    restore: Path | None = None,
    weights: Path | None = None,
    debug: bool = False,
) -> dict[str, Any]:
    """Runs (or continues) training in run_dir until the stopper ends it. Returns state.json's content.

    restore: a checkpoint whose whole state (weights, optimizer, counters) continues here.
    weights: a checkpoint whose RLModule weights start this run (another run, maybe other traffic).
    """
    state = read_state(run_dir)
    before = copy.deepcopy(state)
    state.update(status="running", segments=before["segments"] + 1)
    save_state(run_dir, state)
    try:
        _fit(run_dir, config, state, restore, weights, debug)
        if state["status"] == "finished":
            state["actions"] = choose_actions(run_dir, config, state) or state.get("actions")
    except BaseException as exc:
        state.update(
            status="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
            error=(str(exc) or type(exc).__name__).splitlines()[0][:500],
        )
        _settle(run_dir, state, before)
        raise
    return _settle(run_dir, state, before)


def _settle(run_dir: Path, state: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """Writes state.json after a segment. A resume that failed before training a single step
    leaves the run as it was, its failure noted."""
    if state["status"] == "failed" and before["segments"] and state["timesteps"] == before["timesteps"]:
        shutil.rmtree(run_dir / f"tune_{before['segments']}", ignore_errors=True)
        state = {**before, "last_resume_error": state.get("error")}
    save_state(run_dir, state)
    return state


def _fit(
    run_dir: Path,
    config: ExperimentConfig,
    state: dict[str, Any],
    restore: Path | None,
    weights: Path | None,
    debug: bool,
) -> None:
    """One Tune segment; updates state (its recorder writes state.json as iterations land)."""
    import ray
    from ray import tune

    from marlo_rllib.training.rllib_config import build_config

    env_config = config.env_config()  # from the experiment itself; metadata.json keeps what prepare_run measured
    run_metadata = json.loads((run_dir / "metadata.json").read_text())
    agents = list(run_metadata["spaces"])
    previous_best = state.get("band")
    stopper = make_stopper(config, BandState(**previous_best) if previous_best else None, run_metadata.get("probe"))
    segment, time_offset = state["segments"] - 1, state["time_s"]

    def on_sigint(signum, frame):
        if stopper.interrupted:
            raise KeyboardInterrupt
        stopper.interrupted = True
        print(
            "marlo: interrupted; stopping after this iteration and writing a checkpoint "
            "(Ctrl+C again aborts without one)",
            file=sys.stderr,
            flush=True,
        )

    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    previous_handler = (
        signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        algorithm_config = build_config(
            config,
            env_config,
            agents,
            callbacks_class(restore, weights),
            state_dim=run_metadata.get("state_dim"),
            probe=run_metadata.get("probe"),
        )
        init_ray(config, algorithm_config, debug)
        tuner = tune.Tuner(
            algorithm_config.algo_class,
            param_space=algorithm_config,
            run_config=tune.RunConfig(
                name=f"tune_{segment}",
                storage_path=str(run_dir.resolve()),
                stop=stopper,
                checkpoint_config=checkpoint_config(config),
                failure_config=tune.FailureConfig(max_failures=1),
                callbacks=[make_recorder(config, stopper, lambda trial: (run_dir, state, time_offset))],
                verbose=0,
            ),
        )
        result = tuner.fit()[0]
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
        ray.shutdown()
    band = next(iter(stopper.trials.values()), None)
    state["band"] = {k: v for k, v in asdict(band).items() if k != "history"} if band else previous_best
    if result.error is not None:
        state["status"] = "failed"
        state["error"] = str(result.error).splitlines()[0][:500]
    elif band is not None and band.failed:
        state["status"], state["error"], state["stop_reason"] = "failed", band.reason, band.reason
    else:
        state["status"] = "interrupted" if stopper.interrupted else "finished"
        state["stop_reason"] = band.reason if band else None
