"""marlo: multi-agent reinforcement learning of traffic signals on SUMO and Ray RLlib."""

__version__ = "0.1.0"
