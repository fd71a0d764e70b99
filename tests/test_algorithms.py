"""APPO, IMPALA, DQN and SAC train for real on SUMO through `marlo train`, and their checkpoints
act as controllers. Budgets are tiny: 300 s episodes, one or two iterations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from marlo_rllib.controllers.policy import load_controller
from tests.conftest import assert_finite_episode, marlo, progress, run_cli

SMALL = [
    "--set",
    "env.episode_seconds=300",
    "--set",
    "model.fcnet_hiddens=[32,32]",
    "--set",
    "evaluation.min_env_steps_per_iteration=128",
]
# Sizes that make one iteration take seconds; rollout fragments are 64 env steps for APPO/IMPALA/SAC.
FAST = {
    "APPO": ["--set", "training.train_batch_size_per_learner=128", "--set", "training.minibatch_size=128"],
    "IMPALA": ["--set", "training.train_batch_size_per_learner=128", "--set", "training.minibatch_size=128"],
    "DQN": [
        "--set",
        "training.train_batch_size_per_learner=64",
        "--set",
        "training.num_steps_sampled_before_learning_starts=100",
    ],
    "SAC": [
        "--set",
        "training.train_batch_size_per_learner=64",
        "--set",
        "training.num_steps_sampled_before_learning_starts=100",
    ],
}


def trained_steps(run: Path) -> dict[str, float]:
    """Per module: samples the learner trained on, from the last Tune result."""
    result = json.loads(next(run.glob("tune_0/*/result.json")).read_text().splitlines()[-1])
    return {m: r["num_module_steps_trained_lifetime"] for m, r in result["learners"].items() if m != "__all_modules__"}


@pytest.mark.parametrize("algo", ["APPO", "IMPALA", "DQN", "SAC"])
def test_algorithm_trains_and_its_checkpoint_controls(algo, tmp_path, ray_tmp):
    done = marlo(
        "train",
        "--scenario",
        "2x2grid",
        "--algo",
        algo.lower(),
        "--timesteps",
        "256",
        "--out",
        str(tmp_path),
        "--run-name",
        algo,
        *SMALL,
        *FAST[algo],
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / algo
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "finished" and state["best"]
    assert progress(run) and float(progress(run)[-1]["delay"]) > 0
    assert trained_steps(run)["shared"] > 0  # the learner updated, not merely built
    assert_finite_episode(run, "2x2grid")


@pytest.fixture(scope="module")
def dqn_cologne8(tmp_path_factory, ray_tmp) -> Path:
    out = tmp_path_factory.mktemp("dqn")
    done = marlo(
        "train",
        "--scenario",
        "cologne8",
        "--algo",
        "DQN",
        "--timesteps",
        "100",
        "--out",
        str(out),
        "--run-name",
        "c8",
        *SMALL,
        *FAST["DQN"],
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / "c8"


def test_dqn_on_cologne8_never_chooses_a_masked_green(dqn_cologne8, make_env):
    assert trained_steps(dqn_cologne8)["shared"] > 0
    controller = load_controller(dqn_cologne8)
    module = controller.modules["shared"]
    env = make_env("cologne8", episode_seconds=300, **controller.env_options)
    observations, infos = env.reset(seed=3)
    controller.reset(env)
    masks = {a: env.action_mask(a) for a in env.possible_agents}
    assert any(m.min() == 0 for m in masks.values())  # cologne8 pads some junctions
    # Make every padded green the Q-net's favourite: the mask alone must keep it out.
    padded = np.nonzero(np.any([m == 0 for m in masks.values()], axis=0))[0]
    with torch.no_grad():
        module.af.net.mlp[-1].bias[padded] += 1e6
    steps = 0
    while env.agents:
        batch = {
            k: torch.as_tensor(np.stack([observations[a][k] for a in env.agents]))
            for k in ("observations", "action_mask")
        }
        explored = module.forward_exploration({"obs": batch}, t=0)["actions"]  # epsilon 1.0 at t=0
        for agent, greedy, random in zip(
            env.agents, controller.act(observations, infos).values(), explored.tolist(), strict=True
        ):
            assert masks[agent][greedy] == 1 and masks[agent][random] == 1, agent
        observations, _, _, _, infos = env.step(controller.act(observations, infos))
        steps += 1
    assert steps == 60


def test_dqn_masks_targets_and_centres_advantages_on_valid_greens(dqn_cologne8, make_env):
    from ray.rllib.algorithms.dqn.default_dqn_rl_module import QF_PREDS

    from marlo_rllib.controllers.policy import load_modules
    from marlo_rllib.run_dir import resolve_checkpoint

    module = load_modules(resolve_checkpoint(dqn_cologne8))["shared"]
    module.make_target_networks()  # as the learner does
    assert module.uses_dueling
    env = make_env("cologne8", episode_seconds=300, **load_controller(dqn_cologne8).env_options)
    observations, _ = env.reset(seed=4)
    batch = {
        k: torch.as_tensor(np.stack([observations[a][k] for a in env.agents])) for k in ("observations", "action_mask")
    }
    valid = batch["action_mask"] > 0
    with torch.no_grad():
        online, target = (
            module.compute_q_values({"obs": batch})[QF_PREDS],
            module.forward_target({"obs": batch})[QF_PREDS],
        )
        for q in (online, target):
            assert torch.isneginf(q[~valid]).all() and torch.isfinite(q[valid]).all()
        module.af.net.mlp[-1].bias[-1] += 1e3  # the last green's advantage: padding wherever it is masked
        moved = module.compute_q_values({"obs": batch})[QF_PREDS]
    padded_rows = ~valid[:, -1]
    assert padded_rows.any()
    # The dueling mean runs over valid greens only, so a padded advantage moves no valid Q.
    assert torch.allclose(moved[padded_rows][valid[padded_rows]], online[padded_rows][valid[padded_rows]])


def test_sac_shared_on_heterogeneous_net_is_refused():
    done = run_cli("train", "--scenario", "cologne8", "--algo", "SAC", "--out", "/tmp/never")
    assert done.returncode == 2 and "cannot mask padded greens; use --policy independent" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--algo", "SAC", "--policy", "central"], "--algo SAC --policy central: SAC has no centralized critic"),
        (["--algo", "DQN", "--set", "lr=abc"], "training.lr must be a number"),
        (["--algo", "DQN", "--set", "training.double_q=maybe"], "training.double_q must be a bool"),
        (["--algo", "IMPALA", "--set", "training.n_step=3"], "unknown key 'training.n_step' for IMPALA"),
        (["--algo", "DQN", "--policy", "central"], "--algo DQN --policy central: DQN has no centralized critic"),
        (["--algo", "MAPPO", "--policy", "independent"], "--algo MAPPO is PPO with --policy central"),
    ],
)
def test_bad_algorithm_settings_exit_2(args, message):
    done = run_cli("train", "--scenario", "2x2grid", *args, "--out", "/tmp/never")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr


def test_algos_lists_capabilities_and_presets():
    done = run_cli("algos")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[1:6]}
    assert set(rows) == {"PPO", "APPO", "IMPALA", "DQN", "SAC"}
    assert rows["DQN"][1] == "no" and rows["SAC"][-1] == "no" and rows["PPO"][1] == "yes"  # critic, masking
    settings = [line.split() for line in done.stdout.splitlines()]
    assert ["vtrace_clip_rho_threshold", "1.0", "1.0"] in settings
    assert ["actor_lr", "0.0003", "0.0005"] in settings
    assert ["model.fcnet_hiddens", "[64,", "64]", "[256,", "256]"] in settings  # PPO: its CPU and GPU widths
    cautions = [line for line in done.stdout.splitlines() if line.startswith("caution: ")]
    assert len(cautions) == 1 and "IMPALA" in cautions[0]
