# kaemdr: `make run` serves the demo clinic; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install serve migrate demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py demo_data

## run: install, migrate, load the demo clinic, then serve web + Celery worker + beat (Ctrl-C stops all)
run: demo
	@echo ""
	@echo "kaemdr is starting at http://$(HOST):$(PORT)/  (Ctrl-C stops the web server, worker and beat)"
	@echo ""
	KAEMDR_BIND=$(HOST):$(PORT) exec $(BIN)/honcho -f Procfile.dev start

## test: the whole suite; real PostgreSQL and Redis when reachable (required when CI=true)
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## lint: ruff and mypy
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

clean:
	rm -rf var/kaemdr.sqlite3 var/celery var/test-output
