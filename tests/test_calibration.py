"""Calibration (#36): fitted on held-out training rows only, stored with the fold, applied by from_run; abstain on DEMO."""
import csv
import glob
import json
import os

import numpy as np
import pytest
import soundfile

from conftest import CHEAP_EAGER, CHEAP_GRAPH
from timnet_keras import cli
from timnet_keras.features.cache import save_feature_cache
from timnet_keras.training.calibration import apply_temperature, fit_temperature
from timnet_keras.features.extract import demo_features
from timnet_keras.training.folds import make_folds
from timnet_keras.runs.run_config import ModelConfig, TrainingConfig
from timnet_keras.training.plan import calibration_split, fold_job
from timnet_keras.training.sequential import SequentialTrainer

# Backend-agnostic flows: make test runs them once, in its JAX pass, where their tiny trainings are cheapest (conftest).
pytestmark = pytest.mark.jax_pass


def test_the_fitted_temperature_is_the_nll_minimum():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4) * 0.5, 200)
    y = np.where(rng.random(200) < 0.6, p.argmax(1), rng.integers(0, 4, 200))
    t = fit_temperature(p, y)
    nll = lambda temperature: -np.mean(np.log(apply_temperature(p, temperature)[np.arange(200), y]))
    assert nll(t) <= min(nll(t * 0.9), nll(t * 1.1), nll(1.0)) + 1e-9


@pytest.mark.parametrize("selection", ["last", "best-val"])
def test_calibration_rows_come_from_the_training_part_and_never_the_test_fold(selection):
    features = demo_features(mean_signal_length=8192, n_utterances=40)
    for train, test in make_folds(features, "kfold", 4, 46):
        fit, held = calibration_split(features, train, 46, selection, True)
        assert len(held) and set(held) <= set(train) and not set(held) & set(test)
        assert not set(fit) & set(held) if selection == "last" else set(fit) == set(train)


@pytest.mark.slow
def test_the_temperature_does_not_change_when_only_the_test_rows_change():
    features = demo_features(mean_signal_length=8192, n_utterances=32)
    train, test = make_folds(features, "kfold", 4, 46)[0]
    model = ModelConfig(frames=features.x.shape[1], num_classes=len(features.labels), num_blocks=2)
    trainer = SequentialTrainer(model, TrainingConfig(epoch=3, batch_size=8), seed=46, run_eagerly=CHEAP_EAGER)
    first, = trainer.train(features, [fold_job(features, train, test, 1, 46, calibrate=True)])
    features.x[test] = np.random.default_rng(1).normal(size=features.x[test].shape) * 50  # other test audio,
    features.y[test] = np.roll(features.y[test], 1, axis=1)  # other test labels
    second, = trainer.train(features, [fold_job(features, train, test, 1, 46, calibrate=True)])
    assert first.calibration["indices"] == second.calibration["indices"]
    assert not set(first.calibration["indices"]) & set(test.tolist())
    assert second.temperature == pytest.approx(first.temperature, rel=1e-4)
    assert second.calibration["min_confidence"] == pytest.approx(first.calibration["min_confidence"], rel=1e-4)
    assert not np.allclose(first.probabilities, second.probabilities)  # the test rows did change


TINY = ["--epoch", "3", "--dilation_size", "2", "--split_fold", "3", "--batch_size", "8", *CHEAP_GRAPH]


@pytest.mark.slow
def test_a_calibrated_demo_run_stores_applies_and_reports_its_temperatures(tmp_path, capsys):
    save_feature_cache(str(tmp_path / "MFCC" / "DEMO.npz"), demo_features(mean_signal_length=8192, n_utterances=30))
    flags = ["--mfcc_path", str(tmp_path / "MFCC"), "--model_path", str(tmp_path / "Models"),
             "--result_path", str(tmp_path / "Results")]
    assert cli.main(["--mode", "train", "--data", "DEMO", "--calibrate", *TINY, *flags]) == 0
    (run,) = glob.glob(str(tmp_path / "Models" / "DEMO_*"))
    records = [json.load(open(os.path.join(run, f"fold_{k}.json"))) for k in (1, 2, 3)]
    assert all(r["calibration"]["temperature"] > 0 and not set(r["calibration"]["indices"]) & set(r["test_indices"])
               for r in records)
    (result,) = glob.glob(str(tmp_path / "Results" / "DEMO_*"))
    summary = json.load(open(os.path.join(result, "summary.json")))
    assert summary["calibrated"] and [f["temperature"] for f in summary["folds"]] == \
        [pytest.approx(r["calibration"]["temperature"]) for r in records]
    assert os.path.isfile(os.path.join(result, "reliability.png"))

    from timnet_keras.model.classifier import TimnetClassifier

    classifier = TimnetClassifier.from_run(run)
    assert classifier.temperatures == tuple(r["calibration"]["temperature"] for r in records)
    assert set(classifier.abstain_thresholds) == {"min_confidence", "max_entropy"}

    silent = str(tmp_path / "zeros.wav")
    soundfile.write(silent, np.zeros(16000, np.float32), 16000)
    out = str(tmp_path / "p.csv")
    capsys.readouterr()
    assert cli.main(["--mode", "predict", "--test_path", run, "--wav", silent, "--output", out, *flags]) == 0
    with open(out, newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["abstain"] == "silence" and row["label"] == "(silence)" and "angry" not in capsys.readouterr().out

    timeline = str(tmp_path / "t.json")
    assert cli.main(["--mode", "predict", "--test_path", run, "--wav", silent, "--window", "0.37", "--hop", "0.37",
                     "--output", timeline, *flags]) == 0
    windows = json.load(open(timeline))
    assert windows and all(w["abstain"] == "silence" and w["label"] == "(silence)" and 0 < w["confidence"] <= 1
                           for w in windows)
