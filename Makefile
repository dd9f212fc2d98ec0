# scim-bridge: `make run` serves a working SCIM endpoint; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
HOST   ?= 127.0.0.1
export SCIM_BRIDGE_DATABASE_URL ?= sqlite:///$(CURDIR)/instance/scim_bridge.db
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test install lint clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed  ## create the virtualenv and install the project with its test tools

run: install  ## migrate SQLite, ensure tenant "default", print URL + token, serve with gunicorn
	@mkdir -p instance
	$(BIN)/scim-bridge bootstrap --tenant default --base-url http://$(HOST):$(PORT)
	$(BIN)/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

test: install  ## the whole suite; on PostgreSQL too when SCIM_BRIDGE_TEST_POSTGRES_URL is set
	@test -x /usr/bin/chromium || echo "NOTE: /usr/bin/chromium is missing: the browser tests (tests/browser) will be" \
		"SKIPPED here (apt-get install chromium to run them; under CI=true they fail instead)" >&2
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: install  ## load benchmark vs the bare Flask ceiling (docs/benchmarks.md); BENCH_ARGS="--users 1000000 --duration 30"
	@command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk) \
		|| echo "wrk could not be installed: using the Python load generator"
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check scim_bridge tests
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) instance/*.db* .pytest_cache
