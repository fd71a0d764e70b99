# The README's two commands: `make demo` (the main job) and `make test`. Both set everything up first.
VENV ?= .venv
STAMP := $(VENV)/.marlo-installed

.PHONY: setup demo test bench
setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/marlo simulate --scenario grid4x4 --controller random --seconds 900

test: setup
	$(VENV)/bin/python -m pytest -q

bench: setup
	$(VENV)/bin/python benchmarks/env_speed.py
