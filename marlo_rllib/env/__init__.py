from marlo_rllib.env.metrics import METRIC_NAMES, EpisodeMetrics
from marlo_rllib.env.observations import OBSERVATIONS
from marlo_rllib.env.rewards import REWARDS, make_reward
from marlo_rllib.env.traffic_signal_env import TrafficSignalEnv, check_names

__all__ = [
    "METRIC_NAMES",
    "OBSERVATIONS",
    "REWARDS",
    "EpisodeMetrics",
    "TrafficSignalEnv",
    "check_names",
    "make_reward",
]
