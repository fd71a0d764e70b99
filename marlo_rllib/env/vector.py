"""Several SUMO simulations behind one RLlib env runner, each in its own process.

libsumo runs one simulation per process, so RLlib's in-process vector env cannot hold two. Here each
simulation lives in a child process (`resources.envs_per_env_runner` of them): a step sends every
child its actions, the SUMOs advance in parallel, and RLlib's per-step work (episodes, connectors,
the forward pass) is done once for all of them.

A simulation that crashes, or a child that dies, costs only its own episode: the child is started
anew and the episode is reported truncated, with its last observation; the others go on.

Seeds: the simulation j of env runner w seeds as RLlibTrafficSignalEnv would on the (virtual) env
runner w + j * num_env_runners, so no two simulations anywhere replay the same demand, and a
generated scenario's training demands are spread over all of them.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

import gymnasium as gym
from ray.rllib.env.env_context import EnvContext
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.env.vector.vector_multi_agent_env import VectorMultiAgentEnv
from ray.rllib.utils.metrics import (
    NUM_AGENT_STEPS_SAMPLED,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_MODULE_STEPS_SAMPLED,
    NUM_MODULE_STEPS_SAMPLED_LIFETIME,
)

from marlo_rllib.env.connectors import actions_to_envs, direct_connectors_fit, observations_to_module

logger = logging.getLogger(__name__)
START_TIMEOUT_S = 300.0  # building a large net's first simulation can take a while
RESET_TRIES = 3


def _serve(connection: Connection, env_config: dict[str, Any], worker_index: int, num_workers: int) -> None:
    """The child: one RLlibTrafficSignalEnv, driven by (command, argument) messages."""
    from marlo_rllib.env.rllib import RLlibTrafficSignalEnv

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the driver's to handle; the parent ends this

    env = RLlibTrafficSignalEnv(EnvContext(env_config, worker_index=worker_index, num_workers=num_workers))
    agents = list(env.par_env.possible_agents)
    connection.send(
        (agents, {a: env.get_observation_space(a) for a in agents}, {a: env.get_action_space(a) for a in agents})
    )
    try:
        while True:
            command, argument = connection.recv()
            if command == "close":
                break
            try:
                result = env.reset() if command == "reset" else env.step(argument)
            except Exception as exc:  # SUMO failed: the parent restarts this child
                connection.send(("error", f"{type(exc).__name__}: {exc}"))
                break
            connection.send(("ok", result))
    except EOFError:  # the parent is gone
        pass
    finally:
        env.close()


def _flags(agents: list[str], value: bool) -> dict[str, bool]:
    """RLlib's terminated/truncated dict: each agent's flag and "__all__"."""
    return {**{a: value for a in agents}, "__all__": value}


class SubEnv:
    """What RLlib asks of `vector_env.envs[i].unwrapped`: the agents and their spaces."""

    def __init__(self, agents: list[str], observation_spaces: dict, action_spaces: dict) -> None:
        self.possible_agents = agents
        self.observation_spaces, self.action_spaces = observation_spaces, action_spaces

    @property
    def unwrapped(self) -> SubEnv:
        return self

    def get_observation_space(self, agent: str) -> gym.Space:
        return self.observation_spaces[agent]

    def get_action_space(self, agent: str) -> gym.Space:
        return self.action_spaces[agent]


class SubprocessVectorEnv(VectorMultiAgentEnv):
    def __init__(self, env_config: dict[str, Any], worker_index: int, num_workers: int, num_envs: int) -> None:
        self.env_config, self.num_envs = dict(env_config), num_envs
        self._context = multiprocessing.get_context("spawn")
        self._indices = [worker_index + j * max(num_workers, 1) for j in range(num_envs)]
        self._num_workers = num_workers
        self._episodes = [0] * num_envs  # resets sent to each simulation slot
        self._children: list[tuple[Any, Connection]] = [self._start(j) for j in range(num_envs)]
        self.sub_envs = [self._receive_spaces(j) for j in range(num_envs)]
        self.envs = self.sub_envs
        self.single_observation_spaces = self.sub_envs[0].observation_spaces
        self.single_action_spaces = self.sub_envs[0].action_spaces
        self.single_observation_space = gym.spaces.Dict(self.single_observation_spaces)
        self.single_action_space = gym.spaces.Dict(self.single_action_spaces)
        self.metadata = {"autoreset_mode": "next_step"}
        self._done = [False] * num_envs
        self._last: list[dict] = [{} for _ in range(num_envs)]
        self.restarts = 0

    def _start(self, j: int) -> tuple[Any, Connection]:
        parent, child = self._context.Pipe()
        env_config = dict(self.env_config)
        if "seed_base" in env_config:  # a restarted child goes on with the next seed, not its first again
            env_config["seed_base"] += self._episodes[j]
        process = self._context.Process(
            target=_serve, args=(child, env_config, self._indices[j], self._num_workers), daemon=True
        )
        process.start()
        child.close()
        return process, parent

    def _receive_spaces(self, j: int) -> SubEnv:
        connection = self._children[j][1]
        if not connection.poll(START_TIMEOUT_S):
            raise RuntimeError(f"simulation {j} did not start within {START_TIMEOUT_S:.0f} s")
        return SubEnv(*connection.recv())

    def _restart(self, j: int, why: str) -> None:
        logger.warning("simulation %d of this env runner failed (%s); starting it anew, its episode is cut", j, why)
        process, connection = self._children[j]
        connection.close()
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
        self._children[j] = self._start(j)
        self._receive_spaces(j)
        self.restarts += 1

    def _receive(self, j: int) -> Any:
        """The child's answer, or None once it has failed (it is then started anew)."""
        try:
            status, result = self._children[j][1].recv()
        except (EOFError, OSError) as exc:
            status, result = "error", f"the process ended ({type(exc).__name__})"
        if status == "ok":
            return result
        self._restart(j, result)
        return None

    def reset(self, *, seed: Any = None, options: Any = None) -> Any:
        for j in range(self.num_envs):
            self._send(j, ("reset", None))
        observations, infos = [], []
        for j in range(self.num_envs):
            result = self._receive(j) or self._reset_child(j)
            observations.append(result[0])
            infos.append(result[1])
            self._last[j] = result[0]
        self._done = [False] * self.num_envs
        return observations, infos

    def _send(self, j: int, message: tuple[str, Any]) -> None:
        if message[0] == "reset":
            self._episodes[j] += 1
        try:
            self._children[j][1].send(message)
        except OSError:  # the child is gone: _receive reports it
            pass

    def step(self, actions: Any) -> Any:
        for j in range(self.num_envs):
            self._send(j, ("reset", None) if self._done[j] else ("step", actions[j]))
        columns: tuple[list, ...] = ([], [], [], [], [])  # observations, rewards, terminateds, truncateds, infos
        for j in range(self.num_envs):
            was_done = self._done[j]
            result = self._receive(j)
            if result is None:
                result = self._cut(j) if not was_done else self._fresh_episode(j, self._reset_child(j))
            elif was_done:
                result = self._fresh_episode(j, result)
            for column, value in zip(columns, result, strict=True):
                column.append(value)
            observations, _, terminateds, truncateds, _ = result
            self._last[j] = observations
            self._done[j] = bool(terminateds.get("__all__") or truncateds.get("__all__"))
        return columns

    def _reset_child(self, j: int) -> tuple[dict, dict]:
        """A reset on the restarted child j (a reset that fails is tried on a fresh child again)."""
        for _ in range(RESET_TRIES):
            self._send(j, ("reset", None))
            result = self._receive(j)
            if result is not None:
                return result
        raise RuntimeError(f"simulation {j} failed {RESET_TRIES} resets in a row")

    def _fresh_episode(self, j: int, reset: tuple[dict, dict]) -> tuple:
        """RLlib's "next_step" autoreset: the step after an episode's end returns the new episode's start."""
        observations, infos = reset
        agents = self.sub_envs[j].possible_agents
        return observations, {a: 0.0 for a in agents}, _flags(agents, False), _flags(agents, False), infos

    def _cut(self, j: int) -> tuple:
        """A failed simulation's episode, truncated at its last observation."""
        agents = list(self._last[j])
        return (
            self._last[j],
            {a: 0.0 for a in agents},
            _flags(agents, False),
            _flags(agents, True),
            {a: {} for a in agents},
        )

    def close_extras(self, **kwargs: Any) -> None:
        for _, connection in self._children:
            try:
                connection.send(("close", None))
            except OSError:
                pass
        for process, connection in self._children:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
            connection.close()


class MarloEnvRunner(MultiAgentEnvRunner):
    """RLlib's multi-agent env runner, with less work per env step (direct connectors: env/connectors.py);
    with more than one env per runner, the envs are SUMO simulations in child processes
    (SubprocessVectorEnv) instead of in-process copies."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._agent_steps: Counter[tuple[str, str]] = Counter()  # (agent, module): steps not yet logged
        super().__init__(*args, **kwargs)

    def make_env(self) -> None:
        if self.config.num_envs_per_env_runner == 1:
            super().make_env()
            assert self.env is not None
            # The env builds new observations every step, so RLlib's deep copy of them is not needed.
            self.env.unwrapped.copy = False
            return
        if self.env is not None:
            try:
                self.env.close()
            except Exception as exc:
                logger.warning("closing the old envs failed: %s", exc)
        self.env = SubprocessVectorEnv(
            dict(self.config.env_config),
            self.worker_index,
            self.config.num_env_runners,
            self.config.num_envs_per_env_runner,
        )
        self.num_envs = self.env.num_envs
        self._needs_initial_reset = True

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().sample(*args, **kwargs)
        finally:
            self._log_agent_steps()

    def _sample(self, **kwargs: Any) -> list:
        # RLlib converts every episode finished so far in a sample() to numpy again after each env step
        # (validating each agent's data each time); converting them once, on return, gives the same episodes.
        to_numpy, self.episodes_to_numpy = self.episodes_to_numpy, False
        pipelines = self._env_to_module, self._module_to_env
        if direct_connectors_fit(self.config, self.module):
            direct: tuple[Any, Any] = (observations_to_module, actions_to_envs)  # called as the pipelines are
            self._env_to_module, self._module_to_env = direct
        try:
            episodes = super()._sample(**kwargs)
        finally:
            self.episodes_to_numpy = to_numpy
            self._env_to_module, self._module_to_env = pipelines
        return [episode.to_numpy() for episode in episodes] if to_numpy else episodes

    def _increase_sampled_metrics(self, num_steps: int, next_obs: dict, episode: Any) -> int:
        # RLlib logs four counters per agent at every env step, one of a runner's largest costs on a
        # map of many junctions; they are counted here and logged once per sample() with the same totals.
        for agent in next_obs:
            self._agent_steps[str(agent), episode.module_for(agent)] += 1
        return super()._increase_sampled_metrics(num_steps, {}, episode)

    def _log_agent_steps(self) -> None:
        for (agent, module), steps in self._agent_steps.items():
            self.metrics.log_value((NUM_AGENT_STEPS_SAMPLED, agent), steps, reduce="sum")
            self.metrics.log_value((NUM_AGENT_STEPS_SAMPLED_LIFETIME, agent), steps, reduce="lifetime_sum")
            self.metrics.log_value((NUM_MODULE_STEPS_SAMPLED, module), steps, reduce="sum")
            self.metrics.log_value((NUM_MODULE_STEPS_SAMPLED_LIFETIME, module), steps, reduce="lifetime_sum")
        self._agent_steps.clear()
