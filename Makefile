# make demo / make test work on a fresh clone: they create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The JAX pass: modules marked both_backends (layers, backbone, classifier, training, padding, the
# batched trainer) and the backend-agnostic flows marked jax_pass (grid, reproduction, calibration, bad
# input, ...), which the TensorFlow pass leaves to it: JAX's jit trains their tiny models far more cheaply.
JAX_SELECTION := both_backends or jax_pass

.PHONY: install test demo bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The JAX pass runs beside the TensorFlow pass (its own temp folder and log): the suite is mostly
# single-threaded start-up and tracing, so two passes on two cores finish sooner than one after the other.
test: $(STAMP)
	@KERAS_BACKEND=jax $(PY) -m pytest -q -p no:cacheprovider --basetemp=.pytest-jax --durations=5 -m "$(JAX_SELECTION)" tests timnet_keras/training/batched.py \
		> .pytest-jax.log 2>&1 & \
	jax=$$!; $(PY) -m pytest -q --durations=10 -m "not jax_pass"; tf=$$?; wait $$jax; jx=$$?; \
	echo "--- on the JAX backend: layers, backbone, classifier, training, padding, the batched trainer; the backend-agnostic flows ---"; \
	cat .pytest-jax.log; \
	test $$tf -eq 0 && test $$jx -eq 0

demo: $(STAMP)
	$(PY) Code/extract_feature.py --data_name DEMO
	$(PY) Code/main.py --mode train --data DEMO --epoch 30 --batch_size 16
	$(PY) Code/main.py --mode test --data DEMO
	$(PY) Code/summarize.py

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
