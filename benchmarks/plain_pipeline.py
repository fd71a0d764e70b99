"""The plain contender: what a user gets by gluing sumo-rl's env to stock RLlib PPO, without marlo.

sumo-rl's core `SumoEnvironment` (its PettingZoo wrapper calls a name current pettingzoo no longer
exports) behind a thin RLlib MultiAgentEnv, on libsumo; stock `PPOConfig` with the settings of
sumo-rl's RLlib example (experiments/ppo_4x4grid.py: 4 env runners, fragments of 128, batch 512,
lr 2e-5, gamma 0.95, lambda 0.9, clip 0.4, entropy 0.1, vf 0.25, minibatch 64, 10 epochs); one module
for all junctions where their spaces agree, one per junction otherwise.
Training runs `algo.train()` until the wall-clock budget is spent and keeps the final weights, as
that example does. Evaluation: greedy actions, SUMO seeds given, delay from SUMO's tripinfo
(the same reader as marlo's, so the same RESCO definition), in the simulation marlo evaluates in:
teleports off (but where the scenario sets a --time-to-teleport: cologne3), junction deadlocks
dissolved after JUNCTION_BLOCKER_S.

    python benchmarks/plain_pipeline.py train --scenario grid4x4 --minutes 20 --out DIR
    python benchmarks/plain_pipeline.py eval --scenario grid4x4 --checkpoint DIR --seeds 0,1,2,3,4 --demand-scale 1.0

Lives in benchmarks/ only: it is a yardstick, never part of marlo.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["LIBSUMO_AS_TRACI"] = "1"  # sumo-rl's own switch to libsumo; read when it imports traci

from ray.rllib.env.multi_agent_env import MultiAgentEnv  # noqa: E402

DELTA_TIME, YELLOW_TIME, MIN_GREEN, MAX_GREEN = 5, 2, 5, 50
STOCK: dict[str, Any] = {
    "lr": 2e-5,
    "gamma": 0.95,
    "lambda_": 0.9,
    "use_gae": True,
    "clip_param": 0.4,
    "grad_clip": None,
    "entropy_coeff": 0.1,
    "vf_loss_coeff": 0.25,
    "train_batch_size_per_learner": 512,
    "minibatch_size": 64,
    "num_epochs": 10,
}
RUNNERS, FRAGMENT = 4, 128


def sumo_rl_env(scenario: str, seed: int | str = "random", demand_scale: float = 1.0, tripinfo: Path | None = None):
    from marlo_rllib import sumo
    from marlo_rllib.env.traffic_signal_env import JUNCTION_BLOCKER_S
    from marlo_rllib.scenarios import load_scenario

    sumo.sumo_home()  # sumo-rl reads SUMO_HOME when it is imported
    from sumo_rl import SumoEnvironment

    spec = load_scenario(scenario).materialize()
    extra = [f"--scale {demand_scale}"]
    if tripinfo is not None:  # an evaluation: the simulation marlo's evaluations run
        extra.append(
            f"--tripinfo-output {tripinfo} --tripinfo-output.write-unfinished true "
            f"--tripinfo-output.write-undeparted true --ignore-junction-blocker {JUNCTION_BLOCKER_S}"
        )
    return SumoEnvironment(
        net_file=str(spec.net),
        route_file=",".join(map(str, spec.routes)),
        begin_time=spec.begin,
        num_seconds=spec.episode_seconds,
        delta_time=DELTA_TIME,
        yellow_time=YELLOW_TIME,
        min_green=MIN_GREEN,
        max_green=MAX_GREEN,
        time_to_teleport=spec.time_to_teleport if tripinfo is not None else -1,
        single_agent=False,
        sumo_seed=seed,
        sumo_warnings=False,
        use_gui=False,
        additional_sumo_cmd=" ".join(extra),
    )


class SumoRLMultiAgentEnv(MultiAgentEnv):
    """The thin adapter a user writes: sumo-rl's multi-agent dicts in RLlib's reset/step shape."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.env = sumo_rl_env(config["scenario"])
        self.agents = self.possible_agents = list(self.env.ts_ids)
        self.observation_spaces = {a: self.env.observation_spaces(a) for a in self.agents}
        self.action_spaces = {a: self.env.action_spaces(a) for a in self.agents}

    def reset(self, *, seed=None, options=None):
        return self.env.reset(), {}

    def step(self, actions):
        observations, rewards, dones, infos = self.env.step(actions)
        done = dones["__all__"]
        return (observations, rewards, {"__all__": False}, {a: done for a in [*observations, "__all__"]}, {})

    def close(self):
        self.env.close()


def junction_spaces(scenario: str) -> dict[str, tuple[str, str]]:
    """Each junction's (observation space, action space), as sumo-rl builds them."""
    env = sumo_rl_env(scenario)
    try:
        return {a: (str(env.observation_spaces(a)), str(env.action_spaces(a))) for a in env.ts_ids}
    finally:
        env.close()


def plain_config(scenario: str) -> tuple[Any, bool]:
    """The stock PPOConfig a user writes, and whether its junctions share one module."""
    from ray.rllib.algorithms.ppo import PPOConfig

    spaces = junction_spaces(scenario)
    shared = len(set(spaces.values())) == 1
    config = (
        PPOConfig()
        .environment(SumoRLMultiAgentEnv, env_config={"scenario": scenario}, disable_env_checking=True)
        .env_runners(num_env_runners=RUNNERS, rollout_fragment_length=FRAGMENT)
        .training(**STOCK)
    )
    if shared:
        config = config.multi_agent(policies={"shared"}, policy_mapping_fn=lambda *args, **kwargs: "shared")
    else:  # one module per junction: their spaces differ
        config = config.multi_agent(policies=set(spaces), policy_mapping_fn=lambda agent_id, *args, **kwargs: agent_id)
    return config, shared


def start_ray() -> None:
    import ray

    ray.init(num_cpus=max(os.cpu_count() or 1, RUNNERS + 1), include_dashboard=False, log_to_driver=False)


def train(scenario: str, minutes: float, out: Path) -> dict[str, Any]:
    import ray

    config, shared = plain_config(scenario)
    start_ray()
    curve = []
    try:
        algo = config.build_algo()
        started = time.monotonic()
        while time.monotonic() - started < 60 * minutes:
            result = algo.train()
            curve.append(
                {
                    "minutes": round((time.monotonic() - started) / 60, 2),
                    "env_steps": result.get("num_env_steps_sampled_lifetime", 0),
                    "return": result.get("env_runners", {}).get("episode_return_mean"),
                }
            )
        algo.save_to_path(str(out.resolve() / "checkpoint"))
        algo.stop()
    finally:
        ray.shutdown()
    info = {
        "scenario": scenario,
        "minutes": minutes,
        "shared": shared,
        "curve": curve,
        "env_steps": curve[-1]["env_steps"] if curve else 0,
        "iterations": len(curve),
    }
    (out / "plain.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def _episode(task: tuple[str, str, int, float]) -> dict[str, float]:
    import numpy as np
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModule

    from marlo_rllib.env.metrics import read_tripinfo

    scenario, checkpoint, seed, demand_scale = task
    modules_dir = Path(checkpoint) / "checkpoint" / "learner_group" / "learner" / "rl_module"
    modules = {path.name: RLModule.from_checkpoint(path) for path in modules_dir.iterdir() if path.is_dir()}
    with tempfile.TemporaryDirectory() as folder:
        tripinfo = Path(folder) / "tripinfo.xml"
        env = sumo_rl_env(scenario, seed=seed, demand_scale=demand_scale, tripinfo=tripinfo)
        observations, done = env.reset(), False
        while not done:
            actions = {}
            for agent, observation in observations.items():
                module = modules.get(agent) or modules["shared"]
                batch = {"obs": torch.as_tensor(np.asarray(observation, dtype=np.float32))[None]}
                logits = module.forward_inference(batch)["action_dist_inputs"]
                actions[agent] = int(torch.argmax(logits, dim=-1)[0])
            observations, _, dones, _ = env.step(actions)
            done = dones["__all__"]
        env.close()
        trips = read_tripinfo(tripinfo)
    return {
        "seed": seed,
        "delay": trips.delay,
        "trip_time": trips.trip_time,
        "waiting_time": trips.waiting_time,
        "throughput": trips.throughput,
    }


def evaluate(scenario: str, checkpoint: Path, seeds: list[int], demand_scale: float, workers: int = 2) -> list[dict]:
    """One greedy episode per seed, each in its own process (libsumo runs one simulation per process)."""
    tasks = [(scenario, str(checkpoint), seed, demand_scale) for seed in seeds]
    with multiprocessing.get_context("spawn").Pool(min(workers, len(tasks)), maxtasksperchild=1) as pool:
        return pool.map(_episode, tasks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    trainer = commands.add_parser("train")
    trainer.add_argument("--scenario", required=True)
    trainer.add_argument("--minutes", type=float, required=True)
    trainer.add_argument("--out", required=True)
    evaluator = commands.add_parser("eval")
    evaluator.add_argument("--scenario", required=True)
    evaluator.add_argument("--checkpoint", required=True)
    evaluator.add_argument("--seeds", default="0,1,2,3,4")
    evaluator.add_argument("--demand-scale", type=float, default=1.0)
    args = parser.parse_args()
    if args.command == "train":
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        info = train(args.scenario, args.minutes, out)
        print(f"plain PPO on {args.scenario}: {info['iterations']} iterations, {info['env_steps']} env steps")
    else:
        episodes = evaluate(
            args.scenario, Path(args.checkpoint), [int(s) for s in args.seeds.split(",")], args.demand_scale
        )
        delays = [e["delay"] for e in episodes]
        print(json.dumps({"episodes": episodes, "delay": sum(delays) / len(delays)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
