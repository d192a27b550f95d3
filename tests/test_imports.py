"""The package is laid out along the pipeline, and its imports point one way.

features -> model -> training -> runs -> paper, with the command line on top
and a few leaf modules (config, errors, io, inputs, schema) below them all.
No module imports one of a later stage, at module level; no import cycle
exists, not even through imports inside functions. A cycle hidden in a
function works until someone moves the import to the top of a module; then
`import timnet_keras.x` fails with a half-initialised module.
"""
import ast
import graphlib
import os

import pytest

from conftest import REPO

PACKAGE = "timnet_keras"
PACKAGE_DIR = os.path.join(REPO, PACKAGE)
# The stages in pipeline order; a module may import its own stage and earlier ones.
STAGES = ("basics", "features", "model", "training", "runs", "paper", "command line")
BASICS = {"config", "errors", "io", "inputs", "schema"}
COMMAND_LINE = {"cli", "commands", "device", "__init__", "__main__"}
# Imports inside functions that reach a later stage, each for a reason the README's architecture section gives:
# the classifier task loads run folders and presets and predicts files, and io names the package's version.
UPWARD_INSIDE_FUNCTIONS = {
    ("model.classifier", "runs.store"), ("model.classifier", "runs.prediction"),
    ("model.classifier", "training.calibration"), ("model.classifier", "runs.presets"), ("io", "__init__"),
}


def package_modules():
    """Dotted names under the package, e.g. 'training.plan', 'cli', 'features' (a subpackage's __init__)."""
    names = []
    for folder, _, files in os.walk(PACKAGE_DIR):
        relative = os.path.relpath(folder, PACKAGE_DIR)
        prefix = "" if relative == "." else relative.replace(os.sep, ".") + "."
        for name in files:
            if name.endswith(".py"):
                stem = name[:-3]
                names.append(prefix[:-1] if stem == "__init__" and prefix else prefix + stem)
    return sorted(names)


def source_path(module):
    path = os.path.join(PACKAGE_DIR, *module.split("."))
    return os.path.join(path, "__init__.py") if os.path.isdir(path) else path + ".py"


def stage(module):
    first = module.split(".")[0]
    if module in BASICS:
        return 0
    if module in COMMAND_LINE:
        return len(STAGES) - 1
    return STAGES.index(first)


def imported_modules(tree, modules, top_level_only=False):
    """The package modules a module imports (`from timnet_keras.a.b import c`: a.b, or a.b.c when that is a module)."""
    found = set()
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name[len(PACKAGE) + 1:])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == PACKAGE:
            base = node.module[len(PACKAGE) + 1:]
            for alias in node.names:
                child = f"{base}.{alias.name}" if base else alias.name
                found.add(child if child in modules else (base or "__init__"))
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"relative import at line {node.lineno}: the package imports absolutely")
    return found & set(modules)


def import_graph(top_level_only=False):
    """{module: {package modules it imports}} of every module of timnet_keras."""
    modules = package_modules()
    graph = {}
    for module in modules:
        with open(source_path(module), encoding="utf-8") as f:
            graph[module] = imported_modules(ast.parse(f.read()), modules, top_level_only) - {module}
    return graph


def test_the_graph_sees_imports_at_module_level_and_inside_functions():
    graph = import_graph()
    assert "training.trainers" in graph["runs.modes"]  # at the top of runs/modes.py
    assert "training.trainers" in graph["paper.grid"]  # inside UnitRunner._trainer
    assert "model.checkpoints" in graph["model.classifier"]  # inside TimnetClassifier._from_fold_files
    assert "runs.store" in graph["runs.modes"]  # `from timnet_keras.runs import store as run_store`


def test_the_package_has_no_import_cycle():
    try:
        order = list(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle in {PACKAGE}: {' -> '.join(error.args[1])}")
    assert set(order) == set(package_modules())


def test_no_module_imports_a_later_stage_of_the_pipeline():
    upward = sorted((module, target) for module, targets in import_graph().items() for target in targets
                    if stage(target) > stage(module) and module.split(".")[0] in STAGES + tuple(BASICS))
    unexplained = [edge for edge in upward if edge not in UPWARD_INSIDE_FUNCTIONS]
    assert not unexplained, f"imports against the pipeline's direction: {unexplained}"
    at_top = import_graph(top_level_only=True)
    assert not [(m, t) for m, t in UPWARD_INSIDE_FUNCTIONS if t in at_top.get(m, ())], "an allowed upward import moved to module level"


def test_every_module_belongs_to_a_stage():
    for module in package_modules():
        assert module in BASICS | COMMAND_LINE or module.split(".")[0] in STAGES, module
