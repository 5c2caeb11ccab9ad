# The two commands of the README:
#   make run    set up (venv + runtime) and run the demo: local Kafka, worker, sample stream
#   make test   set up (venv + train/dev extras + Prometheus) and run every test
# Everything installs into .venv; the Kafka jars and helm binary are cached under ~/.cache.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test setup setup-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(BIN)/python -m pip install -q -e '.[dev,train]'
	touch $@

setup: $(VENV)/.runtime
	bash scripts/install_system_deps.sh run

setup-dev: $(VENV)/.dev
	bash scripts/install_system_deps.sh test

run: setup
	$(BIN)/crowdguard demo

test: setup-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup-dev
	$(BIN)/python bench/bench_model.py
	$(BIN)/python bench/bench_stream.py

clean:
	rm -rf $(VENV) .pytest_cache .cache
