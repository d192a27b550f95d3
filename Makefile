# make demo / make test work on a fresh clone: they create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Tests that need the JAX backend as well (layers, backbone, classifier, seeding).
JAX_TESTS := tests/test_layers.py tests/test_backbone.py tests/test_classifier.py tests/test_training.py

.PHONY: install test demo bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q --durations=10
	KERAS_BACKEND=jax $(PY) -m pytest -q $(JAX_TESTS)

demo: $(STAMP)
	$(PY) Code/extract_feature.py --data_name DEMO
	$(PY) Code/main.py --mode train --data DEMO --epoch 30 --batch_size 16
	$(PY) Code/main.py --mode test --data DEMO
	$(PY) Code/summarize.py

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
