"""One training flow: the train mode and the grid train through one Trainer and store one record."""
import json
import os

import numpy as np
import pytest

from timnet_keras.errors import RecordError, RunError
from timnet_keras.runs.run_config import ModelConfig, TrainingConfig
from timnet_keras.training.plan import CURVE_KEYS
from timnet_keras.training.record import FoldRecord
from timnet_keras.training.trainers import choose_trainer, resolve_trainer

from conftest import REPO


@pytest.fixture(scope="module")
def demo():
    from timnet_keras.features.extract import demo_features

    return demo_features(n_utterances=48)


@pytest.mark.jax_pass
def test_a_grid_unit_and_a_train_mode_fold_give_the_same_record(demo, tmp_path):
    from timnet_keras.config import default_num_blocks
    from timnet_keras.paper.grid import UnitRunner
    from timnet_keras.paper.registry import Unit, read_record, write_record
    from timnet_keras.runs import modes, store

    model = ModelConfig(frames=int(demo.x.shape[1]), num_classes=len(demo.labels), num_blocks=default_num_blocks("DEMO"))
    config = modes.new_run_config(demo, "DEMO", model, TrainingConfig(epoch=2), "kfold", "last", 46, 2)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    modes.run_cross_validation(demo, config, str(run_dir), log=lambda *_: None)
    from_run = store.read_fold_record(str(run_dir), 2)

    unit = Unit("cv", "DEMO", "timnet", 46, 2, fold=2, n_folds=2)
    write_record(str(tmp_path / "registry"), UnitRunner().run(unit, demo))
    from_grid = read_record(str(tmp_path / "registry" / "records" / "cv" / "DEMO" / "timnet" / "seed46-e2" / "fold02.json"))

    assert type(from_run) is type(from_grid) is FoldRecord
    assert from_grid.unit == unit and from_run.unit is None
    np.testing.assert_array_equal(from_run.test_indices, from_grid.test_indices)
    np.testing.assert_array_equal(from_run.y_true, from_grid.y_true)
    np.testing.assert_allclose(from_run.probabilities, from_grid.probabilities, atol=2e-6)  # both stores round to 1e-6
    timing = {"seconds"}
    assert set(from_run.history) == set(from_grid.history) >= set(CURVE_KEYS) | {"loss", "accuracy"}
    for key in set(from_run.history) - timing:
        np.testing.assert_allclose(from_run.history[key], from_grid.history[key], atol=2e-6, err_msg=key)
    for field in ("fold", "selected_epoch", "labels", "training", "model", "backend", "calibration"):
        assert getattr(from_run, field) == getattr(from_grid, field), field


def test_a_typo_in_a_records_field_is_named_not_dropped(tmp_path):
    from timnet_keras.paper.registry import RegistryError, read_record
    from timnet_keras.runs.store import RunStoreError, read_fold_record

    record = FoldRecord(1, np.arange(2), np.array([0, 1]), np.array([[0.8, 0.2], [0.3, 0.7]]), selected_epoch=3)
    data = record.to_json()
    data["selected_epoc"] = data.pop("selected_epoch")
    (tmp_path / "fold_1.json").write_text(json.dumps(data))
    with pytest.raises(RunStoreError, match="unknown field 'selected_epoc'"):
        read_fold_record(str(tmp_path), 1)
    data["selected_epoch"], data["seconds"] = data.pop("selected_epoc"), "12"
    with pytest.raises(RecordError, match="field 'seconds' is \"12\""):
        FoldRecord.from_json(data, "fold_1.json")

    registry = tmp_path / "records" / "cv" / "X" / "timnet" / "seed1-e1"
    registry.mkdir(parents=True)
    unit = {"kind": "cv", "corpus": "X", "variant": "timnet", "seed": 1, "epochs": 1, "fold": 1, "n_folds": 2}
    (registry / "fold01.json").write_text(json.dumps({**record.to_json(), "unit": unit, "histroy": {}}))
    with pytest.raises(RegistryError, match="unknown field 'histroy'"):
        read_record(str(registry / "fold01.json"))


def test_records_written_before_the_one_record_type_still_read():
    older_run_fold = {"fold": 2, "test_indices": [3, 4], "y_true": [1, 0], "probabilities": [[0.1, 0.9], [0.6, 0.4]],
                      "history": {"loss": [1.0]}, "selected_epoch": 1, "seconds": 2.5, "calibration": None}
    assert FoldRecord.from_json(older_run_fold).y_pred.tolist() == [1, 0]
    from timnet_keras.paper.registry import read_record

    committed = os.path.join(REPO, "reproduction", "records", "cv", "EMODB", "timnet", "seed46-e500", "fold01.json")
    if os.path.isfile(committed):
        record = read_record(committed)
        assert record.unit.key == "cv/EMODB/timnet/seed46-e500/fold01" and record.fold == 1 and len(record.labels) == 7


def test_the_batched_trainer_refuses_what_it_cannot_do_instead_of_ignoring_it():
    import keras

    config = ModelConfig(frames=20, num_classes=3, num_blocks=2)
    with pytest.raises(RunError, match="no --no-xla or --run-eagerly|--backend jax"):
        choose_trainer("batched", config, TrainingConfig(epoch=1), 46, jit_compile=False)
    with pytest.raises(RunError, match="unknown trainer"):
        resolve_trainer("fast")
    if keras.backend.backend() != "jax":
        assert resolve_trainer("auto") == "sequential"


def test_ray_refuses_the_batched_trainer_rather_than_dropping_it(tmp_path, capsys):
    from timnet_keras.cli import reproduce_main

    code = reproduce_main(["--table", "1", "--corpora", "DEMO", "--epoch", "1", "--split_fold", "2", "--executor", "ray",
                           "--trainer", "batched", "--registry", str(tmp_path / "r"),
                           "--report", str(tmp_path / "R.md"), "--mfcc_path", str(tmp_path / "MFCC")])
    assert code == 2 and "--trainer batched" in capsys.readouterr().err


def test_the_command_line_module_parses_and_dispatches_in_under_300_lines():
    with open(os.path.join(REPO, "timnet_keras", "cli.py"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) < 300


def test_a_train_mode_record_and_a_grid_record_both_name_their_normalisation():
    from timnet_keras.training.record import with_provenance

    record = FoldRecord(1, np.arange(2), np.array([0, 1]), np.eye(2))
    model = ModelConfig(frames=20, num_classes=2, num_blocks=2)
    assert with_provenance(record, TrainingConfig(), model, "last", "speaker", normalise="utterance").training["normalise"] \
        == "utterance"
    assert "normalise" not in with_provenance(record, TrainingConfig(), model, "last", "kfold").training  # as older records
