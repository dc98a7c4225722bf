# alblake — one Makefile; parts add targets in mk/*.mk and checks to CHECK_TARGETS.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO ?= demo
CHECK_TARGETS :=
# Every venv installs with a constraints file (exact versions that passed `make test`), so a clone builds the
# same tools next month. `make constraints` re-resolves them on purpose; review the diff, test, commit.
CONSTRAINTS ?= constraints.txt
CONSTRAINT_TARGETS :=

# The Lambda runtime's Python (sam build, the layer's .pyc, the layer import check). The first python3.13 that
# runs, from PATH or pyenv; set PYTHON313=/path/to/python3.13 to choose one. (A pyenv shim is on PATH but
# fails unless 3.13 is selected, so each candidate is run once.)
ifndef PYTHON313
PYTHON313 := $(firstword $(foreach p,$(shell command -v python3.13 2>/dev/null) \
  $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13),$(if $(shell $(p) -V 2>/dev/null),$(p))))
endif

.PHONY: venv deps demo test lint typecheck pytest bench clean constraints constraints-dev
.DEFAULT_GOAL := demo

include $(wildcard mk/*.mk)

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml setup.py src/alblake/_albtok.c $(CONSTRAINTS)  # C changed: pip rebuilds it
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

## deps: the system packages `make test` needs (Debian/Ubuntu, installed only when missing): chromium (the
## report's browser test), gcc-aarch64-linux-gnu (the arm64 layer's native tokenizer), qemu-user-static (runs
## that arm64 build in a test). Also checks that a python3.13 was found (see PYTHON313).
DEPS ?= chromium:chromium aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu qemu-aarch64-static:qemu-user-static
deps:
	@missing=""; for pair in $(DEPS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "deps: installing$$missing"; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@test -n "$(PYTHON313)" || { echo "deps: no working python3.13 on PATH or under pyenv;" \
	  "install one (the Lambda runtime's version) or set PYTHON313=/path/to/python3.13" >&2; exit 1; }

## demo: sample logs -> Parquet lake -> HTML report, all local (no AWS)
demo: venv
	rm -rf $(DEMO)
	$(VENV)/bin/alblake sample --out $(DEMO)/logs
	$(VENV)/bin/alblake ingest $(DEMO)/logs --lake $(DEMO)/lake
	$(VENV)/bin/alblake report --lake $(DEMO)/lake --out $(DEMO)/report.html
	@echo "open $(DEMO)/report.html"

## test: everything CI checks
test: deps venv lint typecheck $(CHECK_TARGETS) pytest

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv
	$(PY) -m pytest -q -n 2

## generate: rewrite sql/ddl/*.sql and template.yaml's Glue SerDe/column blocks from alblake/schema.py
.PHONY: generate
generate: venv
	$(PY) -m alblake schema --write .

bench: venv
	$(PY) bench/throughput.py
	$(PY) bench/memory.py

## chaos: the fault-injection run (tests/chaos_run.py): 5,000 ALB objects through the real functions and the CLI
## against moto_server with faults everywhere; prints the faults, the redrive and the tally (0 lost / 0 duplicated)
SEED ?= 1
CHAOS_OBJECTS ?= 5000
.PHONY: chaos
chaos: venv
	$(PY) -m tests.chaos_run --objects $(CHAOS_OBJECTS) --seed $(SEED)

## constraints: re-resolve every venv's packages (newest versions the requirements allow) into constraints*.txt
constraints: constraints-dev $(CONSTRAINT_TARGETS)
constraints-dev:
	scripts/freeze_constraints.sh $(PYTHON) $(CONSTRAINTS) -e '.[dev]'

clean:
	rm -rf $(DEMO) build .aws-sam .pytest_cache .mypy_cache .ruff_cache .venv-iac .venv-checkov
