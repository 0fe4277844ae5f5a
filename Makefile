PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint install crds argocd demo demo-keep bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23.2"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# ruff (lint, then the format check) and mypy (strict for the operator package): fast, and
# they fail the build before the suite runs
lint: $(STAMP)
	$(PY) -m ruff check operator tests bench demo
	$(PY) -m ruff format --check operator tests bench demo
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -n 2 --dist loadfile -q tests

crds: $(STAMP)
	$(PY) -m model_registry_operator.api.crdgen crds
	$(PY) -m model_registry_operator.api.crdgen helm/model-registry-operator/crds

# the operator against a local Kubernetes API and SageMaker with every sample, then stops
# (README "Try it locally"); `make demo KEEP=1` or `make demo-keep` keeps it running
demo: $(STAMP)
	$(PY) demo/run.py $(if $(KEEP),--keep)

demo-keep: $(STAMP)
	$(PY) demo/run.py --keep

argocd: $(STAMP)
	$(PY) manifests/argocd/render.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
