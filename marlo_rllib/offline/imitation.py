"""RLlib's BC and MARWIL, reading marlo datasets: references for CQL on the same data.

MARWIL weighs the logged actions by exp(beta * advantage), the advantage being the recorded
discounted return-to-go (dataset.json's gamma) minus the value head's estimate."""

from __future__ import annotations

from ray.rllib.algorithms.bc import BC, BCConfig
from ray.rllib.algorithms.marwil import MARWIL, MARWILConfig

from marlo_rllib.offline.pipeline import OfflineTraining


class MarloBC(OfflineTraining, BC):
    @classmethod
    def get_default_config(cls) -> MarloBCConfig:
        return MarloBCConfig()


class MarloBCConfig(BCConfig):
    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or MarloBC)


class MarloMARWIL(OfflineTraining, MARWIL):
    @classmethod
    def get_default_config(cls) -> MarloMARWILConfig:
        return MarloMARWILConfig()


class MarloMARWILConfig(MARWILConfig):
    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or MarloMARWIL)
        self.postprocess_inputs = True  # the returns-to-go are in the dataset
