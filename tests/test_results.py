"""Result folders and the Table 1 summary: every file written, test-selected runs marked."""
import json
import os

import numpy as np
import pytest

from timnet_keras import cli
from timnet_keras.runs.results import ResultsError, summarize_results, write_results
from timnet_keras.training.record import FoldRecord


def _records(rng):
    return [FoldRecord(k, np.arange(6), np.array([0, 1, 2, 0, 1, 2]), rng.dirichlet(np.ones(3), 6).astype(np.float32))
            for k in (1, 2)]


@pytest.mark.parametrize("test_selected", [False, True])
def test_a_result_folder_has_every_file_and_says_when_it_is_test_selected(tmp_path, rng, test_selected):
    lines = []
    header = {"data": "X", "test_selected": test_selected, "selection": "best-test" if test_selected else "last"}
    summary = write_results(str(tmp_path), _records(rng), ("a", "b", "c"), header, [(1, {"loss": [2.0, 1.0], "accuracy": [0.3, 0.5]})],
                            log=lines.append)
    assert sorted(os.listdir(tmp_path)) == ["classification_report.csv", "confusion_matrix.png", "reliability.png", "summary.json",
                                            "training_curves.png"]
    assert json.load(open(tmp_path / "summary.json"))["pooled"] == summary["pooled"]
    assert any("test-selected" in line for line in lines) == test_selected


def test_the_summary_scores_calibration_before_and_after_each_folds_temperature(tmp_path, rng):
    records = _records(rng)
    records[0] = records[0].replace(calibration={"temperature": 0.5})  # fold 2 has none: temperature 1, before == after
    summary = write_results(str(tmp_path), records, ("a", "b", "c"), {"data": "X"}, log=lambda *_: None)
    first, second = summary["folds"]
    assert first["temperature"] == 0.5 and first["nll_calibrated"] != first["nll"] and summary["calibrated"] is True
    assert second["temperature"] == 1.0 and all(second[k] == second[f"{k}_calibrated"] for k in ("ece", "nll", "brier"))
    assert {"ece", "nll", "brier", "ece_calibrated", "nll_calibrated", "brier_calibrated", "war", "uar"} <= set(summary["pooled"])
    assert (tmp_path / "reliability.png").stat().st_size > 0


def test_summary_table_lists_every_run_and_marks_test_selected(tmp_path, capsys):
    for name, selected in (("EMODB_46_a", False), ("EMODB_46_b", True)):
        (tmp_path / name).mkdir()
        summary = {"data": "EMODB", "mode": "train", "protocol": "kfold", "selection": "best-test" if selected else "last",
                   "test_selected": selected, "model": {"variant": "timnet"}, "epochs": 500, "seed": 46,
                   "pooled": {"war": 90.0, "uar": 89.0}, "mean": {"war": 90.1, "uar": 89.1}, "std": {"war": 1.0, "uar": 1.2},
                   "folds": [{}] * 10}
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    assert cli.summarize_main([str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert table.count("| EMODB |") == 2 and "(test-selected)" in table and "89.00" in table


def test_no_runs_to_summarize_is_an_error_naming_the_folder(tmp_path):
    with pytest.raises(ResultsError, match=str(tmp_path)):
        summarize_results(str(tmp_path))
