"""The --gpu learner path on a real GPU: each algorithm's module trains a few iterations with marlo's
GPU preset, built by marlo's own `build_config`, with the learner on CUDA.

    python scripts/gpu_check.py [--device cuda|cpu] [--iterations 2]

SUMO is not needed: a stand-in env has the spaces a shared policy sees on SUMO (padded
observations, a mask with padded greens, the global state in the infos), and rewards a policy can
learn (serve the green whose queue is longest). It checks that the modules, masks, the centralized
critic and the replay buffers run on the device, and reports the learner's time per iteration.
Prints one JSON line per algorithm; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gymnasium import spaces  # noqa: E402
from ray.rllib.env.multi_agent_env import MultiAgentEnv  # noqa: E402

AGENTS, FEATURES, GREENS, STEPS = 4, 24, 4, 60
MAX_CALLS = 10  # algo.train() calls per algorithm
PADDED = {"0": 2}  # junction "0" has 2 real greens; the others have 4


class StandInJunctions(MultiAgentEnv):
    """Four junctions with marlo's padded shared spaces; reward 1 for serving the longest queue."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        config = config or {}
        self.masked = bool(config.get("masked", True))
        self.agents = self.possible_agents = [str(i) for i in range(AGENTS)]
        box = spaces.Box(0.0, 1.0, (FEATURES,), np.float32)
        mask = spaces.Box(0, 1, (GREENS,), np.int8)
        self.observation_spaces = {a: spaces.Dict({"observations": box, "action_mask": mask}) for a in self.agents}
        self.action_spaces = {a: spaces.Discrete(GREENS) for a in self.agents}
        real = {a: PADDED.get(a, GREENS) if self.masked else GREENS for a in self.agents}
        self.masks = {a: np.array([1] * real[a] + [0] * (GREENS - real[a]), np.int8) for a in self.agents}
        self.rng = np.random.default_rng(int(config.get("seed", 0)))

    def _observe(self) -> tuple[dict, dict]:
        self.features = {a: self.rng.random(FEATURES, dtype=np.float32) for a in self.agents}
        state = np.concatenate([self.features[a] for a in self.agents])
        obs = {a: {"observations": self.features[a], "action_mask": self.masks[a]} for a in self.agents}
        return obs, {a: {"state": state} for a in self.agents}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t = 0
        return self._observe()

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        rewards = {}
        for agent, action in actions.items():
            greens = int(self.masks[agent].sum())
            rewards[agent] = float(int(action) == int(np.argmax(self.features[agent][:greens])))
        self.t += 1
        obs, infos = self._observe()
        done = self.t >= STEPS
        return obs, rewards, {"__all__": done}, {"__all__": False}, infos


VARIANTS = {
    "PPO": ("PPO", "shared", {}),
    "MAPPO": ("PPO", "central", {}),
    "APPO": ("APPO", "shared", {}),
    "IMPALA": ("IMPALA", "shared", {}),
    "DQN": ("DQN", "shared", {"num_steps_sampled_before_learning_starts": 500}),
    "SAC": ("SAC", "shared", {"num_steps_sampled_before_learning_starts": 500}),
}


def check(name: str, device: str, iterations: int) -> dict[str, Any]:
    import torch
    from ray.rllib.callbacks.callbacks import RLlibCallback

    from marlo_rllib.config import compose
    from marlo_rllib.layout import SHARED_MODULE
    from marlo_rllib.training.rllib_config import build_config

    algorithm, policy, training = VARIANTS[name]
    config = compose(
        {"scenario": "stand-in"},
        {
            "algorithm": algorithm,
            "policy": policy,
            "training": training,
            "resources": {"gpu": device == "cuda", "num_env_runners": 1, "evaluation_num_env_runners": 0},
        },
    )
    env_config = {"seed_base": 0, "masked": algorithm != "SAC"}  # marlo refuses shared SAC on padded greens
    agents = [str(i) for i in range(AGENTS)]
    rllib = build_config(config, env_config, agents, RLlibCallback, state_dim=AGENTS * FEATURES)
    rllib.environment(StandInJunctions, env_config=env_config).evaluation(evaluation_interval=None)
    algo = rllib.build_algo()
    try:
        started, learner_s, trained, calls = time.perf_counter(), [], 0, 0
        while len(learner_s) < iterations and calls < MAX_CALLS:  # an asynchronous first call may not train
            result, calls = algo.train(), calls + 1
            steps = result.get("learners", {}).get(SHARED_MODULE, {}).get("num_module_steps_trained_lifetime", 0)
            if steps > trained:
                trained = steps
                learner_s.append(round(float(result.get("timers", {}).get("learner_update_timer", float("nan"))), 3))
        module = algo.learner_group._learner.module[SHARED_MODULE]
        parameter = next(module.parameters())
        finite = all(bool(torch.isfinite(p).all()) for p in module.parameters())
        return {
            "algorithm": name,
            "ok": parameter.device.type == device and trained > 0 and finite,
            "device": str(parameter.device),
            "module": type(module).__name__,
            "module_steps_trained": int(trained),
            "train_calls": calls,
            "learner_update_s": learner_s,
            "seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        algo.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--algorithms", default=",".join(VARIANTS))
    args = parser.parse_args()
    import ray
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1
    ray.init(
        num_cpus=os.cpu_count(),
        num_gpus=1 if args.device == "cuda" else 0,
        include_dashboard=False,
        _temp_dir=tempfile.mkdtemp(prefix="ray"),
    )
    failed = 0
    try:
        print(
            json.dumps(
                {
                    "torch": torch.__version__,
                    "ray": ray.__version__,
                    "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
                }
            ),
            flush=True,
        )
        for name in args.algorithms.split(","):
            try:
                row = check(name, args.device, args.iterations)
            except Exception as exc:
                row = {
                    "algorithm": name,
                    "ok": False,
                    "error": f"{type(exc).__name__}: {exc}"[:2000],
                    "trace": traceback.format_exc()[-3000:],
                }
            failed += not row["ok"]
            print(json.dumps(row), flush=True)
    finally:
        ray.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
