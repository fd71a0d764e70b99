"""Search-space YAML for hyperparameter searches: parsing, checks, and Tune's domains."""

from __future__ import annotations

import pytest
from ray import tune

from marlo_rllib.errors import UserError
from marlo_rllib.training.search import nested, read_search, tune_domain
from tests.conftest import REPO


def test_example_search_space_translates_to_tune_domains():
    space = read_search(REPO / "experiments" / "search" / "ppo.yaml")
    assert space["training.lr"] == ("loguniform", [1e-4, 1e-3])
    domains = {key: tune_domain(*spec) for key, spec in space.items()}
    assert isinstance(domains["training.lr"], tune.search.sample.Float)
    assert domains["training.lr"].lower == 1e-4 and domains["training.lr"].upper == 1e-3
    assert domains["training.minibatch_size"].categories == [256, 512, 1024]
    assert domains["training.num_epochs"] == {"grid_search": [4, 8]}
    assert set(nested(domains)["training"]) == {"lr", "minibatch_size", "num_epochs", "entropy_coeff"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("training.lr: {logunif: [1, 2]}", "training.lr: give exactly one of uniform, loguniform, choice, grid"),
        ("training.lr: {loguniform: [0, 1]}", "training.lr.loguniform needs [low, high] with low < high and low > 0"),
        ("training.gamma: {uniform: [0.99, 0.9]}", "training.gamma.uniform needs [low, high] with low < high"),
        ("training.num_epochs: {grid: 4}", "training.num_epochs.grid needs a list of values"),
        ("- just a list", "must map settings to distributions"),
        ("training.lr: {uniform: [1, 2}", "is not valid YAML"),
    ],
)
def test_malformed_search_space_names_the_key(tmp_path, text, message):
    path = tmp_path / "search.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace(".", r"\.")):
        read_search(path)
