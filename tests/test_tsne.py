"""Fig. 3 (issue #34): one t-SNE panel per fold model, its points in tsne.csv, and how well emotions cluster.

Each fold's model has its own representation space, so each panel embeds one fold's test
utterances with that fold's model; the 5-nearest-neighbour emotion agreement says whether
a panel shows emotions (Emo-DB with the authors' weights: 0.77) or noise.
"""
import glob
import json
import os

import numpy as np
import pytest

from conftest import EMODB_46, needs_emodb, needs_emodb_46
from timnet_keras import cli
from timnet_keras.runs import modes as runs
from timnet_keras.features.cache import load_features, save_feature_cache
from timnet_keras.features.extract import demo_features
from timnet_keras.training.folds import make_folds
from timnet_keras.runs.plots import TSNE_COLUMNS, neighbour_agreement, read_tsne_csv, write_tsne_csv

TINY = ["--epoch", "2", "--dilation_size", "2", "--split_fold", "4", "--batch_size", "8", "--no-xla"]


# --- the agreement on hand-made points ---------------------------------------------------------

def _rows(fold, points):
    return [{"fold": fold, "utterance": i, "true": label, "predicted": label, "x": float(x), "y": float(y)}
            for i, (label, x, y) in enumerate(points)]


def test_agreement_counts_same_label_neighbours_within_each_panel():
    # fold 1: two far-apart clusters of six, one per label: every point's 5 nearest share its label
    clusters = [("a", i * 0.1, 0.0) for i in range(6)] + [("b", 100 + i * 0.1, 0.0) for i in range(6)]
    # fold 2: the same places, labels alternating a b a b a b in each cluster: 2 of each point's 5 neighbours agree
    mixed = [("ab"[i % 2], x, y) for i, (_, x, y) in enumerate(clusters)]
    # fold 3 lies on top of fold 1 with the other labels: panels never mix, or fold 1 would drop
    swapped = [("b" if label == "a" else "a", x, y) for label, x, y in clusters]
    agreement = neighbour_agreement(_rows(1, clusters) + _rows(2, mixed) + _rows(3, swapped))
    assert agreement[1] == 1.0 and agreement[3] == 1.0
    assert agreement[2] == pytest.approx(2 / 5)


def test_agreement_of_small_panels_and_k():
    line = [("a", 0, 0), ("a", 1, 0), ("b", 2.5, 0), ("b", 30, 0)]
    # k=1: a->a, a->a, b->a (its nearest is the a at 1), b->b (at 30 the nearest is the b at 2.5)
    assert neighbour_agreement(_rows(1, line), k=1) == {1: pytest.approx(3 / 4)}
    # four points and k=5: each point's 3 others; a: 1/3, a: 1/3, b: 1/3, b: 1/3
    assert neighbour_agreement(_rows(1, line)) == {1: pytest.approx(1 / 3)}
    assert neighbour_agreement(_rows(1, line[:1])) == {}  # one point: no neighbours, no panel score


def test_tsne_csv_round_trip_is_exact(tmp_path):
    rows = _rows(3, [("angry", 0.1, -2.5e-7), ("sad", 1 / 3, 12345.678)])
    rows[1]["predicted"] = "angry"
    path = str(tmp_path / "tsne.csv")
    write_tsne_csv(path, rows)
    assert open(path).readline().strip() == ",".join(TSNE_COLUMNS)
    assert read_tsne_csv(path) == rows
    assert os.listdir(tmp_path) == ["tsne.csv"]


# --- the command line on DEMO -----------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A DEMO cache of 24 utterances and one finished 4-fold run (2 epochs)."""
    root = tmp_path_factory.mktemp("tsne")
    save_feature_cache(str(root / "MFCC" / "DEMO.npz"), demo_features(mean_signal_length=8192, n_utterances=24))
    flags = ["--mfcc_path", str(root / "MFCC"), "--model_path", str(root / "Models"), "--result_path", str(root / "Results")]
    assert cli.main(["--mode", "train", "--data", "DEMO", *TINY, *flags]) == 0
    (run,) = glob.glob(str(root / "Models" / "DEMO_*"))
    return root, run, flags


def _tested(root, argv):
    before = set(glob.glob(str(root / "Results" / "*_test_*")))
    assert cli.main(argv) == 0
    (new,) = set(glob.glob(str(root / "Results" / "*_test_*"))) - before
    return new


@pytest.mark.slow
def test_tsne_writes_one_panel_per_fold_and_its_points(trained, monkeypatch):
    root, run, flags = trained
    monkeypatch.setattr("timnet_keras.runs.modes.time_stamp", lambda: "all")  # two tests in one second: two folders
    tested = _tested(root, ["--mode", "test", "--data", "DEMO", "--test_path", run, "--tsne", *flags])
    assert {"tsne.png", "tsne.csv"} <= set(os.listdir(tested))
    assert not glob.glob(os.path.join(tested, "*.tmp-*"))
    assert open(os.path.join(tested, "tsne.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert open(os.path.join(tested, "tsne.csv")).readline().strip() == "fold,utterance,true,predicted,x,y"

    rows = read_tsne_csv(os.path.join(tested, "tsne.csv"))
    features = load_features(str(root / "MFCC"), "DEMO")
    folds = make_folds(features, "kfold", 4, 46)
    assert len(rows) == len(features.x) == 24  # one row per test utterance of every fold
    for fold, (_, test_idx) in enumerate(folds, start=1):  # each fold's own test utterances, in the cache's indices
        assert [r["utterance"] for r in rows if r["fold"] == fold] == [int(i) for i in test_idx]
    assert all(r["true"] == features.labels[features.classes[r["utterance"]]] for r in rows)
    assert {r["predicted"] for r in rows} <= set(features.labels)
    summary = json.load(open(os.path.join(tested, "summary.json")))
    for fold in summary["folds"]:  # the predicted labels are the scored ones
        panel = [r for r in rows if r["fold"] == fold["fold"]]
        assert 100 * np.mean([r["true"] == r["predicted"] for r in panel]) == pytest.approx(fold["war"])
    assert all(np.isfinite([r["x"], r["y"]]).all() for r in rows)

    # --fold 2: fold 2's panel alone, the same points (each panel is embedded on its own, seed fixed)
    monkeypatch.setattr("timnet_keras.runs.modes.time_stamp", lambda: "fold2")
    alone = _tested(root, ["--mode", "test", "--data", "DEMO", "--test_path", run, "--tsne", "--fold", "2", *flags])
    fold_2 = read_tsne_csv(os.path.join(alone, "tsne.csv"))
    assert {r["fold"] for r in fold_2} == {2}
    assert fold_2 == [r for r in rows if r["fold"] == 2]
    assert "tsne.png" in os.listdir(alone)


@pytest.mark.slow
@pytest.mark.parametrize("argv, words", [
    (["--fold", "2"], ["--fold 2", "--tsne"]),
    (["--fold", "5", "--tsne"], ["--fold 5", "folds 1 to 4"]),
])
def test_fold_in_test_mode_refuses_what_it_cannot_draw(trained, capsys, argv, words):
    root, run, flags = trained
    before = sorted(os.listdir(root / "Results"))
    assert cli.main(["--mode", "test", "--data", "DEMO", "--test_path", run, *argv, *flags]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error:") and all(w in error for w in words)
    assert sorted(os.listdir(root / "Results")) == before


# --- Emo-DB with the authors' weights ---------------------------------------------------------

@needs_emodb
@needs_emodb_46
@pytest.mark.shared
def test_authors_emodb_panels_cluster_by_emotion(emodb_features, tmp_path):
    """About a minute on two busy cores (the ten folds' predictions; each panel's t-SNE takes half a second)."""
    runs.test(emodb_features, EMODB_46, str(tmp_path), data_name="EMODB", tsne=True, log=lambda *_: None)
    (csv_path,) = glob.glob(str(tmp_path / "*" / "tsne.csv"))
    rows = read_tsne_csv(csv_path)
    assert len(rows) == 535 and sorted(r["utterance"] for r in rows) == list(range(535))
    agreement = neighbour_agreement(rows)
    assert sorted(agreement) == list(range(1, 11))
    assert np.mean(list(agreement.values())) >= 0.70  # 0.771 with t-SNE seed 0; one embedding of all ten folds: noise
