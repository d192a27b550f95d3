"""Scores: UAR and WAR per fold, pooled, with a class missing from a fold."""
import numpy as np
import pytest

from timnet_keras.training.evaluation import classification_report_csv, summarize_folds, uar, war
from timnet_keras.training.record import FoldRecord


def test_uar_weighs_every_class_equally_and_war_every_sample():
    y_true, y_pred = [0] * 9 + [1], [0] * 10
    assert war(y_true, y_pred) == pytest.approx(90.0)
    assert uar(y_true, y_pred) == pytest.approx(50.0)


def test_a_class_absent_from_a_fold_does_not_count_in_its_uar():
    assert uar([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(75.0)  # class 2 never true: mean of 100 and 50


def _record(fold, y_true, y_pred, classes=3):
    return FoldRecord(fold, np.arange(len(y_true)), np.asarray(y_true), np.eye(classes, dtype=np.float32)[y_pred])


def test_pooled_scores_count_all_predictions_once_and_differ_from_the_mean_of_folds():
    records = [_record(1, [0, 1], [0, 1]), _record(2, [0, 0, 0, 2], [1, 1, 1, 2])]
    summary = summarize_folds(records, ("a", "b", "c"))
    assert summary["pooled"]["war"] == pytest.approx(100 * 3 / 6)
    assert summary["mean"]["war"] == pytest.approx((100 + 25) / 2)
    assert np.array(summary["confusion_matrix"]).sum() == 6 and summary["confusion_matrix"][0][1] == 3


def test_classification_report_has_a_row_per_fold_and_class():
    text = classification_report_csv([_record(1, [0, 1], [0, 1]), _record(2, [2, 2], [2, 1])], ("a", "b", "c"))
    rows = text.strip().splitlines()
    assert rows[0] == "fold,class,precision,recall,f1,support" and len(rows) == 1 + 2 * (3 + 2)
    assert "2,c,1.0000,0.5000" in text
