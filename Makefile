# The README's two commands: `make demo` (the main job) and `make test`. Both set everything up first.
VENV ?= .venv
STAMP := $(VENV)/.marlo-installed

.PHONY: setup demo test bench
setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/marlo benchmark --scenario grid4x4 --controllers fixed,max_pressure --episodes 2 --seconds 900 --out checkpoints/demo

test: setup
	$(VENV)/bin/python -m pytest -q

bench: setup
	$(VENV)/bin/python benchmarks/env_speed.py
