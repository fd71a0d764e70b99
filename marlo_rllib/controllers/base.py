"""Controllers: anything that picks the greens, behind one interface.

    controller = make_controller("max_pressure")
    env = TrafficSignalEnv(scenario, **controller.env_options)
    controller.reset(env)
    actions = controller.act(observations, infos)

A controller that runs a SUMO program (fixed, actuated) says so in env_options and returns no actions.
The env itself enforces yellow, min-green and max-green for every controller.
"""

from __future__ import annotations

from typing import Any

from marlo_rllib.env.traffic_signal_env import TrafficSignalEnv


class Controller:
    name = "controller"
    env_options: dict[str, Any] = {}

    def reset(self, env: TrafficSignalEnv, seed: int | None = None) -> None:
        self.env = env

    def act(self, observations: dict[str, Any], infos: dict[str, Any]) -> dict[str, int]:
        raise NotImplementedError
