# alblake — one Makefile; parts add targets in mk/*.mk and checks to CHECK_TARGETS.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO ?= demo
CHECK_TARGETS :=

.PHONY: venv demo test lint typecheck pytest bench clean
.DEFAULT_GOAL := demo

include $(wildcard mk/*.mk)

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml setup.py src/alblake/_albtok.c  # C changed: pip rebuilds the native tokenizer
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

## demo: sample logs -> Parquet lake -> HTML report, all local (no AWS)
demo: venv
	rm -rf $(DEMO)
	$(VENV)/bin/alblake sample --out $(DEMO)/logs
	$(VENV)/bin/alblake ingest $(DEMO)/logs --lake $(DEMO)/lake
	$(VENV)/bin/alblake report --lake $(DEMO)/lake --out $(DEMO)/report.html
	@echo "open $(DEMO)/report.html"

## test: everything CI checks
test: venv lint typecheck $(CHECK_TARGETS) pytest

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv
	$(PY) -m pytest -q -n 2

## generate: rewrite sql/ddl/*.sql and template.yaml's Glue SerDe/column blocks from alblake/schema.py
.PHONY: generate
generate: venv
	$(PY) -m alblake.cli_schema --write .

bench: venv
	$(PY) bench/throughput.py
	$(PY) bench/memory.py

clean:
	rm -rf $(DEMO) build .aws-sam .pytest_cache .mypy_cache .ruff_cache .venv-iac .venv-checkov
