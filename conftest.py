"""Doctests of the package: those of the JAX-only batched trainer run in make test's JAX pass only."""
import keras
import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith("timnet_keras/training/batched.py"):
            item.add_marker(pytest.mark.both_backends)
            if keras.backend.backend() != "jax":
                item.add_marker(pytest.mark.skip(reason="the batched trainer is JAX's: make test runs it in its JAX pass"))
