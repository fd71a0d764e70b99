"""`marlo eval` and `marlo benchmark`: which episodes to run (every controller on the same SUMO
seeds), and what is written when they are done."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marlo_rllib.config import check_seeds
from marlo_rllib.errors import UserError
from marlo_rllib.evaluation.runner import EpisodeTask, resco_timing, run_episodes
from marlo_rllib.run_dir import writable_dir
from marlo_rllib.scenarios.spec import ScenarioSpec


@dataclass
class EvaluationPlan:
    spec: ScenarioSpec
    controllers: list[str]
    tasks: list[EpisodeTask]
    out: Path
    context: dict[str, Any]  # written beside the metrics: scenario, seeds, timing, demand, command
    workers: int | None  # episodes at once; None: one per CPU


def plan_evaluation(
    scenario: str,
    controllers: list[str],
    seeds: list[int],
    out: str,
    *,
    demand_scale: float = 1.0,
    seconds: int | None = None,
    traffic: str | None = None,
    timing: str = "scenario",
    workers: int | None = None,
    command: str = "",
) -> EvaluationPlan:
    """Checks every setting before an episode runs. timing: "scenario" or "resco"."""
    from marlo_rllib.controllers import make_controller
    from marlo_rllib.env import check_names
    from marlo_rllib.scenarios import load_scenario

    if not controllers:
        raise UserError("--controllers is empty")
    for name in controllers:
        make_controller(name)
    spec = load_scenario(scenario)
    check_names(spec)
    check_seeds(seeds)
    if not 0 < demand_scale < float("inf"):
        raise UserError(f"--demand-scale must be a positive number, got {demand_scale}")
    if seconds is not None and seconds < 1:
        raise UserError(f"--seconds must be at least 1, got {seconds}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    folder = writable_dir(Path(out))
    overrides = resco_timing(spec.name) if timing == "resco" else {}
    options: dict[str, Any] = {"timing": overrides, "demand_scale": demand_scale, "episode_seconds": seconds}
    if traffic is not None:
        spec.check_traffic(traffic, "--traffic")
        options["traffic_scenario"] = traffic
    tasks = [EpisodeTask(str(spec.source), c, seed, options) for c in controllers for seed in seeds]
    context = {
        "scenario": spec.name,
        "seeds": seeds,
        "timing": {**spec.timing.model_dump(), **overrides},
        "demand_scale": demand_scale,
        "episode_seconds": seconds or spec.episode_seconds,
        "traffic": traffic,
        "command": command,
    }
    return EvaluationPlan(spec, controllers, tasks, folder, context, workers)


def evaluate(plan: EvaluationPlan) -> dict[str, dict[str, float]]:
    """Runs one controller's episodes; writes metrics.json and metrics.csv; returns its summary."""
    from marlo_rllib.evaluation.report import write_episodes

    results = run_episodes(plan.tasks, workers=plan.workers)
    return write_episodes(plan.out, results, plan.context)["aggregate"][plan.controllers[0]]


def benchmark(plan: EvaluationPlan) -> dict[str, dict[str, dict[str, float]]]:
    """Runs every controller on the same seeds; writes the comparison (markdown, CSV), the metrics,
    a bar chart and one queue heatmap per controller; returns the aggregates."""
    from marlo_rllib.controllers import controller_label
    from marlo_rllib.evaluation.report import plot_bars, plot_queue_heatmap, write_comparison, write_episodes

    started = time.perf_counter()
    results = run_episodes(plan.tasks, workers=plan.workers)
    plan.context["wall_seconds"] = round(time.perf_counter() - started, 1)
    aggregates = write_episodes(plan.out, results, plan.context)["aggregate"]
    write_comparison(plan.out, aggregates)
    plot_bars(plan.out / "bars.png", aggregates, f"{plan.spec.name}, {len(plan.context['seeds'])} paired seeds")
    for controller in plan.controllers:
        first = next(r for r in results if r.controller == controller)
        plot_queue_heatmap(
            plan.out / f"heatmap_{controller_label(controller)}.png",
            first,
            plan.context["timing"]["delta_time"],
            f"{plan.spec.name}, {controller}",
        )
    return aggregates
