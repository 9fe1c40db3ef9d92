# l1ml: `make demo` and `make test` do all set-up themselves on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# COMMAND:DEBIAN_PACKAGE pairs the toolchain needs (g++ compiles the firmware C-simulation, GHDL simulates BDT VHDL)
APT := g++:g++ make:make ghdl:ghdl
JOBS ?= $(shell nproc)

.PHONY: help setup demo test test-fast bench lint schemas clean

help:
	@echo "make demo   set up, generate and inspect the demo L1 events, train the demo AE, VAE encoder and BDT, convert them to firmware (hls4ml, conifer), verify them (C-simulation, GHDL) and deliver them (emulator only)"
	@echo "make test   set up, then run every test"
	@echo "make bench  generator throughput per process type; emulators, C-simulation, hls4ml and conifer events/s"

$(STAMP): pyproject.toml constraints.txt scripts/ensure-apt.sh Makefile
	@scripts/ensure-apt.sh $(APT)
	@command -v $(PYTHON) >/dev/null || { echo "l1ml needs $(PYTHON) (Python 3.11) on the PATH" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	@touch $@

setup: $(STAMP)

demo: $(STAMP)
	@events=$$($(BIN)/l1ml data generate configs/data/demo.yaml --jobs $(JOBS)) && \
	  $(BIN)/l1ml data inspect "$$events" --out runs/inspect/demo
	@for model in ae vae bdt; do \
	  run=$$($(BIN)/l1ml train configs/train/$${model}_demo.yaml) || exit 1; \
	  $(BIN)/l1ml convert "$$run" && $(BIN)/l1ml verify "$$run" || exit 1; \
	  $(BIN)/l1ml deliver "$$run" --version next --no-synthesis || exit 1; \
	done
	@$(BIN)/l1ml deliver --list
	@echo "emulator-only deliveries (no Vivado here) are in $(CURDIR)/deliveries/"

test: lint
	@scripts/start-slurm.sh || echo "Slurm was not started: the Slurm tests will be skipped" >&2
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_generate.py
	$(BIN)/python benchmarks/emulation.py

lint: $(STAMP)
	$(BIN)/ruff check src tests firmware_tests benchmarks conftest.py
	$(BIN)/lint-imports --no-cache  # the layers of .importlinter: imports flow one way

schemas: $(STAMP)
	$(BIN)/l1ml config schema --out schemas

clean:
	rm -rf $(VENV) runs deliveries
