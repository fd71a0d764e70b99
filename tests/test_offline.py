"""Offline RL for real: `marlo collect` records SUMO transitions as Parquet, CQL (and BC, MARWIL)
train on them through RLlib's offline pipeline on Ray Data, and the checkpoint controls SUMO."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from tests.conftest import DRIFT_FLAGS, adapt, assert_finite_episode, marlo, progress, run_cli

SECONDS = 300  # 2x2grid decides every 5 s: 60 steps per episode
AGENTS_2X2 = 4
# One iteration = 10 minibatches of 64 transitions, so a 1200-transition budget is two iterations.
FAST = [
    "--set",
    "training.train_batch_size_per_learner=64",
    "--set",
    "training.dataset_num_iters_per_learner=10",
    "--set",
    "model.fcnet_hiddens=[32,32]",
    "--timesteps",
    "1200",
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("offline") / "2x2"
    done = run_cli(
        "collect",
        "--scenario",
        "2x2grid",
        "--policy",
        "max_pressure,random",
        "--episodes",
        "1",
        "--epsilon",
        "0.2",
        "--seconds",
        str(SECONDS),
        "--out",
        str(out),
        "--format",
        "npz",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_collect_writes_rllib_columns_one_row_per_junction_and_step(dataset):
    info = json.loads((dataset / "dataset.json").read_text())
    files = sorted((dataset / "data").glob("*.parquet"))
    assert len(files) == 2 and info["episodes"] == 2
    table = pq.read_table(files)
    steps = SECONDS // info["env"]["timing"]["delta_time"]
    assert table.num_rows == info["rows"] == 2 * AGENTS_2X2 * steps
    assert {"eps_id", "agent_id", "obs", "actions", "rewards", "new_obs", "terminateds", "truncateds"} <= set(
        table.column_names
    )
    assert "action_mask" not in table.column_names  # 2x2grid's junctions all have 4 greens
    rows = table.to_pydict()
    assert len(set(rows["eps_id"])) == 2 and set(rows["agent_id"]) == set(info["spaces"]["agents"])
    assert len(rows["obs"][0]) == info["spaces"]["observation_size"]
    # Within an episode, a junction's next observation is its observation one step later.
    first = [
        i
        for i, (e, a) in enumerate(zip(rows["eps_id"], rows["agent_id"], strict=True))
        if e == rows["eps_id"][0] and a == "1"
    ]
    assert np.allclose(rows["new_obs"][first[0]], rows["obs"][first[1]])
    assert sum(rows["truncateds"]) == 2 * AGENTS_2X2  # the last step of each episode
    names = [b["name"] for b in info["behaviours"]]
    assert names == ["max_pressure", "random"] and all(b["mean_delay"] > 0 for b in info["behaviours"])
    assert info["behaviour_mean_delay"] == pytest.approx(np.mean([b["mean_delay"] for b in info["behaviours"]]))
    arrays = np.load(dataset / "dataset.npz")
    assert arrays["observations"].shape == (2, steps, AGENTS_2X2, info["spaces"]["observation_size"])
    assert arrays["dones"][:, -1].all() and not arrays["dones"][:, :-1].any()


def test_collect_on_a_heterogeneous_net_records_the_mask_and_only_real_greens(tmp_path):
    out = tmp_path / "c8"
    done = run_cli(
        "collect",
        "--scenario",
        "cologne8",
        "--policy",
        "random",
        "--episodes",
        "1",
        "--seconds",
        "120",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = pq.read_table(out / "data").to_pydict()
    masks = np.array(rows["action_mask"])
    assert masks.min() == 0
    assert all(masks[i, a] == 1 for i, a in enumerate(rows["actions"]))


@pytest.fixture(scope="module")
def cql_run(dataset, tmp_path_factory, ray_tmp) -> Path:
    out = tmp_path_factory.mktemp("cql")
    done = marlo(
        "train",
        "--algo",
        "CQL",
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--run-name",
        "cql",
        *FAST,
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / "cql"


def test_cql_trains_on_the_dataset_and_its_checkpoint_controls_sumo(cql_run):
    state = json.loads((cql_run / "state.json").read_text())
    assert state["status"] == "finished" and state["best"] and state["timesteps"] >= 1200
    rows = progress(cql_run)
    assert len(rows) == 2 and all(float(row["eval_delay"]) > 0 for row in rows)  # evaluated on SUMO each iteration
    result = json.loads(next(cql_run.glob("tune_0/*/result.json")).read_text().splitlines()[-1])
    learner = result["learners"]["shared"]
    assert learner["num_module_steps_trained_lifetime"] == 2 * 10 * 64
    assert math.isfinite(learner["cql_penalty"]) and learner["cql_penalty"] >= 0
    config = json.loads((cql_run / "metadata.json").read_text())["env_config"]
    assert config["episode_seconds"] == SECONDS  # the dataset's env settings
    assert_finite_episode(cql_run, "2x2grid")
    done = run_cli(
        "benchmark",
        "--scenario",
        "2x2grid",
        "--controllers",
        f"max_pressure,ckpt:{cql_run}",
        "--episodes",
        "1",
        "--seconds",
        str(SECONDS),
        "--out",
        str(cql_run / "bench"),
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("algo", ["BC", "MARWIL"])
def test_bc_and_marwil_train_on_the_same_dataset(algo, dataset, tmp_path, ray_tmp):
    done = marlo(
        "train",
        "--algo",
        algo,
        "--dataset",
        str(dataset),
        "--out",
        str(tmp_path),
        "--run-name",
        algo,
        *FAST[:-1],
        "600",
        ray_tmp=ray_tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert_finite_episode(tmp_path / algo, "2x2grid")


def test_cql_loss_matches_a_hand_computed_value():
    from ray.rllib.algorithms.dqn.dqn_learner import QF_NEXT_PREDS, QF_PREDS, QF_TARGET_NEXT_PREDS
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from marlo_rllib.models.masked import MaskedDQNTorchRLModule
    from marlo_rllib.offline.cql import CQLConfig

    observations = gym.spaces.Dict(
        {"observations": gym.spaces.Box(0, 1, (3,), np.float32), "action_mask": gym.spaces.Box(0, 1, (3,), np.int8)}
    )
    actions = gym.spaces.Discrete(3)
    config = (
        CQLConfig()
        .training(gamma=0.9, alpha=0.5, double_q=True, td_error_loss_fn="huber")
        .rl_module(rl_module_spec=RLModuleSpec(module_class=MaskedDQNTorchRLModule))
        .environment(observation_space=observations, action_space=actions)
    )
    learner = config.build_learner(
        env=None, spaces={"__env__": (observations, actions), "default_policy": (observations, actions)}
    )
    inf = math.inf
    fwd_out = {  # the first row's third green is padding (Q = -inf)
        QF_PREDS: torch.tensor([[1.0, 2.0, -inf], [0.5, 0.0, 1.0]]),
        QF_NEXT_PREDS: torch.tensor([[0.0, 3.0, -inf], [1.0, 0.0, 0.0]]),  # double Q: online net picks 1, then 0
        QF_TARGET_NEXT_PREDS: torch.tensor([[0.5, 1.5, -inf], [2.0, 0.0, 0.0]]),
    }
    batch = {
        Columns.ACTIONS: torch.tensor([1, 2]),
        Columns.REWARDS: torch.tensor([1.0, 0.5]),
        Columns.TERMINATEDS: torch.tensor([False, True]),
        "n_step": torch.tensor([1, 1]),
        "weights": torch.ones(2),
    }
    loss = learner.compute_loss_for_module(
        module_id="default_policy", config=learner.config, batch=batch, fwd_out=fwd_out
    )

    # TD targets: 1 + 0.9 * 1.5 = 2.35 and 0.5 (terminal); logged Q: 2.0 and 1.0; Huber: 0.5 d^2 for |d| <= 1.
    td = (0.5 * 0.35**2 + 0.5 * 0.5**2) / 2
    # Conservative penalty: log-sum-exp over the real greens minus the logged Q.
    penalty = (
        (math.log(math.exp(1.0) + math.exp(2.0)) - 2.0)
        + (math.log(math.exp(0.5) + math.exp(0.0) + math.exp(1.0)) - 1.0)
    ) / 2
    assert float(loss) == pytest.approx(td + 0.5 * penalty, abs=1e-6)


def test_adapt_fine_tunes_a_cql_policy_on_a_prioritised_sample_of_deployment_and_dataset(
    cql_run, dataset, tmp_path, ray_tmp
):
    out = tmp_path / "adapt"
    done = adapt(cql_run, out, *DRIFT_FLAGS, "--mmd-samples", "100", ray_tmp=ray_tmp)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = list(csv.DictReader((out / "adapt.csv").open()))
    assert [r["triggered"] for r in log] == ["False", "False", "True"]
    assert not (out / "reference").exists()  # the run's own dataset is the reference
    replay = json.loads((out / "replay_02" / "dataset.json").read_text())
    sources = [json.loads((out / "buckets" / f"{j:02d}" / "dataset.json").read_text())["rows"] for j in range(3)]
    assert replay["rows"] == sum(sources) + json.loads((dataset / "dataset.json").read_text())["rows"]
    assert replay["env"]["demand_scale"] == 2.0 and replay["mean_priority"] > 0
    assert pq.read_table(out / "replay_02" / "data" / "sample.parquet").num_rows == replay["rows"]
    finetuned = yaml.safe_load((out / "finetune_02" / "config.yaml").read_text())
    assert finetuned["algorithm"] == "CQL" and finetuned["dataset"] == str(out / "replay_02")
    assert Path(log[2]["finetuned"]).is_relative_to(out / "finetune_02")
    assert_finite_episode(out / "finetune_02", "2x2grid")


def test_adapt_refuses_an_offline_run_without_its_dataset(cql_run, tmp_path):
    run = tmp_path / "cql"
    shutil.copytree(cql_run, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "dataset": None}))
    done = run_cli("adapt", "--checkpoint", str(run), "--scenario", "2x2grid", "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "pass --dataset" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_bad_datasets_exit_2_with_one_line(dataset, tmp_path):
    def refused(*args: str) -> str:
        done = run_cli("train", "--out", str(tmp_path / "runs"), *args)
        assert done.returncode == 2, done.stderr[-2000:]
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        return done.stderr

    assert "--dataset" in refused("--algo", "CQL", "--scenario", "2x2grid")
    message = refused("--algo", "CQL", "--dataset", str(dataset), "--scenario", "cologne8")
    assert "2x2grid" in message and "cologne8" in message
    assert "no dataset" in refused("--algo", "CQL", "--dataset", str(tmp_path / "nowhere"))
    assert "offline" in refused("--algo", "PPO", "--dataset", str(dataset), "--scenario", "2x2grid")

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dataset.json").write_text((dataset / "dataset.json").read_text())
    (broken / "data").mkdir()
    files = sorted((dataset / "data").glob("*.parquet"))
    (broken / "data" / files[0].name).write_bytes(files[0].read_bytes())
    assert "rows" in refused("--algo", "CQL", "--dataset", str(broken))  # the second file is missing
    (broken / "data" / files[1].name).write_bytes(files[1].read_bytes()[:200])
    assert files[1].name in refused("--algo", "CQL", "--dataset", str(broken))  # truncated: not Parquet
    pq.write_table(pq.read_table(files[1]).drop_columns(["new_obs", "returns"]), broken / "data" / files[1].name)
    assert "lacks the columns new_obs, returns" in refused("--algo", "CQL", "--dataset", str(broken))
    info = json.loads((dataset / "dataset.json").read_text())
    (broken / "dataset.json").write_text(json.dumps({k: v for k, v in info.items() if k != "env"}))
    assert "dataset.json is corrupt: it lacks env" in refused("--algo", "CQL", "--dataset", str(broken))

    done = run_cli(
        "collect", "--scenario", "2x2grid", "--policy", "fixed", "--epsilon", "0.1", "--out", str(tmp_path / "x")
    )
    assert done.returncode == 2 and "epsilon" in done.stderr
    for flags, message in (
        (["--workers", "0"], "--workers must be at least 1"),
        (["--seed", "-1"], "SUMO seeds are 0"),
        (["--seconds", "0"], "--seconds must be at least 1"),
        (["--demand-scale", "nan"], "positive number"),
    ):
        done = run_cli("collect", "--scenario", "2x2grid", "--policy", "fixed", "--out", str(tmp_path / "x"), *flags)
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
