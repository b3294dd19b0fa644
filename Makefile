# Two entry points: `make run` and `make test`. Both create .venv on first use and are idempotent.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.raynas-installed
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check
CONFIG ?= experiments/configs/smoke.yaml

.PHONY: install bytecode lint run test clean

install: $(STAMP)

# torch/torchvision are pinned here (served locally); pyproject states the compatible range.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.14.1 torchvision==0.29.1
	$(PIP) -e ".[dev]"
	touch $(STAMP)

# Bytecode written once per change: where PYTHONDONTWRITEBYTECODE is set (as on these machines),
# every process, each Ray worker included, would otherwise compile raynas's sources again.
bytecode: install
	$(PY) -m compileall -q raynas experiments tests

run: bytecode
	$(PY) experiments/run_all_targets.py --config $(CONFIG)

# ruff: pyflakes, pycodestyle (140 columns) and import order; lint-imports: the layers in pyproject.toml.
lint: install
	$(VENV)/bin/ruff check raynas experiments tests
	$(VENV)/bin/lint-imports

test: lint bytecode
	$(PY) -m pytest -q --durations=15

clean:
	rm -rf runs .pytest_cache
