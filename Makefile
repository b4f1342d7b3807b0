# One target per gate. `make run` and `make test` are the two commands a fresh machine needs.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
DEBS    = prometheus-alertmanager prometheus wrk
PYTEST_ARGS ?=
ARGS ?=

.PHONY: help run test pytest lint typecheck fmt generate system-deps bench deploy-check clean

help:
	@echo "make run          run Tocsin on embedded defaults (installs into $(VENV) first)"
	@echo "make test         install everything, then lint, typecheck and the whole test suite"
	@echo "make pytest       only the test suite"
	@echo "make lint         ruff"
	@echo "make typecheck    mypy --strict"
	@echo "make generate     regenerate schemas/json and schemas/openapi.json"
	@echo "make bench        bench/ingest.py side by side with Alertmanager"
	@echo "make deploy-check promtool/amtool checks and rule unit tests of deploy/"

$(STAMP): pyproject.toml setup.py schemas/_fnv.c services/runtime/_murmur2.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,speed]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tocsin run $(ARGS)

# The Debian packages the tests use as oracles and clients (Alertmanager, amtool, promtool, wrk).
system-deps:
	@missing=""; for b in prometheus-alertmanager amtool promtool prometheus wrk; do \
	  command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(DEBS) >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy schemas services tests bench deploy/demo-app/demo_app.py deploy/demo-app/gpu_check.py

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: system-deps $(STAMP) lint typecheck pytest

generate: $(STAMP)
	$(BIN)/python -m schemas.generate

bench: system-deps $(STAMP)
	$(BIN)/python bench/ingest.py

deploy-check: system-deps $(STAMP)
	$(BIN)/pytest -q tests/deploy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
