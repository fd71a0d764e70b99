from marlo_rllib.controllers.baselines import BASELINES, Controller, make_controller

__all__ = ["BASELINES", "Controller", "make_controller"]
