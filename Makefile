# One venv, one install; every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test test-unit test-integration test-e2e lint fmt schemas bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the whole stack locally (broker, PostgreSQL, both services); Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/msp-import-dev up

## All test tiers: unit, integration (real PostgreSQL + broker), e2e.
test: $(STAMP)
	$(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest -m unit

test-integration: $(STAMP)
	$(BIN)/pytest -m integration

test-e2e: $(STAMP)
	$(BIN)/pytest -m e2e

lint: $(STAMP)
	$(BIN)/ruff check services schemas tests bench
	$(BIN)/ruff format --check services schemas tests bench
	$(BIN)/mypy
	$(BIN)/python -m schemas.generate --check

fmt: $(STAMP)
	$(BIN)/ruff format services schemas tests
	$(BIN)/ruff check --fix services schemas tests

## Regenerate schemas/json/*.json and schemas/asyncapi.yaml from the models.
schemas: $(STAMP)
	$(BIN)/python -m schemas.generate

## Throughput and latency of the import worker (see docs/performance.md).
bench: $(STAMP)
	$(BIN)/python bench/worker_bench.py

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
