# Spectra developer entry points. Every target works from a fresh clone: the virtualenvs are
# created on first use and skipped afterwards (stamp files inside each venv).
#
#   make test        lint + validate the template + the whole test suite (what CI runs)
#   make dev         the whole API on http://127.0.0.1:3000, no Docker, no AWS account
#   make build       sam build (no container)
#   make deploy ENV=prod

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Interpreter for the virtualenvs: python3.13 (the Lambda runtime) when one runs, found on PATH
# or in pyenv (a pyenv shim on PATH may exist without running), otherwise python3.
DETECTED_PYTHON := $(shell \
	if python3.13 -c '' >/dev/null 2>&1; then \
		python3.13 -c 'import sys; print(sys.executable)'; \
	elif command -v pyenv >/dev/null 2>&1 \
		&& p=$$(ls -d "$$(pyenv root)"/versions/3.13.*/bin/python3.13 2>/dev/null | sort -V | tail -n 1) \
		&& [ -n "$$p" ] && "$$p" -c '' >/dev/null 2>&1; then \
		echo "$$p"; \
	else \
		command -v python3; \
	fi)
PYTHON ?= $(DETECTED_PYTHON)

VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
# The tools get their own venvs: their pins conflict with the app's and with each other.
SAM_CLI_VERSION ?= 1.170.0
CHECKOV_VERSION ?= 3.3.30
# cfn-guard 3.1.1 and AWS Control Tower's guard rules, as the CDK validator plugin ships them.
GUARD_VALIDATOR_VERSION ?= 0.0.62

ENV ?= dev
TEMPLATE := template.yaml
MYPY_PATHS := layers/spectra/spectra cli/spectra_cli local/spectra_local functions tests scripts

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export SAM_CLI_TELEMETRY := 0
PIP := python -m pip install -q

# Stamps: the app venv is keyed on pyproject.toml, each tool venv on its pinned version.
VENV_STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed-aws-sam-cli-$(SAM_CLI_VERSION)
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-checkov-$(CHECKOV_VERSION)
GUARD_DIR := .tools/cfn-guard
GUARD_PACKAGE := $(GUARD_DIR)/node_modules/@cdklabs/cdk-validator-cfnguard
GUARD_STAMP := $(GUARD_DIR)/.installed-cdk-validator-cfnguard-$(GUARD_VALIDATOR_VERSION)

.PHONY: help venv tools lint format validate build test dev dev-reset openapi plans bench deploy clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# ---- environments --------------------------------------------------------------------------

venv: $(VENV_STAMP) ## .venv with the app and dev dependencies

$(VENV_STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/$(PIP) -e '.[dev]'
	@touch $@

tools: $(SAM_STAMP) $(CHECKOV_STAMP) $(GUARD_STAMP) ## .venv-sam (SAM CLI), .venv-checkov, .tools/cfn-guard

$(SAM_STAMP):
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/$(PIP) 'aws-sam-cli==$(SAM_CLI_VERSION)'
	@rm -f $(SAM_VENV)/.installed-*
	@touch $@

$(CHECKOV_STAMP):
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/$(PIP) 'checkov==$(CHECKOV_VERSION)'
	@rm -f $(CHECKOV_VENV)/.installed-*
	@touch $@

# npm only fetches the package (binary and rules inside it): no install scripts run.
$(GUARD_STAMP):
	@mkdir -p $(GUARD_DIR)
	npm install --prefix $(GUARD_DIR) --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
		'@cdklabs/cdk-validator-cfnguard@$(GUARD_VALIDATOR_VERSION)'
	@rm -f $(GUARD_DIR)/.installed-*
	@touch $@

# ---- quality -------------------------------------------------------------------------------

lint: venv ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@# pyproject sets explicit_package_bases with mypy_path layers/spectra:cli, so every
	@# functions/<name>/app.py is its own module (functions.<name>.app): one run, no clashes.
	@paths=""; for p in $(MYPY_PATHS); do \
		if [ -n "$$(find "$$p" -name '*.py' -print -quit 2>/dev/null)" ]; then paths="$$paths $$p"; fi; \
	done; \
	if [ -n "$$paths" ]; then echo "$(VENV)/bin/mypy$$paths"; $(VENV)/bin/mypy $$paths; \
	else echo "mypy: no Python sources yet"; fi

format: venv ## ruff fix + format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

validate: venv tools ## sam validate --lint, cfn-lint, checkov and cfn-guard on the template (all clean)
	AWS_DEFAULT_REGION=us-east-1 $(SAM_VENV)/bin/sam validate --lint --template $(TEMPLATE)
	$(VENV)/bin/cfn-lint $(TEMPLATE)
	$(CHECKOV_VENV)/bin/checkov --skip-download --quiet --compact -f $(TEMPLATE) --framework cloudformation
	$(SAM_VENV)/bin/python scripts/guard_template.py check $(GUARD_PACKAGE) $(TEMPLATE)

test: lint validate ## lint, validate, then the whole test suite
	$(VENV)/bin/pytest -q

# ---- build and run -------------------------------------------------------------------------

# sam build looks for python3.13 on PATH: put the interpreter's own bin dir first (a pyenv
# shim would be found first otherwise and may not run). No container: arm64 wheels come from PyPI.
build: tools ## sam build (cached, parallel; see samconfig.toml)
	PATH="$$(dirname "$$($(PYTHON) -c 'import sys; print(sys.executable)')"):$$PATH" \
		$(SAM_VENV)/bin/sam build --template $(TEMPLATE)

deploy: build ## sam deploy --config-env $(ENV) (dev, prod, prod-eu)
	$(SAM_VENV)/bin/sam deploy --config-env $(ENV)

dev: venv ## run the API locally on http://127.0.0.1:3000 (embedded moto, demo org seeded)
	$(VENV)/bin/python -m spectra_local

dev-reset: ## forget local state, then make dev
	rm -rf .spectra-local/
	$(MAKE) dev

openapi: venv ## regenerate docs/openapi.json from the code (a test fails when it drifts)
	$(VENV)/bin/python -m spectra_local.openapi --write

plans: venv ## regenerate the template's usage plans and the README's plan table from the layer's plans
	$(VENV)/bin/python -m spectra_local.plan_tables

bench: venv ## print the performance figures (never asserted in tests)
	$(VENV)/bin/python -m spectra_local.bench

clean: ## remove build output and caches (keeps the venvs)
	rm -rf .aws-sam/ .pytest_cache/ .mypy_cache/ .ruff_cache/ build/ dist/
	find . -path ./.venv -prune -o -path './.venv-*' -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -path ./.venv -prune -o -path './.venv-*' -prune -o -name '*.egg-info' -type d -prune -exec rm -rf {} +

distclean: clean ## clean, and remove the venvs and local state
	rm -rf $(VENV)/ $(SAM_VENV)/ $(CHECKOV_VENV)/ .tools/ .spectra-local/
