from marlo_rllib.controllers.baselines import BASELINES, Controller, make_controller
from marlo_rllib.controllers.policy import PolicyController, load_controller

__all__ = ["BASELINES", "Controller", "PolicyController", "load_controller", "make_controller"]
