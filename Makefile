# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test lint format bench install clean cluster

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: venv, install, migrate, seed the demo and serve it on http://127.0.0.1:8080 (SQLite)
run: $(STAMP)
	$(BIN)/contact-center migrate
	$(BIN)/contact-center demo

## test: the whole suite (needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379)
test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: every benchmark, one JSON line each (python -m bench NAME runs one)
bench: $(STAMP)
	@for b in $$(ls bench/*.py | xargs -n1 basename | sed 's/\.py$$//' | grep -v '^_'); do \
		$(BIN)/python -m bench $$b | tail -n 1; done

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache *.egg-info

## cluster: the scaled-out deployment on loopback, no Docker: own Redis, local PostgreSQL
## (database cc_cluster, re-created), 2 web processes, 2 router leaders, 1 RQ worker,
## nginx on :8080 when installed. Ctrl-C stops everything.
cluster: $(STAMP)
	$(BIN)/python -m contact_center.cluster
