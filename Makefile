# Two commands on a fresh machine: `make demo` and `make test`.
# Both create or refresh .venv first (pip, not uv/poetry: pip takes the torch
# wheels that lie on this machine's disk instead of downloading a CUDA build).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Two stamps: `make demo` needs only the runtime packages (.installed-base); `make test` adds the
# test and Ray extras (.installed), which the demo would otherwise wait for on a fresh machine.
BASE_STAMP := $(VENV)/.installed-base
STAMP  := $(VENV)/.installed
# dvc.yaml's stage commands call `python`: make it the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
unexport VIRTUAL_ENV

.PHONY: demo test setup clean-venv browser

setup: $(STAMP)

$(BASE_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $(BASE_STAMP)

$(STAMP): $(BASE_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'
	@touch $(STAMP)

# The main job: the whole DVC pipeline on the embedded demo dataset, then the metrics table
# (`dvc metrics show`, and the same numbers one row per domain).
demo: $(BASE_STAMP)
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show
	$(BIN)/hpcl table metrics/demo.json
	$(BIN)/hpcl highlight-proof

# The whole test suite (CI runs exactly this through .ci/run).
test: $(STAMP) browser
	$(BIN)/python -m pytest -q tests

# The page test needs a real browser: Debian's chromium, installed when missing and we are root
# (CI); otherwise that test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "chromium not installed (needs root and apt-get): the browser test will be skipped"

clean-venv:
	rm -rf $(VENV)
