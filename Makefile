# kaemdr: `make run` serves the demo clinic; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where `make run` serves: `make run PORT=8001 HOST=0.0.0.0` (0.0.0.0 listens on every interface, so
# another machine can reach it; the pages then answer to any host name, as a development server).
HOST ?= 127.0.0.1
PORT ?= 8000
comma := ,
SHOWN_HOST := $(if $(filter 0.0.0.0,$(HOST)),127.0.0.1,$(HOST))
RUN_ALLOWED_HOSTS := $(if $(filter 0.0.0.0,$(HOST)),*,localhost$(comma)127.0.0.1$(comma)[::1]$(comma)$(HOST))

.PHONY: run test lint install serve migrate demo clean bench backup restore

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

## run: install, migrate, load the demo clinic, then serve web + Celery worker + beat (Ctrl-C stops all);
##      make run PORT=8001 HOST=0.0.0.0 chooses the port and the address it listens on
run: demo
	@echo ""
	@echo "kaemdr is starting at http://$(SHOWN_HOST):$(PORT)/  (Ctrl-C stops the web server, worker and beat)"
	@$(if $(filter 0.0.0.0,$(HOST)),echo "Listening on every interface: from another machine open this machine's address on port $(PORT).",true)
	@echo ""
	KAEMDR_BIND=$(HOST):$(PORT) KAEMDR_BASE_URL=$${KAEMDR_BASE_URL:-http://$(SHOWN_HOST):$(PORT)} DJANGO_ALLOWED_HOSTS="$${DJANGO_ALLOWED_HOSTS:-$(RUN_ALLOWED_HOSTS)}" exec $(BIN)/honcho -f Procfile.dev start

## test: the whole suite; real PostgreSQL and Redis when reachable (required when CI=true)
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: the benchmark's figures on a database of its own (PostgreSQL when reachable), under var/bench/;
##        kaemdr.settings.bench installs the `bench` app (its command) there only
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/kaemdr_bench
# Production keeps its cache in Redis: so does the benchmark's server (a database of its own).
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/2
bench: install
	@command -v wrk >/dev/null 2>&1 || { echo "make bench drives the pages with wrk: installing it (apt-get install wrk)"; apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -c "import psycopg2, sys; c = psycopg2.connect('$(BENCH_DATABASE_URL)'.rsplit('/', 1)[0] + '/postgres'); c.autocommit = True; cur = c.cursor(); name = '$(BENCH_DATABASE_URL)'.rsplit('/', 1)[1]; cur.execute('SELECT 1 FROM pg_database WHERE datname = %s', [name]); cur.fetchone() or cur.execute(f'CREATE DATABASE \"{name}\"')"
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python manage.py migrate --noinput -v0
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) DJANGO_DEBUG=false KAEMDR_CELERY_EAGER=true DJANGO_EMAIL_BACKEND=django.core.mail.backends.locmem.EmailBackend DJANGO_SETTINGS_MODULE=kaemdr.settings.bench $(BIN)/python manage.py bench $(BENCH_ARGS)

## backup: the configured database (and KAEMDR_PRIVATE_DIR as tar.gz) under var/backups/, UTC-stamped
backup: install
	$(BIN)/python manage.py backup

## restore: make restore BACKUP=var/backups/kaemdr-….dump [FORCE=1 to replace a database that has tables]
restore: install
	$(BIN)/python manage.py restore $(BACKUP) $(if $(FORCE),--force)

## lint: ruff, mypy, bandit, and pip-audit (which says so, and does not fail lint, when its service is out of reach)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/bandit -c pyproject.toml -r kaemdr pathways screening sessions integration bench -q
	@echo "$(BIN)/pip-audit --skip-editable"
	@out=$$($(BIN)/pip-audit --skip-editable --progress-spinner off 2>&1); status=$$?; \
	if [ $$status -eq 0 ] && echo "$$out" | grep -qE '^pip +Dependency not found on PyPI'; then \
		echo "pip-audit could not reach its vulnerability service: PyPI's JSON API does not know even pip here,"; \
		echo "so no package was audited (not counted as a lint failure)."; \
	elif [ $$status -ne 0 ] && echo "$$out" | grep -qE 'ConnectionError|NameResolutionError|Max retries exceeded'; then \
		echo "pip-audit could not reach its vulnerability service (not counted as a lint failure):"; \
		echo "$$out" | grep -m1 -E 'ConnectionError|NameResolutionError|Max retries exceeded' | cut -c1-300; \
	else \
		echo "$$out"; exit $$status; \
	fi

clean:
	rm -rf var/kaemdr.sqlite3 var/celery var/test-output
