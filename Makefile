# ModelRelease. The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export MODELRELEASE_CACHE ?= $(HOME)/.cache/modelrelease
export PATH := $(MODELRELEASE_CACHE)/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# --- set-up -------------------------------------------------------------
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,lint]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## the Python environment (.venv)

.PHONY: tools
tools: venv ## build/fetch etcd, kube-*, kwok, kubectl, helm, Prometheus, CRDs, prometheus-adapter, lint and Argo CD test tools (cached)
	hack/tools.sh all

# --- local cluster --------------------------------------------------------
.PHONY: cluster-up cluster-down cluster-status
cluster-up: tools ## start the local GPU cluster and Prometheus
	hack/local-cluster.sh up
cluster-down: ## stop the local cluster and remove its state
	hack/local-cluster.sh down
cluster-status: ## show what runs
	hack/local-cluster.sh status

# --- API ------------------------------------------------------------------
.PHONY: crds verify-crds
crds: venv ## regenerate crds/, the chart's CRDs and docs/api.md from the models
	$(PY) -m modelrelease.api.crdgen --write
verify-crds: venv ## fail when the checked-in CRDs or docs differ from the models
	$(PY) -m modelrelease.api.crdgen --check

# --- checks ---------------------------------------------------------------
.PHONY: lint lint-tools promtool unit test-cluster test
lint-tools: venv ## build actionlint (cached); ruff, mypy and hadolint come pinned in .venv
	hack/tools.sh lint

lint: lint-tools ## ruff, mypy --strict, actionlint on .github/workflows, hadolint on the Dockerfile
	$(VENV)/bin/ruff check operator tests hack
	$(VENV)/bin/ruff format --check operator tests hack
	$(VENV)/bin/mypy
	$(MODELRELEASE_CACHE)/bin/actionlint
	$(VENV)/bin/hadolint Dockerfile

promtool: ## fetch promtool (cached) for the alert rules' tests
	hack/tools.sh promtool

unit: venv promtool ## fast pure tests (no cluster; promtool tests the alert rules)
	hack/pytest.sh tests/unit

test-cluster: tools ## tests against the local control plane and Prometheus
	MODELRELEASE_AUDIT=1 hack/with-cluster.sh hack/pytest.sh tests/cluster tests/e2e

test: lint verify-crds unit test-cluster ## everything the project checks (what CI runs)

# --- benchmarks -------------------------------------------------------------
.PHONY: chaos bench-scale
chaos: tools ## the chaos suite: releases under faults, invariants checked (~40 min; CHAOS_ARGS=--quick)
	hack/with-cluster.sh $(PY) hack/bench/chaos.py $(CHAOS_ARGS)
# A cluster started here has the audit log, the scale limits and room for 2,000 pods; one
# already running must have been started so too (the script says how if not).
bench-scale: tools ## operator cost and timeliness at 100/300/1,000 releases (long; SCALE_ARGS=--quick)
	MODELRELEASE_AUDIT=1 MODELRELEASE_SCALE=1 CPU_NODES=20 \
	  hack/with-cluster.sh $(PY) hack/bench/scale.py $(SCALE_ARGS)

.PHONY: bench-peers
bench-peers: tools ## ModelRelease, Flagger and Argo Rollouts on the same faults (~2 h; PEERS_ARGS=--quick)
	hack/tools.sh flagger
	hack/tools.sh argo-rollouts
	hack/with-cluster.sh $(PY) hack/bench/peers.py $(PEERS_ARGS)

# --- demo -----------------------------------------------------------------
.PHONY: demo demo-down
demo: cluster-up ## bring everything up and show a promotion and a rollback
	$(PY) hack/demo.py
demo-down: ## stop the demo's processes and the cluster
	-$(PY) hack/demo.py --down
	hack/local-cluster.sh down
