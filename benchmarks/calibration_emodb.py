"""Calibration of the authors' EMODB_46 weights: ECE / NLL / Brier before and after temperature scaling.

Each fold model scores its own test fold (the authors' KFold, seed 46). Their
runs held nothing out, so each fold's temperature is fitted on a stratified
tenth of that fold's TRAINING part (`plan.validation_split`, seed 46):
rows the model trained on, the only ones it has that are not its test fold.
So the temperature is fitted on data the model has seen; expect it to be
sharper than a held-out fit would give.

    TIMNET_SHARED=/work/shared python benchmarks/calibration_emodb.py [--mfcc_path MFCC] [--json out.json]

The Emo-DB cache is read from --mfcc_path (MFCC/EMODB.npz) or extracted from
$TIMNET_SHARED/corpora/EMODB into it first.

Measured (2-core CPU, TensorFlow 2.21, 535 pooled test predictions, WAR 93.83 %):
    ECE (15 bins)  0.380 -> 0.058    median top probability 0.544 -> 1.000
    NLL            0.698 -> 0.632    Brier 0.303 -> 0.114
Fitted T 0.05 to 0.084: the folds' training rows are (nearly) all right, so their NLL falls
all the way to T -> 0 and folds 8-10 stop at the 0.05 bound; with --min_temperature 0.01
the ECE is 0.060 and the NLL 0.698 (no better than before). The weights are underconfident
(label smoothing, test-selected epochs) and any sharpening helps the ECE, but a temperature
fitted on rows the model trained on is not a calibration to trust: new runs hold rows out
(--calibrate).
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from benchmarks.common import EMODB_46, EMODB_WAV  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mfcc_path", default="MFCC")
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    p.add_argument("--min_temperature", type=float, default=None,
                   help="lower bound of the temperature search (default: calibration.TEMPERATURE_BOUNDS, 0.05)")
    args = p.parse_args(argv)

    from timnet_keras.features.cache import cache_path, load_feature_cache, save_feature_cache
    from timnet_keras.training.calibration import TEMPERATURE_BOUNDS, apply_temperature, fit_calibration
    from timnet_keras.model.checkpoints import load_legacy_weights
    from timnet_keras.model.classifier import TimnetClassifier
    from timnet_keras.training.evaluation import calibration_scores, war
    from timnet_keras.training.folds import make_folds
    from timnet_keras.runs.store import read_saved_run
    from timnet_keras.training.plan import validation_split

    path = cache_path(args.mfcc_path, "EMODB")
    if os.path.isfile(path):
        features = load_feature_cache(path)
    else:
        from timnet_keras.features.extract import corpus_features

        features = corpus_features("EMODB", EMODB_WAV)
        os.makedirs(args.mfcc_path, exist_ok=True)
        save_feature_cache(path, features)
    run_config, files = read_saved_run(EMODB_46, corpus="EMODB")
    folds = make_folds(features, run_config.protocol, run_config.split_fold, run_config.seed)
    classifier = TimnetClassifier.from_model_config(run_config.model)
    y_all, raw_all, scaled_all, rows = [], [], [], []
    for k, ((train, test), weights) in enumerate(zip(folds, files), start=1):
        load_legacy_weights(classifier, weights)
        _, held = validation_split(features.classes[train], run_config.seed)
        cal_rows = train[held]
        assert not set(cal_rows) & set(test)
        cal = fit_calibration(classifier.predict(features.x[cal_rows], batch_size=64, verbose=0),
                              features.classes[cal_rows], cal_rows,
                              (args.min_temperature or TEMPERATURE_BOUNDS[0], TEMPERATURE_BOUNDS[1]))
        raw = np.asarray(classifier.predict(features.x[test], batch_size=64, verbose=0), np.float64)
        scaled = apply_temperature(raw, cal["temperature"])
        y = features.classes[test]
        before, after = calibration_scores(y, raw), calibration_scores(y, scaled)
        rows.append({"fold": k, "war": war(y, raw.argmax(1)), "temperature": cal["temperature"], "n_calibration": cal["n"],
                     "median_top_probability": float(np.median(raw.max(1))), **before,
                     **{f"{key}_calibrated": v for key, v in after.items()}})
        print(f"fold {k:2d}: WAR {rows[-1]['war']:6.2f}  T {cal['temperature']:.3f}  ECE {before['ece']:.3f} -> "
              f"{after['ece']:.3f}  NLL {before['nll']:.3f} -> {after['nll']:.3f}  Brier {before['brier']:.3f} -> "
              f"{after['brier']:.3f}", flush=True)
        y_all.append(y), raw_all.append(raw), scaled_all.append(scaled)
    y, raw, scaled = np.concatenate(y_all), np.concatenate(raw_all), np.concatenate(scaled_all)
    pooled = {"war": war(y, raw.argmax(1)), "median_top_probability": float(np.median(raw.max(1))),
              "median_top_probability_calibrated": float(np.median(scaled.max(1))), **calibration_scores(y, raw),
              **{f"{key}_calibrated": v for key, v in calibration_scores(y, scaled).items()}}
    print(f"pooled ({len(y)} test predictions): WAR {pooled['war']:.2f} %, median top probability "
          f"{pooled['median_top_probability']:.3f} -> {pooled['median_top_probability_calibrated']:.3f}")
    for key in ("ece", "nll", "brier"):
        print(f"  {key.upper():5s} before {pooled[key]:.4f}  after {pooled[key + '_calibrated']:.4f}  "
              f"(mean of folds {np.mean([r[key] for r in rows]):.4f} -> {np.mean([r[key + '_calibrated'] for r in rows]):.4f})")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"folds": rows, "pooled": pooled}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
