"""Aggregation with 95% confidence intervals, tables, files and plots of evaluation results."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from marlo_rllib.env.metrics import METRIC_NAMES
from marlo_rllib.evaluation.runner import EpisodeResult

TABLE_METRICS = ("delay", "trip_time", "waiting_time", "queue_length", "stopped_ratio", "throughput", "teleports")


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (0 for a single value)."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if len(array) < 2:
        return mean, 0.0
    return mean, float(stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / math.sqrt(len(array)))


def aggregate(results: list[EpisodeResult]) -> dict[str, dict[str, float]]:
    return {
        name: dict(zip(("mean", "ci95"), mean_ci([r.metrics[name] for r in results]), strict=True), n=len(results))
        for name in METRIC_NAMES
    }


def _cell(summary: dict[str, float]) -> str:
    return f"{summary['mean']:.2f} ± {summary['ci95']:.2f}"


def markdown_table(rows: dict[str, dict[str, dict[str, float]]], reference: str = "max_pressure") -> str:
    """rows: controller -> aggregate(). With the reference controller among them, a last column
    gives each controller's delay relative to the reference's."""
    ratio = reference in rows
    header = [*TABLE_METRICS, *([f"delay vs {reference}"] if ratio else [])]
    lines = ["| controller | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for controller, summary in rows.items():
        cells = [_cell(summary[m]) for m in TABLE_METRICS]
        if ratio:
            cells.append(f"{summary['delay']['mean'] / rows[reference]['delay']['mean'] - 1:+.1%}")
        lines.append(f"| {controller} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_episodes(out: Path, results: list[EpisodeResult], context: dict[str, Any]) -> dict[str, Any]:
    """DIR/metrics.json (per episode and aggregate per controller) and DIR/metrics.csv (one row per episode)."""
    by_controller: dict[str, list[EpisodeResult]] = {}
    for result in results:
        by_controller.setdefault(result.controller, []).append(result)
    document = {
        **context,
        "episodes": [{"controller": r.controller, "seed": r.seed, "metrics": r.metrics} for r in results],
        "aggregate": {c: aggregate(rs) for c, rs in by_controller.items()},
    }
    (out / "metrics.json").write_text(json.dumps(document, indent=2))
    with open(out / "metrics.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["controller", "seed", *METRIC_NAMES])
        for r in results:
            writer.writerow([r.controller, r.seed, *(r.metrics[m] for m in METRIC_NAMES)])
    return document


def write_comparison(out: Path, aggregates: dict[str, dict[str, dict[str, float]]]) -> None:
    (out / "comparison.md").write_text(markdown_table(aggregates) + "\n")
    with open(out / "comparison.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["controller", *(f"{m}_{s}" for m in TABLE_METRICS for s in ("mean", "ci95"))])
        for controller, summary in aggregates.items():
            writer.writerow([controller, *(summary[m][s] for m in TABLE_METRICS for s in ("mean", "ci95"))])


def plot_bars(path: Path, aggregates: dict[str, dict[str, dict[str, float]]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = TABLE_METRICS[:6]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    names = list(aggregates)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        means = [aggregates[c][metric]["mean"] for c in names]
        cis = [aggregates[c][metric]["ci95"] for c in names]
        ax.bar(names, means, yerr=cis, capsize=4, color=[f"C{i}" for i in range(len(names))])
        ax.set_title(metric)
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"{title} (mean ± 95% CI over episodes)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_queue_heatmap(path: Path, result: EpisodeResult, delta_time: int, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, max(3, 0.3 * len(result.agents) + 1.5)))
    image = ax.imshow(
        result.queue_trace.T,
        aspect="auto",
        cmap="magma_r",
        interpolation="nearest",
        extent=(0, result.queue_trace.shape[0] * delta_time, len(result.agents) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(result.agents)), [a[:24] for a in result.agents], fontsize=7)
    ax.set_xlabel("seconds into the episode")
    ax.set_title(f"{title}: halting vehicles per junction (seed {result.seed})")
    fig.colorbar(image, ax=ax, label="halting vehicles")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
