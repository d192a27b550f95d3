"""The paper's other experiments: cross-corpus, the Table 1 summary."""
import json
import glob

import numpy as np
import pytest

from timnet_keras import cli
from timnet_keras.cache import FeatureSet, save_feature_cache
from timnet_keras.extract import demo_features
from timnet_keras.runs import fit_frames


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
                     "--batch_size", "8", "--no-xla", "--runs", "2", "--mfcc_path", str(mfcc), "--result_path", str(tmp_path / "R")]) == 0
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
