# Two commands on a fresh machine: `make demo` and `make test`.
# Both create or refresh .venv first (pip, not uv/poetry: pip takes the torch
# wheels that lie on this machine's disk instead of downloading a CUDA build).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# dvc.yaml's stage commands call `python`: make it the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
unexport VIRTUAL_ENV

.PHONY: demo test setup clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'
	@touch $(STAMP)

# The main job: the whole DVC pipeline on the embedded demo dataset, then the metrics table
# (`dvc metrics show`, and the same numbers one row per domain).
demo: $(STAMP)
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show
	$(BIN)/hpcl table metrics/demo.json

# The whole test suite (CI runs exactly this through .ci/run).
test: $(STAMP)
	$(BIN)/python -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
