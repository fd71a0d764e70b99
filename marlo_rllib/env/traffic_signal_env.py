"""TrafficSignalEnv: a PettingZoo ParallelEnv over a SUMO network, one agent per traffic light.

An action is the index of the next green phase. Changing green shows the yellow transition first
(yellow_time seconds, inside the same env step). A green is held at least min_green seconds and
never longer than max_green: when keeping it would pass max_green, the next green in program
order takes over.

Speed: all lane data comes from one batched subscription read per env step, and the simulation
advances a whole decision interval per call (two calls when some junction shows yellow).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import traci.constants as tc
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pydantic import ValidationError

from marlo_rllib import sumo
from marlo_rllib.env.junction import Junction, is_green, link_neighbours, read_junction
from marlo_rllib.env.metrics import EpisodeMetrics, StepCounts, read_teleports, read_tripinfo
from marlo_rllib.env.observations import OBSERVATIONS, Layout, StepContext
from marlo_rllib.env.rewards import make_reward
from marlo_rllib.env.traffic import JunctionTraffic, Signal
from marlo_rllib.errors import UserError
from marlo_rllib.scenarios.spec import ScenarioSpec, Timing, load_scenario

PROGRAMS = (None, "fixed", "actuated")
ACTUATED_PROGRAM = "marlo-actuated"
# Inside a large junction cluster (cologne3's) vehicles of conflicting streams can stop on the
# internal lanes waiting for each other for ever: a deadlock of SUMO's junction model that drivers
# resolve. With teleports off it would last to the episode's end whatever the signals do. After
# this many seconds SUMO lets foes pass such a vehicle; spillback from full lanes still gridlocks.
JUNCTION_BLOCKER_S = 60
LANE_VARS = [tc.LAST_STEP_VEHICLE_NUMBER, tc.LAST_STEP_VEHICLE_HALTING_NUMBER, tc.VAR_WAITING_TIME]


def _check_observation(name: str) -> None:
    if name not in OBSERVATIONS:
        raise UserError(f"unknown observation {name!r}; valid: {', '.join(sorted(OBSERVATIONS))}")


def check_names(spec: ScenarioSpec) -> None:
    """A scenario's observation and reward exist in the env's registries, with parameters the
    reward takes: a scenario YAML's typo, found before any simulation starts."""
    where = spec.source or spec.name
    try:
        _check_observation(spec.observation)
        make_reward(spec.reward.name, spec.reward.params)
    except UserError as exc:
        raise UserError(f"scenario {where}: {exc}") from None


class TrafficSignalEnv(ParallelEnv):
    metadata = {"name": "marlo_traffic_signal_v0", "render_modes": ["human"], "is_parallelizable": True}

    def __init__(
        self,
        scenario: ScenarioSpec | str,
        *,
        backend: str = "libsumo",
        seed: int = 0,
        observation: str | None = None,
        reward: str | None = None,
        reward_params: dict[str, Any] | None = None,
        timing: dict[str, int] | None = None,
        episode_seconds: int | None = None,
        shared_spaces: bool = False,
        program: str | None = None,
        demand_scale: float | Sequence[float] = 1.0,
        time_to_teleport: int | None = None,
        ignore_junction_blocker: int = JUNCTION_BLOCKER_S,
        render_mode: str | None = None,
        sumo_args: list[str] | None = None,
        traffic_scenario: str | int | None = None,
        state_in_infos: bool = False,
        agent_id: bool = False,
    ) -> None:
        """
        scenario: a ScenarioSpec, a catalog name or a YAML path.
        timing: overrides of the scenario's delta_time, yellow_time, min_green, max_green.
        shared_spaces: pad every agent to one observation size and one action count, and add an
            action mask, so that one policy can drive every junction: observations become
            {"observations": Box, "action_mask": Box(0/1)}.
        program: None (the agents pick the greens), "fixed" (the net's own programs run) or
            "actuated" (SUMO's actuated logic on the net's phases, greens between min_green and
            max_green). With a program, actions are ignored.
        demand_scale: SUMO's --scale (1.2 inserts 20% more vehicles), or a range [low, high]: each
            episode draws its scale uniformly from it, by its SUMO seed (`episode_demand_scale`).
        time_to_teleport: SUMO's --time-to-teleport; -1 turns teleports off; None (the default) takes
            the scenario's (off but on cologne3: scenarios/cologne3.yaml says why).
        ignore_junction_blocker: SUMO's --ignore-junction-blocker: a vehicle standing this many
            seconds inside a junction stops blocking its foes there; -1 never. See JUNCTION_BLOCKER_S.
        render_mode: "human" shows sumo-gui (needs backend="traci").
        traffic_scenario: for a generated scenario, which traffic demand: a name (every episode
            runs it), or an index into the training demands: the first episode runs that one, each
            reset moves on to the next (round-robin); None is the first training demand.
        agent_id: end every observation vector with a one-hot of the junction's index, so that one
            shared policy can tell junctions apart (on heterogeneous nets their padded vectors alone
            may not).
        state_in_infos: put the global state (`state()`) into every agent's infos under "state",
            one array shared by all agents of a step, for a centralized critic on the learner.
        """
        spec = scenario if isinstance(scenario, ScenarioSpec) else load_scenario(scenario)
        self._rotation: list[ScenarioSpec] = []  # the training demands, when episodes take turns on them
        self._next_demand = 0
        if isinstance(traffic_scenario, int) and len(spec.training_traffic) > 1:
            self._rotation = [spec.materialize(i) for i in range(len(spec.training_traffic))]
            self._next_demand = traffic_scenario % len(self._rotation)
            self.spec = self._rotation[self._next_demand]
        else:
            self.spec = spec.materialize(traffic_scenario)
        assert self.spec.net is not None  # materialized
        self.net_file: Path = self.spec.net
        if backend not in sumo.BACKENDS:
            raise UserError(f"unknown SUMO backend {backend!r}; valid: {', '.join(sumo.BACKENDS)}")
        if render_mode not in (None, "human"):
            raise UserError(f"unknown render_mode {render_mode!r}; valid: human")
        if render_mode == "human" and backend != "traci":
            raise UserError("render_mode='human' (sumo-gui) needs backend='traci'")
        low, high = _scale_range(demand_scale)
        if not 0 < low <= high < math.inf:
            raise UserError(f"demand_scale must be positive, or a range 0 < low <= high; got {demand_scale}")
        try:
            self.timing = Timing(**{**self.spec.timing.model_dump(), **(timing or {})})
        except ValidationError as exc:
            error = exc.errors()[0]
            raise UserError(f"timing: {'.'.join(map(str, error['loc'])) or 'values'}: {error['msg']}") from None
        self.observation_name = observation or self.spec.observation
        _check_observation(self.observation_name)
        reward_name = reward or self.spec.reward.name
        params = reward_params if reward_params is not None else (self.spec.reward.params if not reward else {})
        self.reward_fn = make_reward(reward_name, params)
        self.observation_fn = OBSERVATIONS[self.observation_name]()
        self.backend = backend
        self.episode_seconds = episode_seconds or self.spec.episode_seconds
        self.shared_spaces = shared_spaces
        self.state_in_infos = state_in_infos
        self.agent_id = agent_id
        if program not in PROGRAMS:
            raise UserError(f"unknown signal program {program!r}; valid: fixed, actuated")
        self.program = program
        self.demand_scale = demand_scale
        self.episode_demand_scale = float(low)
        self.time_to_teleport = self.spec.time_to_teleport if time_to_teleport is None else time_to_teleport
        self.ignore_junction_blocker = ignore_junction_blocker
        self.render_mode = render_mode
        self.sumo_args = list(sumo_args or [])
        self.label = f"marlo-{uuid.uuid4().hex[:8]}"
        self._next_seed = seed
        self.seed_used: int | None = None
        self._conn: Any = None
        self._observations: dict[str, Any] = {}

        self.junctions = self._read_structure()
        self.output_dir = Path(tempfile.mkdtemp(prefix="marlo-sumo-"))
        self.possible_agents = list(self.junctions)
        self._ids = {
            a: np.eye(len(self.possible_agents), dtype=np.float32)[i] if agent_id else np.zeros(0, np.float32)
            for i, a in enumerate(self.possible_agents)
        }
        self.agents: list[str] = []
        native = {a: Layout.of(j) for a, j in self.junctions.items()}
        widest = Layout.widest(list(native.values()))
        self.layouts = {a: widest for a in native} if shared_spaces else native
        self._observation_spaces = {a: self._observation_space(a) for a in self.possible_agents}
        self._action_spaces: dict[str, spaces.Space] = {
            a: spaces.Discrete(self.layouts[a].greens) for a in self.possible_agents
        }
        self._masks = {
            a: np.array([i < j.n_greens for i in range(widest.greens)], dtype=np.int8)
            for a, j in self.junctions.items()
        }
        self.state_space = spaces.Box(
            low=min(self.observation_fn.low, 0.0),
            high=np.inf,
            shape=(sum(self.observation_fn.size(self.layouts[a]) for a in self.possible_agents) + 2,),
            dtype=np.float32,
        )
        self._lanes: list[str] = []
        self._vehicle_lanes: list[str] = []
        self._index_lanes()
        self._total_capacity = float(sum(j.in_capacity.sum() for j in self.junctions.values()))

    # ---- structure -------------------------------------------------------------------------

    def _sumo_command(self, with_routes: bool, seed: int) -> list[str]:
        cmd = [
            sumo.binary("sumo-gui" if self.render_mode == "human" else "sumo"),
            "--net-file",
            str(self.net_file),
            "--begin",
            str(self.begin),
            "--step-length",
            str(self.spec.step_length),
            "--seed",
            str(seed),
            "--time-to-teleport",
            str(self.time_to_teleport),
            "--ignore-junction-blocker",
            str(self.ignore_junction_blocker),
            "--no-step-log",
            "true",
            "--no-warnings",
            "true",
            "--duration-log.disable",
            "true",
        ]
        if with_routes:
            cmd += [
                "--route-files",
                ",".join(str(r) for r in self.spec.routes),
                "--scale",
                str(self.episode_demand_scale),
                "--tripinfo-output",
                str(self.output_dir / "tripinfo.xml"),
                "--tripinfo-output.write-unfinished",
                "true",
                "--tripinfo-output.write-undeparted",
                "true",
                "--statistic-output",
                str(self.output_dir / "statistics.xml"),
            ]
        if with_routes and self.reward_fn.needs_accumulated_waiting:  # SUMO forgets waiting older than 100 s by default
            cmd += ["--waiting-time-memory", str(self.end - self.begin)]
        if with_routes and self.program == "actuated":
            cmd += ["--additional-files", str(self._actuated_programs())]
        if self.render_mode == "human":
            cmd += ["--start", "--quit-on-end"]
        return cmd + self.sumo_args

    def _actuated_programs(self) -> Path:
        """An additional file with an actuated copy of every signal program of the net."""
        path = self.output_dir / "actuated.add.xml"
        if not path.exists():
            root = ET.Element("additional")
            for logic in ET.parse(self.net_file).getroot().iter("tlLogic"):
                actuated = ET.SubElement(
                    root, "tlLogic", id=logic.attrib["id"], programID=ACTUATED_PROGRAM, type="actuated", offset="0"
                )
                for phase in logic.iter("phase"):
                    attributes = dict(phase.attrib)
                    if is_green(attributes["state"]):
                        attributes["minDur"] = str(self.timing.min_green)
                        attributes["maxDur"] = str(self.timing.max_green)
                    ET.SubElement(actuated, "phase", attributes)
            ET.ElementTree(root).write(path)
        return path

    def _read_structure(self) -> dict[str, Junction]:
        sumo.check_xml([self.net_file, *map(Path, self.spec.routes)])
        conn = sumo.start(self._sumo_command(with_routes=False, seed=0), self.backend, self.label)
        try:
            junctions = {tls: read_junction(conn, tls) for tls in sorted(conn.trafficlight.getIDList())}
        finally:
            conn.close()
        if not junctions:
            raise UserError(f"network {self.spec.net} has no traffic lights: there is nothing to control")
        link_neighbours(junctions)
        return junctions

    def _index_lanes(self) -> None:
        rows: dict[str, int] = {}
        for junction in self.junctions.values():
            junction.in_idx = np.array([rows.setdefault(lane, len(rows)) for lane in junction.in_lanes], dtype=np.int64)
            junction.out_idx = np.array(
                [rows.setdefault(lane, len(rows)) for lane in junction.out_lanes], dtype=np.int64
            )
        self._lanes = list(rows)
        if self.reward_fn.needs_vehicle_ids:
            self._vehicle_lanes = list(dict.fromkeys(lane for j in self.junctions.values() for lane in j.in_lanes))
        self._edge_light = {edge: agent for agent, j in self.junctions.items() for edge in j.in_edges}

    def _vector_size(self, agent: str) -> int:
        return self.observation_fn.size(self.layouts[agent]) + len(self._ids[agent])

    def _observation_space(self, agent: str) -> spaces.Space:
        box = spaces.Box(
            low=self.observation_fn.low,
            high=1.0,
            shape=(self._vector_size(agent),),
            dtype=np.float32,
        )
        if not self.shared_spaces:
            return box
        mask = spaces.Box(0, 1, shape=(self.layouts[agent].greens,), dtype=np.int8)
        return spaces.Dict({"observations": box, "action_mask": mask})

    def observation_space(self, agent: str) -> spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._action_spaces[agent]

    @property
    def begin(self) -> int:
        """The simulation time the episode starts at (a generated demand's own start hour)."""
        return self.spec.begin

    @property
    def end(self) -> int:
        return self.spec.begin + self.episode_seconds

    def action_mask(self, agent: str) -> np.ndarray:
        """1 for the green phases this junction really has, 0 for padding."""
        return self._masks[agent]

    # ---- episode ---------------------------------------------------------------------------

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """seed is SUMO's --seed; without one, each reset takes the next integer after the last."""
        self._close_simulation()
        if self._rotation:
            self.spec = self._rotation[self._next_demand]
            self._next_demand = (self._next_demand + 1) % len(self._rotation)
        self.seed_used = self._next_seed if seed is None else int(seed)
        self._next_seed = self.seed_used + 1
        low, high = _scale_range(self.demand_scale)
        self.episode_demand_scale = (
            low if low == high else round(np.random.default_rng(self.seed_used).uniform(low, high), 3)
        )
        self._conn = sumo.start(self._sumo_command(with_routes=True, seed=self.seed_used), self.backend, self.label)
        for lane in self._lanes:
            self._conn.lane.subscribe(lane, LANE_VARS)
        for lane in self._vehicle_lanes:
            self._conn.lane.subscribe(lane, [*LANE_VARS, tc.LAST_STEP_VEHICLE_ID_LIST])
        self.time = float(self.begin)
        self.signals = {a: Signal() for a in self.possible_agents}
        if self.program == "actuated":
            for agent in self.junctions:
                self._conn.trafficlight.setProgram(agent, ACTUATED_PROGRAM)
        if self.program is None:
            for agent, junction in self.junctions.items():
                self._conn.trafficlight.setRedYellowGreenState(agent, junction.greens[0])
        self.traffic = {a: JunctionTraffic.empty(len(j.in_lanes), len(j.out_lanes)) for a, j in self.junctions.items()}
        self._waiting_on_arrival: dict[str, dict[str, float]] = {a: {} for a in self.junctions}
        self._time_loss_seen: dict[str, dict[str, float]] = {a: {} for a in self.junctions}
        self._pending_since: dict[str, float] = {}
        self._first_light: dict[str, str | None] = {}
        self.counts = StepCounts()
        self._network = np.zeros(2, dtype=np.float32)
        self.agents = self.possible_agents[:]
        self._observations = self._observe()
        return self._observations, self._with_state({a: {} for a in self.agents})

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self._conn is None:
            raise RuntimeError("call reset() before step()")
        delta, yellow = self.timing.delta_time, self.timing.yellow_time
        switching = {} if self.program else self._choose_greens(actions)
        for agent, target in switching.items():
            self._conn.trafficlight.setRedYellowGreenState(
                agent, self.junctions[agent].yellow(self.signals[agent].green, target)
            )
        if switching and yellow > 0:
            self._conn.simulationStep(self.time + yellow)
        for agent, target in switching.items():
            self._conn.trafficlight.setRedYellowGreenState(agent, self.junctions[agent].greens[target])
        self.time += delta
        self._conn.simulationStep(self.time)
        for agent, signal in self.signals.items():
            if agent in switching:
                signal.green, signal.green_time = switching[agent], float(delta - yellow)
            else:
                signal.green_time += delta
        if self.program:
            self._read_program_greens()

        before = self.traffic
        self.traffic = self._read_traffic()
        rewards = {a: self.reward_fn(self.traffic[a], before[a]) for a in self.agents}
        self._observations = self._observe()
        done = self.time >= self.end
        infos: dict[str, dict] = {a: {} for a in self.agents}
        if done:
            metrics = self._finish_episode()
            for agent in self.agents:
                infos[agent] = {
                    "metrics": metrics.as_dict(),
                    "scenario": self.spec.name,
                    "traffic_scenario": self.spec.traffic_name,
                    "seed": self.seed_used,
                    "demand_scale": self.episode_demand_scale,
                }
        observations = self._observations
        infos = self._with_state(infos)
        terminations = {a: False for a in self.agents}
        truncations = {a: done for a in self.agents}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def _choose_greens(self, actions: dict[str, Any]) -> dict[str, int]:
        """The junctions whose green changes this step, and to which green."""
        switching: dict[str, int] = {}
        for agent in self.agents:
            junction, signal = self.junctions[agent], self.signals[agent]
            target = signal.green
            if agent in actions:
                action = int(actions[agent])
                if not 0 <= action < junction.n_greens:
                    raise ValueError(
                        f"junction {agent!r} got action {action}, but has only {junction.n_greens} greens "
                        "(a masked action): sample with the action mask"
                    )
                target = action
            if signal.green_time < self.timing.min_green:
                target = signal.green
            elif (
                target == signal.green
                and signal.green_time + self.timing.delta_time > self.timing.max_green
                and junction.n_greens > 1
            ):
                target = (signal.green + 1) % junction.n_greens
            if target != signal.green:
                switching[agent] = target
        return switching

    def _read_program_greens(self) -> None:
        for agent, junction in self.junctions.items():
            index = junction.green_index(self._conn.trafficlight.getRedYellowGreenState(agent))
            signal = self.signals[agent]
            if index is not None and index != signal.green:
                signal.green, signal.green_time = index, 0.0

    def _read_traffic(self) -> dict[str, JunctionTraffic]:
        results = self._conn.lane.getAllSubscriptionResults()
        table = np.array([[results[lane][v] for v in LANE_VARS] for lane in self._lanes], dtype=np.float32)
        vehicles_on = {lane: results[lane][tc.LAST_STEP_VEHICLE_ID_LIST] for lane in self._vehicle_lanes}
        traffic = {}
        tracked, losses = self.reward_fn.needs_accumulated_waiting, self.reward_fn.needs_time_loss
        pending = self._pending_waiting() if tracked or losses else {}
        for agent, j in self.junctions.items():
            ids = frozenset(v for lane in j.in_lanes for v in vehicles_on[lane]) if vehicles_on else frozenset()
            rows = table[j.in_idx]
            accumulated = self._accumulated_waiting(agent, ids) if tracked else 0.0
            traffic[agent] = JunctionTraffic(
                rows[:, 0],
                rows[:, 1],
                rows[:, 2],
                table[j.out_idx, 0],
                ids,
                accumulated,
                pending.get(agent, 0.0),
                self._step_time_loss(agent, ids) if losses else 0.0,
            )
        in_rows = table[np.concatenate([j.in_idx for j in self.junctions.values()])]
        present, halting, waiting = in_rows.sum(axis=0)
        self.counts.add(halting / len(self.junctions), halting, present)
        running = self._conn.vehicle.getIDCount()
        self._network = np.array(
            [running / self._total_capacity, waiting / max(present, 1.0) / 100.0], dtype=np.float32
        )
        return traffic

    def _accumulated_waiting(self, agent: str, vehicles: frozenset[str]) -> float:
        """Waiting time the vehicles on this junction's incoming lanes accumulated since they were first seen there."""
        waiting = {v: self._conn.vehicle.getAccumulatedWaitingTime(v) for v in vehicles}
        arrival = self._waiting_on_arrival[agent]
        self._waiting_on_arrival[agent] = arrival = {v: arrival.get(v, w) for v, w in waiting.items()}
        return float(sum(w - arrival[v] for v, w in waiting.items()))

    def _step_time_loss(self, agent: str, vehicles: frozenset[str]) -> float:
        """Time the vehicles on this junction's incoming lanes lost since the last step (a vehicle's
        first step there counts from when it is first seen)."""
        now = {v: self._conn.vehicle.getTimeLoss(v) for v in vehicles}
        before = self._time_loss_seen[agent]
        self._time_loss_seen[agent] = now
        return float(sum(loss - before.get(v, loss) for v, loss in now.items()))

    def _pending_waiting(self) -> dict[str, float]:
        """Per junction: how long the vehicles SUMO could not yet insert have waited (counted from the
        step they were first pending), each at the first traffic light on its route: an entry edge
        may lie upstream of every controlled lane, its backlog behind a queue that spilled back."""
        since: dict[str, float] = {}
        totals = dict.fromkeys(self.junctions, 0.0)
        for vehicle in self._conn.simulation.getPendingVehicles():
            since[vehicle] = self._pending_since.get(vehicle, self.time)
            if vehicle not in self._first_light:
                route = self._conn.vehicle.getRoute(vehicle)
                self._first_light[vehicle] = next((self._edge_light[e] for e in route if e in self._edge_light), None)
            if (agent := self._first_light[vehicle]) is not None:
                totals[agent] += self.time - since[vehicle]
        self._pending_since = since
        return totals

    def _observe(self) -> dict[str, Any]:
        ctx = StepContext(self.junctions, self.signals, self.traffic, self.timing.min_green)
        observations = {}
        for agent in self.possible_agents:
            vector = self.observation_fn(ctx, agent, self.layouts[agent])
            if self.agent_id:
                vector = np.concatenate([vector, self._ids[agent]])
            observations[agent] = (
                {"observations": vector, "action_mask": self._masks[agent]} if self.shared_spaces else vector
            )
        return observations

    def state(self) -> np.ndarray:
        """Global state for a centralized critic: every agent's observation without its one-hot (a
        junction's place in the state says which it is), then two network totals (vehicles running /
        controlled-lane capacity, mean waiting per vehicle on controlled lanes / 100 s)."""
        if not self._observations:
            raise RuntimeError("call reset() before state()")
        parts = [self._observations[agent] for agent in self.possible_agents]
        if self.shared_spaces:
            parts = [part["observations"] for part in parts]
        ids = [len(self._ids[agent]) for agent in self.possible_agents]
        return np.concatenate([*(part[: part.size - n] for part, n in zip(parts, ids, strict=True)), self._network])

    def _with_state(self, infos: dict[str, dict]) -> dict[str, dict]:
        if self.state_in_infos:
            state = self.state()
            for info in infos.values():
                info["state"] = state
        return infos

    def _finish_episode(self) -> EpisodeMetrics:
        self._close_simulation()
        trips = read_tripinfo(self.output_dir / "tripinfo.xml")
        return self.counts.episode(trips, read_teleports(self.output_dir / "statistics.xml"))

    @property
    def tripinfo_file(self) -> Path:
        """The tripinfo of the last finished episode."""
        return self.output_dir / "tripinfo.xml"

    def _close_simulation(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._close_simulation()
        shutil.rmtree(self.output_dir, ignore_errors=True)


def _scale_range(demand_scale: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(demand_scale, (int, float)):
        return float(demand_scale), float(demand_scale)
    if len(demand_scale) != 2:
        raise UserError(f"demand_scale must be a number or a range [low, high], got {demand_scale}")
    low, high = demand_scale
    return float(low), float(high)
