"""marlo: multi-agent reinforcement learning of traffic signals on SUMO and Ray RLlib."""

__version__ = "0.1.0"


def load_controller(path, name=None):
    """A trained policy as a Controller, from a checkpoint or a run directory (its best checkpoint)."""
    from marlo_rllib.controllers.policy import load_controller as load

    return load(path, name)
