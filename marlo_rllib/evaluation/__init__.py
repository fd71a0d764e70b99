from marlo_rllib.evaluation.report import aggregate, mean_ci
from marlo_rllib.evaluation.runner import EpisodeResult, EpisodeTask, run_episode, run_episodes

__all__ = ["EpisodeResult", "EpisodeTask", "aggregate", "mean_ci", "run_episode", "run_episodes"]
