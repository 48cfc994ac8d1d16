# `make dev` and `make test` set everything up on a fresh machine, then run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint bench install clean test-deps reset-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# System packages some tests need; fragments in mk/ add to it.
test-deps:

dev: $(STAMP)
	$(BIN)/agent-ticket dev

# The demo's target DB back to its seeded rows (the high-risk demo changes them); tickets are kept.
reset-demo: $(STAMP)
	$(BIN)/agent-ticket reset-demo

test: $(STAMP) test-deps
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache

# Fragments (test-deps prerequisites, bench); included last so `make` alone still means the first target here.
-include mk/*.mk
