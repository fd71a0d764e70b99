"""Offline training on RLlib's offline data pipeline (OfflineData on Ray Data).

RLlib 2.60 cannot read multi-agent episodes, and its OfflinePreLearner turns every row into a
one-step SingleAgentEpisode to run the learner connectors on. A marlo row already is one
junction's transition, so `TransitionBatches` (our OfflinePreLearner) maps rows straight to the
shared module's train batch: padded observations with their action mask, next observations,
actions, rewards, done flags, the recorded returns-to-go (MARWIL's value targets), and unit
importance weights and n_step = 1 (the DQN loss CQL builds on). The mapped data does not depend
on the weights, so it is computed once and kept in Ray's object store.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.core.columns import Columns
from ray.rllib.offline.offline_prelearner import OfflinePreLearner
from ray.rllib.utils.metrics import (
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    OFFLINE_SAMPLING_TIMER,
    TIMERS,
)

from marlo_rllib.layout import SHARED_MODULE
from marlo_rllib.offline.dataset import DATA_DIR

# Ray Data's tasks run outside the Tune trial's placement group, on CPUs nobody reserved; with
# none free the pipeline waits forever. It needs one CPU for listing the files, and shares a
# second between one mapping actor and the Parquet reads. init_ray adds DATA_CPUS to a local Ray.
DATA_CPUS = 2.0
MAP_BATCHES = {"concurrency": 1, "num_cpus": 0.5, "zero_copy_batch": True}
READ_PARQUET = {"ray_remote_args": {"num_cpus": 0.25}}
SHUFFLE_BATCHES = 16  # minibatches mixed by Ray Data's local shuffle buffer (rows are stored episode by episode)


class TransitionBatches(OfflinePreLearner):
    """Parquet rows -> the shared module's train batch, flattened as RLlib's pipeline expects."""

    def __init__(self, *, config: Any, **kwargs: Any) -> None:  # no module, no connectors: rows map directly
        self.config = config
        self.greens = config.rl_module_spec.rl_module_specs[SHARED_MODULE].action_space.n

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        size = len(batch[Columns.ACTIONS])
        mask = (
            np.stack(list(batch["action_mask"])).astype(np.int8)
            if "action_mask" in batch
            else np.ones((size, self.greens), dtype=np.int8)
        )
        columns = {
            f"{Columns.OBS}/observations": np.stack(list(batch[Columns.OBS])).astype(np.float32),
            f"{Columns.OBS}/action_mask": mask,
            f"{Columns.NEXT_OBS}/observations": np.stack(list(batch[Columns.NEXT_OBS])).astype(np.float32),
            f"{Columns.NEXT_OBS}/action_mask": mask,  # a junction's real greens never change
            Columns.ACTIONS: np.asarray(batch[Columns.ACTIONS], dtype=np.int64),
            Columns.REWARDS: np.asarray(batch[Columns.REWARDS], dtype=np.float32),
            Columns.TERMINATEDS: np.asarray(batch[Columns.TERMINATEDS], dtype=bool),
            Columns.TRUNCATEDS: np.asarray(batch[Columns.TRUNCATEDS], dtype=bool),
            Columns.VALUE_TARGETS: np.asarray(batch["returns"], dtype=np.float32),
            "weights": np.ones(size, dtype=np.float32),
            "n_step": np.ones(size, dtype=np.int64),
        }
        return {f"{SHARED_MODULE}/{key}": value for key, value in columns.items()}


def offline_data_settings(dataset: str, batch_size: int) -> dict[str, Any]:
    """AlgorithmConfig.offline_data(...) for a marlo dataset folder."""
    return {
        "input_": f"{dataset}/{DATA_DIR}",
        "input_read_method_kwargs": READ_PARQUET,
        "prelearner_class": TransitionBatches,
        "map_batches_kwargs": MAP_BATCHES,
        "materialize_mapped_data": True,
        "iter_batches_kwargs": {
            "prefetch_batches": 1,
            "drop_last": True,
            "local_shuffle_buffer_size": SHUFFLE_BATCHES * batch_size,
        },
    }


class OfflineTraining:
    """training_step of every marlo offline algorithm: `dataset_num_iters_per_learner` minibatches
    from the dataset per iteration. Its "env steps" are the transitions trained on, so
    `--timesteps`, checkpoint intervals and target-network updates count those."""

    def _create_local_replay_buffer_if_necessary(self, config: Any) -> None:
        return None  # the dataset is the replay memory

    def training_step(self) -> None:
        from ray.rllib.core.learner.training_data import TrainingData

        config = self.config
        with self.metrics.log_time((TIMERS, OFFLINE_SAMPLING_TIMER)):
            iterators = self.offline_data.sample(
                num_samples=config.train_batch_size_per_learner, num_shards=config.num_learners, return_iterator=True
            )
        trained = (
            config.train_batch_size_per_learner * config.dataset_num_iters_per_learner * max(1, config.num_learners)
        )
        self.metrics.log_value(NUM_ENV_STEPS_SAMPLED_LIFETIME, trained, reduce="lifetime_sum")
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            results = self.learner_group.update(
                training_data=TrainingData(data_iterators=iterators),
                minibatch_size=config.train_batch_size_per_learner,
                num_iters=config.dataset_num_iters_per_learner,
                timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(NUM_ENV_STEPS_SAMPLED_LIFETIME)},
                **self.offline_data.iter_batches_kwargs,
            )
            self.metrics.aggregate(results, key=LEARNER_RESULTS)
