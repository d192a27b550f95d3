"""Presets: a finished, honest run packed with its model card and provenance, loaded by name with no network.

A preset folder is a trimmed run folder (run_config.json, the fold weights,
the fold records that carry each fold's calibration) plus `model_card.md`
and `provenance.json`. `TimnetClassifier.from_preset(name)` loads it as
`from_run` loads the run it came from: every fold model an ensemble member.
The card's figures are computed from the run's own fold records, each fold
model on its own test fold; a run that selected epochs on its test folds
(`--select best-test`) is refused, since its figures would overstate.
Presets shipped with the package live in `timnet_keras/presets/<name>/`.
"""
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np

from timnet_keras.errors import TimnetError
from timnet_keras.io import time_stamp, versions, write_json_atomic, write_text_atomic

PRESETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "presets")
PROVENANCE = "provenance.json"
MODEL_CARD = "model_card.md"


class PresetError(TimnetError):
    """A preset that cannot be built or found; the message says what to do."""


def available_presets(presets_dir=PRESETS_DIR):
    """Names of the presets in `presets_dir` (the package's own by default)."""
    if not os.path.isdir(presets_dir):
        return []
    return sorted(name for name in os.listdir(presets_dir) if os.path.isfile(os.path.join(presets_dir, name, PROVENANCE)))


def preset_path(name, presets_dir=PRESETS_DIR):
    """The folder of preset `name`; PresetError naming the ones there are."""
    path = os.path.join(presets_dir, str(name).lower())
    if not os.path.isfile(os.path.join(path, PROVENANCE)):
        names = available_presets(presets_dir)
        shown = ", ".join(names) if names else "none yet (build one with Code/build_preset.py RUN --name NAME)"
        raise PresetError(f"no preset {name!r} in {presets_dir}; presets there: {shown}")
    return path


def split_hash(records):
    """One hash of every fold's test rows, in fold order: two presets with this hash were scored on the same folds."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(f"{record.fold}:".encode() + np.asarray(record.test_indices, np.int64).tobytes())
    return digest.hexdigest()


def fold_figures(records):
    """Per-fold WAR and UAR (percent), their mean and 95 % Student-t interval over folds, and ECE before/after."""
    from timnet_keras.training.calibration import apply_temperature
    from timnet_keras.training.evaluation import confidence_interval, expected_calibration_error, fold_scores

    scores = [fold_scores(np.asarray(r.y_true), np.asarray(r.probabilities)) for r in records]
    figures = {}
    for key in ("war", "uar"):
        values = [s[key] for s in scores]
        interval = confidence_interval(values)
        figures[key] = {"mean": round(float(np.mean(values)), 2), "per_fold": [round(v, 2) for v in values],
                        "interval_95": [round(v, 2) for v in interval] if interval else None}
    y_true = np.concatenate([r.y_true for r in records])
    raw = np.concatenate([r.probabilities for r in records])
    scaled = np.concatenate([apply_temperature(r.probabilities, r.temperature) for r in records])
    figures["ece"] = round(float(expected_calibration_error(y_true, raw)), 4)
    figures["ece_calibrated"] = round(float(expected_calibration_error(y_true, scaled)), 4)
    figures["calibrated"] = any(r.calibration for r in records)
    return figures


def build_preset(run_dir, name, presets_dir=PRESETS_DIR, features=None, overwrite=False, intended_use=""):
    """Packs the finished run `run_dir` as preset `name` under `presets_dir`; returns its folder.

    `features` (the run's FeatureSet), when given, adds the utterance names of every fold to the
    provenance. Built in a temporary folder and renamed; an existing preset is replaced only with
    `overwrite` and only when it is one (it holds provenance.json).
    """
    from timnet_keras.runs import store

    run_config, files = store.read_saved_run(run_dir)
    if not store.is_run_dir(run_dir):
        raise PresetError(f"{run_dir} is not a run folder of ours: a preset needs the run's records and configuration")
    if run_config.selection == "best-test":
        raise PresetError(f"{run_dir} selected each fold's epoch on its test fold (--select best-test): its figures are "
                          f"test-selected and would overstate a preset; build it from a run with --select last or best-val")
    n_folds = len(files)
    if store.finished_folds(run_dir, n_folds) != list(range(1, n_folds + 1)):
        raise PresetError(f"{run_dir} has unfinished folds: finish it with --resume {run_dir} first")
    if not str(name).replace("_", "").replace("-", "").isalnum():
        raise PresetError(f"preset name {name!r}: use letters, digits, '-' and '_'")
    records = [store.read_fold_record(run_dir, fold) for fold in range(1, n_folds + 1)]
    target = os.path.join(presets_dir, str(name).lower())
    if os.path.lexists(target):
        if not overwrite:
            raise PresetError(f"{target} exists; choose another --name or add --overwrite")
        if not os.path.isfile(os.path.join(target, PROVENANCE)):
            raise PresetError(f"--overwrite will not replace {target}: it is not a preset (no {PROVENANCE})")
    os.makedirs(presets_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}-", dir=presets_dir)
    try:
        for path in [os.path.join(run_dir, store.RUN_CONFIG), *files,
                     *(store.fold_record_path(run_dir, fold) for fold in range(1, n_folds + 1))]:
            shutil.copy2(path, staging)
        figures = fold_figures(records)
        provenance = {
            "preset": str(name).lower(), "source_run": os.path.basename(os.path.normpath(run_dir)),
            "corpus": run_config.data, "labels": list(run_config.labels), "protocol": run_config.protocol,
            "folds": n_folds, "seed": run_config.seed, "selection": run_config.selection,
            "normalise": run_config.normalise, "calibrate": run_config.calibrate, "epochs": run_config.training.epoch,
            "split_hash": split_hash(records), "command": run_config.command, "trained_with": run_config.versions,
            "packed": time_stamp(), "packed_with": versions(), "figures": figures,
        }
        if features is not None and len(getattr(features, "paths", ())) == run_config.n_samples:
            provenance["test_utterances"] = {str(r.fold): [os.path.basename(str(features.paths[i])) for i in r.test_indices]
                                             for r in records}
        write_json_atomic(os.path.join(staging, PROVENANCE), provenance)
        write_text_atomic(os.path.join(staging, MODEL_CARD), model_card(provenance, intended_use))
        if os.path.lexists(target):
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def model_card(provenance, intended_use=""):
    """The card a user reads before trusting the preset: data, protocol, figures with intervals, calibration, limits."""
    f = provenance["figures"]
    interval = lambda key: (f"{f[key]['interval_95'][0]:.2f}–{f[key]['interval_95'][1]:.2f}" if f[key]["interval_95"]
                            else "one fold: no interval")
    protocol = {"kfold": "10-fold cross-validation as in the paper (a speaker's other recordings are in training)",
                "stratified": "stratified k-fold (a speaker's other recordings are in training)",
                "speaker": "leave one speaker out: each figure is of a speaker the model never heard"}
    lines = [
        f"# Preset `{provenance['preset']}`: TIM-Net on {provenance['corpus']}", "",
        "## Data", f"- Corpus: {provenance['corpus']}; emotions: {', '.join(provenance['labels'])}.",
        f"- Terms of use: those of {provenance['corpus']}'s distributor, which bind any use of a model trained on it; "
        "check them before use beyond research.", "",
        "## How it was trained and scored",
        f"- {provenance['folds']} fold models, averaged: each trained {provenance['epochs']} epochs on its training part; "
        f"seed {provenance['seed']}; selection `{provenance['selection']}`; features `{provenance['normalise']}`.",
        f"- Protocol: {protocol.get(provenance['protocol'], provenance['protocol'])}.",
        f"- Each fold model scored on its own test fold (split hash `{provenance['split_hash'][:16]}…`).",
        f"- Command: `{provenance['command']}`.", "",
        "## Figures (each fold model on its own test fold)",
        f"- WAR {f['war']['mean']:.2f} % (95 % interval over folds {interval('war')}); "
        f"UAR {f['uar']['mean']:.2f} % ({interval('uar')}).",
        f"- Calibration (ECE, 15 bins): {f['ece']:.3f} raw"
        + (f", {f['ece_calibrated']:.3f} after each fold's temperature." if f["calibrated"] else "; the run fitted no temperature."),
        "", "## Intended use and limits",
        intended_use or "- Research on acted emotional speech in the corpus' language and recording conditions.",
        "- Acted studio speech: expect lower accuracy on spontaneous speech, other languages, microphones and speakers; "
        "`abstain` in the predictions says when a recording is far from the training data.",
        "- The ensemble's probabilities are the mean of the fold models'" + (", each temperature-scaled." if f["calibrated"] else "."),
    ]
    return "\n".join(lines) + "\n"


def read_provenance(name, presets_dir=PRESETS_DIR):
    with open(os.path.join(preset_path(name, presets_dir), PROVENANCE), encoding="utf-8") as handle:
        return json.load(handle)
