"""Cross-corpus runs (Table 2): shared emotions only, one common length."""
import json
import glob

import numpy as np
import pytest

from conftest import CHEAP_GRAPH
from timnet_keras import cli

# Backend-agnostic flows: make test runs them once, in its JAX pass, where their tiny trainings are cheapest (conftest).
pytestmark = pytest.mark.jax_pass
from timnet_keras.features.cache import FeatureSet, save_feature_cache
from timnet_keras.features.extract import demo_features
from timnet_keras.paper.cross_corpus import cross_corpus_pairs, fit_frames


def corpus_with_labels(labels, seed, length):
    """A generated corpus renamed to other emotion labels (its classes stay separable)."""
    base = demo_features(mean_signal_length=length, n_utterances=24, seed=seed)
    return FeatureSet(base.x, base.y, tuple(labels), base.paths, base.speakers, base.settings)


@pytest.mark.slow
def test_tiny_cross_corpus_run_uses_only_shared_emotions(tmp_path, capsys):
    mfcc = tmp_path / "MFCC"
    save_feature_cache(str(mfcc / "CASIA.npz"), corpus_with_labels(("angry", "happy", "neutral", "sad"), 1, 8192))
    save_feature_cache(str(mfcc / "EMODB.npz"), corpus_with_labels(("angry", "happy", "neutral", "surprise"), 2, 6144))
    assert cli.main(["--mode", "cross", "--source", "CASIA", "--target", "EMODB", "--epoch", "2", "--dilation_size", "2",
                     "--batch_size", "8", *CHEAP_GRAPH, "--runs", "2", "--mfcc_path", str(mfcc), "--result_path", str(tmp_path / "R")]) == 0
    (result,) = glob.glob(str(tmp_path / "R" / "cross_*" / "results.json"))
    pair = json.load(open(result))["pairs"][0]
    assert pair["labels"] == ["angry", "happy", "neutral"]
    assert pair["n_source"] == 18 and pair["n_target"] == 18 and len(pair["runs"]) == 2
    assert pair["mean_signal_length"] == 8192
    assert "| CASIA | EMODB |" in open(result.replace("results.json", "table.md")).read()


def test_common_length_pads_with_the_mfcc_of_silence_and_crops_centrally():
    x = np.arange(2 * 6 * 39, dtype=np.float32).reshape(2, 6, 39)
    np.testing.assert_array_equal(fit_frames(x, 4), x[:, 1:5])
    padded = fit_frames(x, 9)
    np.testing.assert_array_equal(padded[:, 1:7], x)
    np.testing.assert_array_equal(padded[0, 0], padded[1, 8])


def test_all_means_the_twenty_ordered_pairs_of_the_papers_five_corpora():
    pairs = cross_corpus_pairs("all", "")
    assert len(pairs) == 20 == len(set(pairs)) and all(s != t for s, t in pairs)
    assert cross_corpus_pairs("ravdess", "emodb") == [("RAVDE", "EMODB")]
