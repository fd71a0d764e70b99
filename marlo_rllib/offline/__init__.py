"""Offline RL: datasets recorded by `marlo collect`, and CQL, BC and MARWIL trained on them."""

COLLECT_SEED = 50_000  # default first SUMO seed: apart from benchmark seeds (0, 1, ...) and training's (>= 100000)
