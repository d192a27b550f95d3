"""The run folder layout: unique folders, finished folds, complete weight folders, the authors' folders."""
import os

import numpy as np
import pytest

from timnet_keras.runs import store as run_store
from timnet_keras.runs.run_config import ModelConfig, RunConfig
from timnet_keras.training.record import FoldRecord
from timnet_keras.runs.store import RunStoreError


def test_two_runs_started_in_the_same_second_get_different_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(run_store, "time_stamp", lambda: "2026-01-01_00-00-00")
    a = run_store.create_run_dir(str(tmp_path), "DEMO", 46)
    b = run_store.create_run_dir(str(tmp_path), "DEMO", 46)
    assert a != b and os.path.isdir(a) and os.path.isdir(b)


def test_a_fold_is_finished_only_with_both_its_files_intact(tmp_path):
    run = str(tmp_path)
    record = FoldRecord(1, np.arange(3), np.array([0, 1, 0]), np.full((3, 2), 0.5, np.float32), {"loss": [1.0]}, 1, 2.0)
    run_store.write_fold_record(run, record)
    assert run_store.finished_folds(run, 2) == []
    open(run_store.fold_weights_path(run, 2, 1), "wb").close()  # what a killed process may leave
    assert run_store.finished_folds(run, 2) == []
    from timnet_keras.model.checkpoints import save_legacy_weights
    from timnet_keras.model.classifier import build_timnet

    save_legacy_weights(build_timnet((10, 39), 2, dilations=1), run_store.fold_weights_path(run, 2, 1))
    assert run_store.finished_folds(run, 2) == [1]
    again = run_store.read_fold_record(run, 1)
    np.testing.assert_array_equal(again.probabilities, record.probabilities)
    assert again.history == {"loss": [1.0]} and again.seconds == 2.0


def test_a_run_config_comes_back_typed(tmp_path):
    config = RunConfig(data="DEMO", model=ModelConfig(frames=87, num_classes=4), n_folds=3)
    run_store.write_run_config(str(tmp_path), config)
    assert run_store.read_run_config(str(tmp_path)) == config


@pytest.mark.parametrize("files,message", [
    ([], "holds no fold weights"),
    (["10-fold_weights_best_1.hdf5", "5-fold_weights_best_1.hdf5"], "mixes weights of [5, 10]-fold runs"),
    (["3-fold_weights_best_1.hdf5", "3-fold_weights_best_3.hdf5"], "fold count does not match"),
])
def test_incomplete_or_mixed_weight_folders_are_refused(tmp_path, files, message):
    for name in files:
        open(tmp_path / name, "wb").close()
    with pytest.raises(RunStoreError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run_store.fold_weight_files(str(tmp_path))


def test_an_authors_folder_is_described_by_the_corpus_table(tmp_path):
    for k in (1, 2):
        open(tmp_path / f"2-fold_weights_best_{k}.hdf5", "wb").close()
    with pytest.raises(RunStoreError, match="name the corpus"):
        run_store.read_saved_run(str(tmp_path))
    config = run_store.authors_run_config("emovo", 10)
    assert (config.data, config.seed, config.model.frames, config.model.num_classes) == ("EMOVO", 1, 188, 7)
    assert config.test_selected and config.features["mean_signal_length"] == 96000


def test_newest_run_without_any_says_to_train_first(tmp_path):
    with pytest.raises(RunStoreError, match="train one first"):
        run_store.newest_run(str(tmp_path), "DEMO")
