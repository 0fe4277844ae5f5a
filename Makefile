PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test install crds argocd demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23.2"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q tests

crds: $(STAMP)
	$(PY) -m model_registry_operator.api.crdgen crds
	$(PY) -m model_registry_operator.api.crdgen helm/model-registry-operator/crds

argocd: $(STAMP)
	$(PY) manifests/argocd/render.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
