"""Traffic metrics in RLlib's results: each finished episode logs the env's RESCO metrics.

They appear next to RLlib's own episode statistics, under result["env_runners"] (training) and
result["evaluation"]["env_runners"] (evaluation), averaged over the same window of episodes as
RLlib's episode_return_mean (the evaluation config sets it to one evaluation's episodes).
On generated scenarios, `episodes_by_traffic_scenario` counts the episodes of each traffic demand.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

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
