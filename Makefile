# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs the project (with its test extras) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test typecheck bench clean compiled test-compiled test-compiled-all

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ch-emulator demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

typecheck: $(STAMP)
	$(BIN)/mypy emulator

bench: $(STAMP)
	$(BIN)/python benchmarks/codec.py

# Optional compiled build (docs/fleet.md): the per-frame hot modules built with mypyc into build/compiled,
# imported by a separate .venv-compiled. The default .venv and `make test` stay pure Python.
CVENV := .venv-compiled
CBIN := $(CVENV)/bin

$(CVENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(CVENV)
	$(CBIN)/pip install -q --upgrade pip
	$(CBIN)/pip install -q -e '.[test]'
	touch $@

CBUILT := build/compiled/.built

# Rebuilt when any package source changes: build/compiled holds a copy of the whole package.
$(CBUILT): $(CVENV)/.installed tools/build_compiled.py $(shell find emulator -name '*.py')
	$(CBIN)/python tools/build_compiled.py --venv $(CVENV) > build-compiled.log 2>&1 || { tail -40 build-compiled.log; exit 1; }
	touch $@

compiled: $(CBUILT)
	$(CBIN)/python -c "from emulator.compiled import describe; print(describe())"

# The tests that exercise the compiled modules, against the compiled build (docs/fleet.md says why
# these): the OTA engines and codec (with its property tests), the HAN, the fleet's digest
# equivalence, the hub, devices, device certification, the clock and timers, the settings read
# from files, and the scenarios that drive the OTA engines end to end.
COMPILED_TESTS := tests/test_compiled_build.py tests/test_config.py tests/ota tests/han tests/fleet \
	tests/hub tests/devices tests/runtime tests/certify tests/scenario/test_scenario_faults.py \
	tests/scenario/test_link_outage.py tests/scenario/test_transfer_resume.py tests/scenario/test_demo.py \
	tests/scenario/test_composition.py tests/scenario/test_seed_branches.py \
	tests/scenario/test_in_process_activation_round_trip.py

test-compiled: compiled
	CH_EMULATOR_EXPECT_COMPILED=1 $(CBIN)/python -m pytest -q -p no:randomly $(COMPILED_TESTS)

# The whole suite against the compiled build (what proves it behaves as pure Python does).
test-compiled-all: compiled
	CH_EMULATOR_EXPECT_COMPILED=1 $(CBIN)/python -m pytest -q -p no:randomly

clean:
	rm -rf $(VENV) $(CVENV) build build-compiled.log .pytest_cache .hypothesis
