"""The documentation states each figure once, from where it was measured: README's table against the records."""
import glob
import os

import numpy as np

from conftest import REPO
from timnet_keras.training.evaluation import uar, war
from timnet_keras.paper.registry import read_record


def _pooled(cell):
    records = [read_record(p) for p in sorted(glob.glob(os.path.join(REPO, "reproduction", "records", *cell.split("/"), "*.json")))]
    y_true = np.concatenate([r.y_true for r in records])
    y_pred = np.concatenate([r.y_pred for r in records])
    return len(records), f"{uar(y_true, y_pred):.2f} / {war(y_true, y_pred):.2f}"


def test_readmes_emodb_figure_is_the_one_the_committed_records_give():
    folds, figure = _pooled("cv/EMODB/timnet/seed46-e500")
    assert folds == 10
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    row = next(line for line in readme.splitlines() if line.startswith("| ours, 10 folds × 500 epochs, last epoch, seed 46"))
    assert f"**{figure}**" in row, (figure, row)
    uar_, war_ = figure.split(" / ")
    reproduction = open(os.path.join(REPO, "REPRODUCTION.md"), encoding="utf-8").read()
    assert any(line.startswith("| EMODB |") and f"| {uar_} | {war_} |" in line for line in reproduction.splitlines())


def test_readmes_extraction_ratio_is_the_one_benchmarks_states():
    import re

    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    low, high = re.search(r"extracts features\s+(\d+(?:\.\d+)?)–(\d+(?:\.\d+)?)× faster", readme.replace("\n", " ")).groups()
    benchmarks = open(os.path.join(REPO, "BENCHMARKS.md"), encoding="utf-8").read()
    row = next(line for line in benchmarks.splitlines() if line.startswith("| feature extraction, 535 Emo-DB files"))
    ranges = [(float(a), float(b)) for a, b in re.findall(r"\*\*(\d+\.\d+)–(\d+\.\d+)×\*\*", row)]
    assert any(round(a, 1) == float(low) and int(b) == int(float(high)) for a, b in ranges), (low, high, ranges)
