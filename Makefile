# The README's two commands: `make demo` (the main job) and `make test`. Both set everything up first.
VENV ?= .venv
STAMP := $(VENV)/.marlo-installed

.PHONY: setup demo test bench
setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

# A short real training (2.5 minutes of PPO on grid4x4), then its best checkpoint against fixed-time and max-pressure.
demo: setup
	rm -rf checkpoints/demo
	$(VENV)/bin/marlo train --scenario grid4x4 --minutes 2.5 --out checkpoints --run-name demo
	$(VENV)/bin/marlo benchmark --scenario grid4x4 --controllers fixed,max_pressure,ckpt:checkpoints/demo \
		--episodes 2 --out checkpoints/demo/benchmark

test: setup
	$(VENV)/bin/python -m pytest -q

bench: setup
	$(VENV)/bin/python benchmarks/env_speed.py
	$(VENV)/bin/python benchmarks/train_throughput.py
