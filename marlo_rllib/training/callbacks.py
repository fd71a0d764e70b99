"""Traffic metrics in RLlib's results: each finished episode logs the env's RESCO metrics.

They appear next to RLlib's own episode statistics, under result["env_runners"] (training) and
result["evaluation"]["env_runners"] (evaluation), averaged over the same window of episodes as
RLlib's episode_return_mean (the evaluation config sets it to one evaluation's episodes).
On generated scenarios, `episodes_by_traffic_scenario` counts the episodes of each traffic demand.
Each training result also carries the checkpoint scores Tune ranks checkpoints by (`score_key`).
"""

from __future__ import annotations

import math
from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

from marlo_rllib.config import SCORE_METRICS
from marlo_rllib.training.stopper import evaluation_score, score_key

TRAFFIC_METRICS = ("delay", "trip_time", "waiting_time", "queue_length", "stopped_ratio", "throughput")


class TrafficMetricsCallback(RLlibCallback):
    def on_episode_end(
        self, *, episode: Any, env_runner: Any = None, metrics_logger: Any = None, **kwargs: Any
    ) -> None:
        if metrics_logger is None:
            return
        window = env_runner.config.metrics_num_episodes_for_smoothing  # as RLlib's episode_return_mean
        for info in episode.get_infos(-1).values():
            if "metrics" in info:
                for name in TRAFFIC_METRICS:
                    metrics_logger.log_value(name, float(info["metrics"][name]), reduce="mean", window=window)
                if info.get("traffic_scenario"):
                    metrics_logger.log_value(
                        ("episodes_by_traffic_scenario", info["traffic_scenario"]), 1, reduce="sum"
                    )
                return

    def on_train_result(self, *, algorithm: Any, result: dict, **kwargs: Any) -> None:
        # Tune ranks checkpoints by the metrics the trainable kept, in its own process; what a driver
        # callback adds to its copy of the result never reaches them. An iteration without an
        # evaluation scores -inf: a checkpoint between evaluations must not displace an evaluated one.
        # Tune sorts by a top-level key only (a nested one falls back to the newest first).
        interval = algorithm.config.evaluation_interval or 1
        for metric in SCORE_METRICS:
            score = evaluation_score(result, metric, interval)
            result[score_key(metric)] = -math.inf if score is None else score
