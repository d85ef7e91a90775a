# edgesight — two commands for users: `make demo` and `make test`. Everything else is for developers.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-arm lint format models schemas system-deps venv clean bench mcu

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all]'
	touch $(STAMP) $(DEMO_STAMP)

# The demo needs only its own extra (no torch, no browser); an installed `all` covers it too.
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[demo]'
	touch $(DEMO_STAMP)

venv: $(STAMP)

## System packages (Mosquitto for tests and compose-free runs, Chromium for dashboard tests).
system-deps:
	@bash deploy/install-system-deps.sh

## No system packages and no root: the demo's broker is embedded, its database is SQLite.
demo: $(DEMO_STAMP)
	$(PY) -m deploy.demo

test: system-deps $(STAMP) mcu
	$(VENV)/bin/ruff check .
	$(PY) -m shared.schemas --check docs/protocol
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory test-arm

## The agent's arm64-marked tests on aarch64 under QEMU (Pi 4 and Pi 5 cores), in a cached rootfs.
## EDGESIGHT_SKIP_ARM=1 skips it on a developer's machine; CI runs it.
test-arm: $(STAMP)
	PY=$(PY) bash deploy/arm64/test-arm.sh

## The microcontroller class: export the int8 model to C, build the host library and the Cortex-M7
## firmware (the linker script fails the build over the flash/RAM budget). tests/mcu runs them.
mcu: system-deps $(STAMP)
	$(MAKE) -C firmware_models/mcu PYTHON=$(abspath $(PY))

lint: $(STAMP)
	$(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff format .

schemas: $(STAMP)
	$(PY) -m shared.schemas --write docs/protocol

## Rebuild every reference model from nothing (render, train, export, quantize, evaluate, card).
models: $(STAMP)
	$(PY) -m firmware_models build-all

bench: $(STAMP)
	$(PY) -m benchmarks.models --json
	$(PY) -m benchmarks.pipeline --json
	$(PY) -m benchmarks.events --json
	$(PY) -m benchmarks.detector --json
	$(PY) -m benchmarks.ingest --json
	$(PY) -m benchmarks.rollout --json
	$(PY) -m benchmarks.mcu --json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info instance
