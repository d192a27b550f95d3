"""The results registry: one record per finished unit, the grid's resume point."""
import json
import os

import numpy as np
import pytest

from timnet_keras.paper.registry import RegistryError, Unit, unit_record, finished_units, read_record, read_records, \
    record_path, write_record


def a_record(unit, rng, n=12, classes=4):
    probabilities = rng.dirichlet(np.ones(classes), size=n)
    return unit_record(unit=unit, labels=("a", "b", "c", "d"), test_indices=np.arange(n), y_true=rng.integers(0, classes, n),
                      probabilities=probabilities, history={"loss": [2.0, 1.5], "accuracy": [0.3, 0.5]},
                      selected_epoch=2, backend="tensorflow", machine={"hostname": "here"})


def test_a_cv_unit_is_named_by_cell_and_fold_and_a_cross_unit_by_its_pair():
    cv = Unit("cv", "EMOVO", "tcn", 1, 500, fold=7, n_folds=10)
    cross = Unit("cross", "CASIA", "timnet", 47, 500, target="EMODB")
    assert cv.key == "cv/EMOVO/tcn/seed1-e500/fold07"
    assert cross.key == cross.cell == "cross/CASIA-EMODB/timnet/seed47-e500"


def test_a_bfloat16_unit_is_a_cell_of_its_own_and_records_without_a_precision_are_float32():
    bf16 = Unit("cv", "EMODB", "timnet", 46, 500, fold=1, n_folds=10, precision="bfloat16")
    assert bf16.key == "cv/EMODB/timnet/seed46-e500-bfloat16/fold01"
    older = {k: v for k, v in Unit("cv", "EMODB", "timnet", 46, 500, 1, 10).to_json().items() if k != "precision"}
    assert Unit.from_json(older).precision == "float32"
    assert Unit.from_json(older).key == "cv/EMODB/timnet/seed46-e500/fold01"  # committed records keep their names


def test_a_record_round_trips_through_its_json_file(tmp_path, rng):
    unit = Unit("cv", "DEMO", "timnet", 46, 2, fold=1, n_folds=2)
    record = a_record(unit, rng)
    path = write_record(str(tmp_path), record)
    assert path == record_path(str(tmp_path), unit) and path.endswith(os.path.join("fold01.json"))
    again = read_record(path)
    assert again.unit == unit
    np.testing.assert_allclose(again.probabilities, record.probabilities, atol=1e-6)
    np.testing.assert_array_equal(again.y_true, record.y_true)
    assert again.history == record.history
    stored = json.load(open(path))
    assert stored["per_class_recall"] == record.per_class_recall
    assert not any(name.endswith((".h5", ".hdf5", ".keras")) for name in os.listdir(os.path.dirname(path)))


def test_per_class_recall_is_the_share_of_each_class_found():
    record = unit_record(Unit("cv", "X", "timnet", 1, 1, 1, 2), ("a", "b", "c"), np.arange(4), np.array([0, 0, 1, 1]),
                        np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0.0]]))
    assert record.per_class_recall == [50.0, 100.0, None]


def test_finished_units_are_the_records_on_disk(tmp_path, rng):
    units = [Unit("cv", "DEMO", "timnet", 46, 2, fold=k, n_folds=3) for k in (1, 3)]
    for unit in units:
        write_record(str(tmp_path), a_record(unit, rng))
    assert finished_units(str(tmp_path)) == {u.key for u in units}
    assert [r.unit for r in read_records(str(tmp_path))] == units


def test_a_damaged_record_says_to_delete_it(tmp_path, rng):
    unit = Unit("cv", "DEMO", "timnet", 46, 2, fold=1, n_folds=2)
    path = write_record(str(tmp_path), a_record(unit, rng))
    open(path, "w").write('{"unit": ')
    with pytest.raises(RegistryError, match="delete it"):
        read_records(str(tmp_path))
