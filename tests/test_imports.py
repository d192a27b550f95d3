"""The package's modules import one another one way only: no import cycle, not even inside functions.

A cycle hidden in a function-level import works until someone moves the
import to the top of a module; then `import timnet_keras.x` fails with a
half-initialised module, depending on which module a user imports first.
"""
import ast
import graphlib
import os

import pytest

from conftest import REPO

PACKAGE = "timnet_keras"
PACKAGE_DIR = os.path.join(REPO, PACKAGE)


def package_modules():
    return sorted(name[:-3] for name in os.listdir(PACKAGE_DIR) if name.endswith(".py"))


def imported_modules(tree, modules):
    """The package modules a module's source imports, at any depth (module level, functions, classes)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
            found.update(name.split(".")[1] for name in names if name.startswith(PACKAGE + "."))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] == PACKAGE:
                parts = node.module.split(".")[1:]  # `from timnet_keras.x import ...` or `from timnet_keras import x`
            elif node.level == 1:
                parts = node.module.split(".") if node.module else []  # `from .x import ...` or `from . import x`
            else:
                continue
            if parts:
                found.add(parts[0])
            else:
                found.update(alias.name for alias in node.names if alias.name in modules)
    return found & set(modules)


def import_graph():
    """{module: {package modules it imports}} of every module of timnet_keras."""
    modules = package_modules()
    graph = {}
    for module in modules:
        with open(os.path.join(PACKAGE_DIR, module + ".py"), encoding="utf-8") as f:
            graph[module] = imported_modules(ast.parse(f.read()), modules) - {module}
    return graph


def test_the_graph_sees_imports_at_module_level_and_inside_functions():
    graph = import_graph()
    assert "trainers" in graph["runs"]  # `from .trainers import choose_trainer` at the top of runs.py
    assert "trainers" in graph["grid"]  # inside UnitRunner._trainer
    assert "checkpoints" in graph["classifier"]  # inside TimnetClassifier._from_fold_files
    assert "plan" in graph["batched"]


def test_the_package_has_no_import_cycle():
    try:
        order = list(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle in {PACKAGE}: {' -> '.join(error.args[1])}")
    assert set(order) == set(package_modules())
