"""Figures: written atomically, and a user's pyplot state left alone."""
import os

import numpy as np

from timnet_keras.runs.plots import plot_ablation_gaps, plot_confusion_matrix, plot_training_curves, plot_tsne_panels
from timnet_keras.paper.report import AblationComparison, PairedTest


def test_figures_are_written_without_opening_pyplot_figures(tmp_path, rng):
    import matplotlib.pyplot as plt

    backend = plt.get_backend()
    open_before = plt.get_fignums()
    plot_confusion_matrix([[3, 1], [0, 4]], ("a", "b"), str(tmp_path / "cm.png"))
    plot_training_curves([(1, {"loss": [1.0, 0.5], "accuracy": [0.5, 0.8]})], str(tmp_path / "curves.png"))
    rows = [{"fold": 1 + i % 2, "utterance": i, "true": "abc"[i % 3], "predicted": "abc"[i % 5 % 3], "x": x, "y": y}
            for i, (x, y) in enumerate(rng.normal(size=(30, 2)))]
    plot_tsne_panels(rows, ("a", "b", "c"), str(tmp_path / "tsne.png"), "t")
    plot_ablation_gaps([AblationComparison("EMODB", "tcn", -5.61, PairedTest(-1.3, -4.6, 2.0, 0.45, 10))],
                       str(tmp_path / "table3.png"))
    assert sorted(os.listdir(tmp_path)) == ["cm.png", "curves.png", "table3.png", "tsne.png"]
    assert plt.get_fignums() == open_before and plt.get_backend() == backend
    assert open(tmp_path / "cm.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
