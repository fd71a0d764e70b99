"""The classic controllers: fixed time and actuated (SUMO's own programs), max-pressure, greedy
(longest queue) and random greens. The env enforces yellow, min-green and max-green for all of them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from marlo_rllib.controllers.base import Controller


class FixedTime(Controller):
    """The net's own signal programs."""

    name = "fixed"
    env_options = {"program": "fixed"}

    def act(self, observations, infos):
        return {}


class Actuated(FixedTime):
    """SUMO's gap-based actuated control on the net's own phases."""

    name = "actuated"
    env_options = {"program": "actuated"}


class RandomGreens(Controller):
    name = "random"

    def reset(self, env, seed=None):
        super().reset(env)
        self.rng = np.random.default_rng(seed)

    def act(self, observations, infos):
        return {a: int(self.rng.integers(self.env.junctions[a].n_greens)) for a in self.env.agents}


class _ScoredGreens(Controller):
    """Picks each junction's best-scoring green. A green whose movements have waited longer than
    `max_wait` seconds with vehicles queued is served first (anti-starvation); min-green and
    max-green come from the env."""

    def __init__(self, max_wait: float = 120.0) -> None:
        self.max_wait = max_wait

    def reset(self, env, seed=None):
        super().reset(env)
        self.last_served = {a: np.zeros(j.n_greens) for a, j in env.junctions.items()}

    def scores(self, agent: str) -> np.ndarray:
        raise NotImplementedError

    def act(self, observations, infos):
        actions = {}
        now = self.env.time
        for agent in self.env.agents:
            junction, traffic = self.env.junctions[agent], self.env.traffic[agent]
            served = self.last_served[agent]
            served[self.env.signals[agent].green] = now
            queued = junction.serves @ traffic.in_halting[junction.link_in] > 0
            starving = np.flatnonzero(queued & (now - served > self.max_wait))
            if len(starving):
                actions[agent] = int(starving[np.argmin(served[starving])])
            else:
                actions[agent] = int(np.argmax(self.scores(agent)))
        return actions


class MaxPressure(_ScoredGreens):
    """The green with the largest pressure: sum over its movements of (queue in - vehicles out)."""

    name = "max_pressure"

    def scores(self, agent):
        junction, traffic = self.env.junctions[agent], self.env.traffic[agent]
        return junction.serves @ (traffic.in_count[junction.link_in] - traffic.out_count[junction.link_out])


class Greedy(_ScoredGreens):
    """The green that serves the longest queue (halting vehicles on the lanes it releases)."""

    name = "greedy"

    def scores(self, agent):
        junction, traffic = self.env.junctions[agent], self.env.traffic[agent]
        lanes_served = np.zeros((junction.n_greens, len(junction.in_lanes)))
        np.maximum.at(lanes_served.T, junction.link_in, junction.serves.T)
        return lanes_served @ traffic.in_halting


BASELINES: dict[str, Callable[[], Controller]] = {
    "fixed": FixedTime,
    "actuated": Actuated,
    "max_pressure": MaxPressure,
    "greedy": Greedy,
    "random": RandomGreens,
}
