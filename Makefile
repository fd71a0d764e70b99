# The README's two commands: `make demo` (the main job) and `make test`. Both set everything up first.
VENV ?= .venv
STAMP := $(VENV)/.marlo-installed

.PHONY: setup demo test test-fast lint bench
setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

# A short real training (40,960 env steps, twenty iterations of PPO on grid4x4), then its best checkpoint against fixed-time and max-pressure.
demo: setup
	rm -rf checkpoints/demo
	$(VENV)/bin/marlo train --scenario grid4x4 --timesteps 40960 --out checkpoints --run-name demo
	$(VENV)/bin/marlo benchmark --scenario grid4x4 --controllers fixed,max_pressure,ckpt:checkpoints/demo \
		--episodes 2 --out checkpoints/demo/benchmark

test: setup lint
	$(VENV)/bin/python -m pytest -q

# Plain-Python tests only (no SUMO, no Ray): seconds.
test-fast: setup
	$(VENV)/bin/python -m pytest -q -m unit

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: setup
	$(VENV)/bin/python benchmarks/env_speed.py
	$(VENV)/bin/python benchmarks/train_throughput.py
