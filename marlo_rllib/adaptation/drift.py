"""Drift between the states a deployed policy meets and the data it was trained on.

MMD (maximum mean discrepancy) with an RBF kernel whose bandwidth is the median pairwise distance
of the pooled samples, on features standardized by the reference (Standardizer); the trigger rule of seed 003: bucket j (0-based, j >= 2) fine-tunes when
its MMD to the offline data exceeds `ratio` times bucket j-1's.
"""

from __future__ import annotations

import numpy as np


def median_bandwidth(pooled: np.ndarray) -> float:
    """The median of the pairwise Euclidean distances between distinct rows (1.0 if they all coincide)."""
    squared = _squared_distances(pooled, pooled)
    upper = squared[np.triu_indices(len(pooled), k=1)]
    median = float(np.sqrt(np.median(upper))) if upper.size else 0.0
    return median if median > 0 else 1.0


def mmd(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None) -> float:
    """sqrt of the biased MMD² estimate between the rows of x and of y (flattened per row), with
    k(a, b) = exp(-|a - b|² / (2 bandwidth²)); bandwidth None: the median heuristic."""
    x, y = _rows(x), _rows(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"samples differ in width: {x.shape[1]} and {y.shape[1]}")
    sigma = median_bandwidth(np.concatenate([x, y])) if bandwidth is None else float(bandwidth)
    if sigma <= 0:
        raise ValueError(f"bandwidth must be greater than 0, got {sigma}")

    def kernel_mean(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.exp(-_squared_distances(a, b) / (2 * sigma**2)).mean())

    squared = kernel_mean(x, x) + kernel_mean(y, y) - 2 * kernel_mean(x, y)
    return float(np.sqrt(max(squared, 0.0)))


def bucket_mmd(bucket: np.ndarray, offline: np.ndarray, chunks: int, rng: np.random.Generator) -> float:
    """Seed 003's per-bucket drift: the mean MMD between the bucket and `chunks` random draws of
    the offline data, each as large as the bucket (the whole offline set where it is smaller)."""
    bucket, offline = _rows(bucket), _rows(offline)
    size = min(len(bucket), len(offline))
    draws = [offline[rng.choice(len(offline), size, replace=False)] for _ in range(chunks)]
    return float(np.mean([mmd(bucket, draw) for draw in draws]))


class Standardizer:
    """Rows -> z-scores by the reference's mean and standard deviation, leaving out constant features
    and the `drop` columns. One RBF bandwidth then suits features of different ranges: raw, a
    handful of 0/1 flags (phase, junction one-hot) dominate the distances and hide a change of
    queues and densities."""

    def __init__(self, reference: np.ndarray, drop: list[int] | None = None) -> None:
        reference = _rows(reference)
        self.mean, self.std = reference.mean(axis=0), reference.std(axis=0)
        self.keep = self.std > 1e-6
        self.keep[list(drop or [])] = False
        if not self.keep.any():
            raise ValueError("every feature of the reference is constant: nothing to measure drift on")

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = _rows(rows)
        return (rows[:, self.keep] - self.mean[self.keep]) / self.std[self.keep]


def triggers(mmds: list[float], ratio: float) -> bool:
    """Whether the newest bucket's MMD (mmds[-1], bucket j = len - 1) should trigger fine-tuning."""
    if ratio <= 0:
        raise ValueError(f"ratio must be greater than 0, got {ratio}")
    return len(mmds) >= 3 and mmds[-1] > ratio * mmds[-2]


def _rows(sample: np.ndarray) -> np.ndarray:
    sample = np.asarray(sample, dtype=np.float64)
    if sample.ndim == 0 or len(sample) == 0:
        raise ValueError("a sample needs at least one row")
    return sample.reshape(len(sample), -1)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)
