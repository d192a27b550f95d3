"""RunConfig: a typed record that survives JSON, and reads the files of earlier versions."""
import json

import pytest

from timnet_keras.runs.run_config import SCHEMA_VERSION, ModelConfig, RunConfig, TrainingConfig


def test_json_round_trip_gives_the_same_record():
    config = RunConfig(data="EMODB", model=ModelConfig(frames=188, num_classes=7, variant="no_bd"),
                       training=TrainingConfig(epoch=3), selection="best-val", labels=("a", "b"), n_folds=10)
    again = RunConfig.from_json(json.loads(json.dumps(config.to_json())))
    assert again == config and again.schema_version == SCHEMA_VERSION


def test_a_version_0_run_config_is_read_with_its_old_keys():
    old = {"data": "EMODB", "model": {"input_shape": [188, 39], "num_classes": 7, "filters": 39, "kernel_size": 2,
                                      "dilations": 10, "stacks": 1, "dropout_rate": 0.1, "activation": "relu", "variant": "timnet"},
           "training": {"lr": 0.001, "epoch": 500, "batch_size": 64}, "protocol": "kfold", "selection": "last",
           "test_selected": False, "seed": 46, "split_fold": 10, "n_folds": 10, "n_samples": 535, "labels": ["a"]}
    config = RunConfig.from_json(old)
    assert config.model == ModelConfig(frames=188, n_mfcc=39, num_classes=7, num_blocks=10)
    assert config.schema_version == 0 and config.training.epoch == 500


@pytest.mark.parametrize("selection,tagged", [("last", False), ("best-val", False), ("best-test", True)])
def test_only_test_fold_selection_is_labelled_test_selected(selection, tagged):
    config = RunConfig(data="X", model=ModelConfig(frames=10, num_classes=2), selection=selection)
    assert config.test_selected is tagged and ("TEST-SELECTED" in config.selection_note) is tagged
