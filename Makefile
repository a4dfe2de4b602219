# schedcp: the two commands a newcomer needs are `make demo` and `make test`.
# Both set everything up first (idempotent: a second run only checks).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup host venv demo test test-fast lint typecheck clean

setup: host venv

# Debian packages (QEMU 10, clang-19, bpftool, libbpf, stress-ng, ...) and the sched_ext kernel.
host:
	bash scripts/setup-host.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/schedcp demo

lint: venv
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

# Tests that need nothing but Python: no VM, no BPF toolchain or kernel, no PostgreSQL
# (the markers are in pyproject.toml; tests/conftest.py keeps them honest).
FAST := not sandbox and not bpf and not host_bpf and not postgres
test-fast: venv
	$(BIN)/pytest -m '$(FAST)' -q

test: setup lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
