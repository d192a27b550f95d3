"""Every model variant (`--model`, the paper's Table 3) trains, saves its folds and loads them back.

The reproduction grid scores its units without saving weights, so only the
train mode shows whether a variant's folds can be saved and read back: no_df
once could not be saved at all (its ScaleAverage had no name in the HDF5 layout).
"""
import glob
import json
import os

import numpy as np
import pytest

from conftest import CHEAP_GRAPH
from timnet_keras import cli
from timnet_keras.model.backbone import VARIANTS
from timnet_keras.features.cache import load_feature_cache, save_feature_cache
from timnet_keras.model.classifier import TimnetClassifier
from timnet_keras.training.evaluation import fold_scores
from timnet_keras.features.extract import demo_features
from timnet_keras.runs.store import read_fold_record

pytestmark = [pytest.mark.both_backends, pytest.mark.slow]

TINY = ["--epoch", "2", "--dilation_size", "2", "--split_fold", "2", "--batch_size", "8", *CHEAP_GRAPH]


@pytest.fixture(scope="module")
def mfcc_path(tmp_path_factory):
    """A folder with a DEMO cache of 24 short utterances: enough for two stratified folds of four classes."""
    folder = tmp_path_factory.mktemp("mfcc")
    save_feature_cache(str(folder / "DEMO.npz"), demo_features(mean_signal_length=8192, n_utterances=24))
    return str(folder)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_trained_variant_reloads_its_folds_with_the_predictions_it_recorded(variant, mfcc_path, tmp_path):
    flags = ["--mfcc_path", mfcc_path, "--model_path", str(tmp_path / "Models"), "--result_path", str(tmp_path / "Results")]
    assert cli.main(["--mode", "train", "--data", "DEMO", "--model", variant, *TINY, *flags]) == 0
    (run,) = glob.glob(str(tmp_path / "Models" / "DEMO_*"))
    assert cli.main(["--mode", "test", "--data", "DEMO", "--test_path", run, *flags]) == 0

    (tested,) = glob.glob(str(tmp_path / "Results" / "*_test_*" / "summary.json"))
    with open(tested) as f:
        summary = json.load(f)
    assert summary["model"]["variant"] == variant
    assert [scores["fold"] for scores in summary["folds"]] == [1, 2]
    features = load_feature_cache(os.path.join(mfcc_path, "DEMO.npz"))
    for scores in summary["folds"]:
        record = read_fold_record(run, scores["fold"])
        recorded = fold_scores(record.y_true, record.probabilities)
        assert (scores["war"], scores["uar"]) == (recorded["war"], recorded["uar"])
        # The records keep 6 decimals: compare probabilities, not the loss, which a rounded p near 0 moves.
        classifier = TimnetClassifier.from_run(run, fold=scores["fold"])
        assert classifier.backbone.variant == variant
        probabilities = np.asarray(classifier.predict(features.x[record.test_indices], verbose=0))
        np.testing.assert_allclose(probabilities, record.probabilities, rtol=0, atol=1e-5)
