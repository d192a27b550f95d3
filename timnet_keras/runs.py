"""Whole jobs over saved runs: train, test saved fold weights, predict, cross-corpus, summary.

`Code/main.py` is a thin command line over these functions.
"""
import datetime
import glob
import json
import os
import re
import sys
import time

import numpy as np

from .cache import cache_path, load_feature_cache
from .checkpoints import load_authors_weights, read_checkpoint_config
from .config import CROSS_CORPUS_LABELS, CROSS_CORPUS_NAMES, canonical_name
from .evaluation import classification_report_csv, console_table, summarize_folds, write_text_atomic
from .features import BadAudioError, file_features, frames_for, mfcc_matrix
from .model import backbone_of, build_timnet
from .training import (
    RUN_CONFIG,
    FoldTrainer,
    RunError,
    load_fold_record,
    make_folds,
    new_run_dir,
    run_cross_validation,
    versions,
    write_json_atomic,
)

_FOLD_FILE = re.compile(r"^(\d+)-fold_weights_best_(\d+)\.hdf5$")
SELECTION_NOTES = {
    "last": "last-epoch weights",
    "best-val": "epoch selected on a validation split of each training part",
    "best-test": "TEST-SELECTED: each fold's epoch chosen on its own test fold (optimistic)",
}


def stamp():
    return datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def load_features(mfcc_dir, data_name, allow_pickle=False, labels=None):
    path = cache_path(mfcc_dir, data_name)
    if not any(os.path.isfile(os.path.splitext(path)[0] + ext) for ext in (".npz", ".npy")):
        wav = "" if data_name == "DEMO" else " --wav_dir PATH"
        raise RunError(f"no features for {data_name} at {path}; run: python Code/extract_feature.py --data_name {data_name}{wav} "
                       f"(or pass --wav_dir to main.py)")
    return load_feature_cache(path, labels=labels, allow_pickle=allow_pickle)


# --- results -----------------------------------------------------------------------------

def write_results(result_dir, fold_records, labels, header, histories=(), log=print):
    """summary.json, per-fold classification report CSV, confusion matrix and curves PNGs."""
    from .plots import plot_confusion_matrix, plot_training_curves

    os.makedirs(result_dir, exist_ok=True)
    summary = dict(header)
    summary.update(summarize_folds(fold_records, labels))
    write_json_atomic(os.path.join(result_dir, "summary.json"), summary)
    write_text_atomic(os.path.join(result_dir, "classification_report.csv"), classification_report_csv(fold_records, labels))
    tag = " [TEST-SELECTED]" if summary.get("test_selected") else ""
    title = f"{header.get('data')} pooled WAR {summary['pooled']['war']:.2f} % UAR {summary['pooled']['uar']:.2f} %{tag}"
    plot_confusion_matrix(summary["confusion_matrix"], labels, os.path.join(result_dir, "confusion_matrix.png"), title)
    if histories:
        plot_training_curves(histories, os.path.join(result_dir, "training_curves.png"), title)
    log(console_table(summary))
    if tag:
        log("NOTE: test-selected result (--select best-test): each fold's epoch was chosen on its test fold.")
    log(f"results: {result_dir}")
    return summary


# --- train --------------------------------------------------------------------------------

def train(features, data_name, model_config, training, protocol, selection, seed, split_fold, model_path,
          result_path, resume=None, jit_compile=True, log=print):
    """The train mode: k-fold CV into Models/<run>/, results into Results/<run>/."""
    if resume:
        run_dir = resume.rstrip("/")
        config_path = os.path.join(run_dir, RUN_CONFIG)
        if not os.path.isfile(config_path):
            raise RunError(f"--resume {run_dir}: no {RUN_CONFIG} there; is it a run folder under Models/?")
        with open(config_path, encoding="utf-8") as handle:
            run_config = json.load(handle)
        if run_config["n_samples"] != len(features.x):
            raise RunError(f"--resume: the run was trained on {run_config['n_samples']} samples, the cache has {len(features.x)}")
    else:
        run_dir = new_run_dir(model_path, data_name, seed)
        run_config = {
            "data": data_name,
            "model": model_config,
            "training": training,
            "protocol": protocol,
            "selection": selection,
            "test_selected": selection == "best-test",
            "seed": seed,
            "split_fold": split_fold,
            "jit_compile": jit_compile,
            "n_samples": int(len(features.x)),
            "labels": list(features.labels),
            "features": features.settings,
            "versions": versions(),
            "command": " ".join(sys.argv),
            "created": stamp(),
        }
    log(f"run folder: {run_dir} ({run_config['protocol']} folds, {SELECTION_NOTES[run_config['selection']]})")
    start = time.time()
    records = run_cross_validation(features, run_config, run_dir, log=log)
    header = _header(run_config, mode="train", run_dir=run_dir)
    header["wall_seconds"] = round(time.time() - start, 1)
    histories = [(r["fold"], r["history"]) for r in records]
    result_dir = os.path.join(result_path, os.path.basename(run_dir))
    return write_results(result_dir, records, features.labels, header, histories, log=log)


def _header(run_config, mode, run_dir):
    return {
        "mode": mode,
        "data": run_config["data"],
        "run_dir": run_dir,
        "protocol": run_config["protocol"],
        "selection": run_config["selection"],
        "selection_note": SELECTION_NOTES[run_config["selection"]],
        "test_selected": run_config["selection"] == "best-test",
        "seed": run_config["seed"],
        "n_folds": run_config.get("n_folds"),
        "epochs": run_config["training"].get("epoch") if run_config.get("training") else None,
        "model": run_config["model"],
        "features": run_config.get("features", {}),
        "versions": versions(),
    }


# --- saved runs ---------------------------------------------------------------------------

def newest_run(model_path, data_name):
    runs = [d for d in glob.glob(os.path.join(model_path, f"{data_name}_*")) if os.path.isfile(os.path.join(d, RUN_CONFIG))]
    if not runs:
        raise RunError(f"no {data_name} run under {model_path}; train one first or pass --test_path FOLDER")
    return max(runs, key=os.path.getmtime)


def saved_run(test_path, data_name, features, authors_model_config, seed):
    """(run_config, [weights file per fold]) of our run folder or an authors' weights folder."""
    if not os.path.isdir(test_path):
        raise RunError(f"--test_path {test_path}: no such folder")
    files = {}
    for name in os.listdir(test_path):
        match = _FOLD_FILE.match(name)
        if match:
            files.setdefault(int(match.group(1)), {})[int(match.group(2))] = os.path.join(test_path, name)
    if not files:
        raise RunError(f"{test_path} holds no fold weights ({{k}}-fold_weights_best_{{i}}.hdf5); finished folds may be missing")
    if len(files) > 1:
        raise RunError(f"{test_path} mixes weights of {sorted(files)}-fold runs; keep one run per folder")
    (k, by_fold), = files.items()
    config_path = os.path.join(test_path, RUN_CONFIG)
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as handle:
            run_config = json.load(handle)
        if run_config["n_samples"] != len(features.x):
            raise RunError(f"{test_path} was trained on {run_config['n_samples']} samples of {run_config['data']}; the cache has {len(features.x)}: re-extract the same corpus")
    else:
        stored = read_checkpoint_config(next(iter(by_fold.values())))
        model_config = dict(authors_model_config)
        if stored:
            model_config.update(stored)
        run_config = {"data": data_name, "model": model_config, "protocol": "kfold", "selection": "best-test",
                      "seed": seed, "split_fold": k, "training": {}, "features": features.settings,
                      "source": "authors' released weights (epochs selected on the test folds)"}
    expected = run_config.get("n_folds") or k
    if sorted(by_fold) != list(range(1, expected + 1)):
        raise RunError(f"{test_path} has weights for folds {sorted(by_fold)} of a {expected}-fold run; the fold count does not match the files")
    return run_config, [by_fold[i] for i in range(1, expected + 1)]


def test(features, data_name, test_path, authors_model_config, seed, result_path, tsne=False, log=print):
    """The test mode: each saved fold's weights on its own test fold, rebuilt from the run's protocol."""
    run_config, weight_files = saved_run(test_path, data_name, features, authors_model_config, seed)
    folds = make_folds(features, run_config["protocol"], run_config["split_fold"], run_config["seed"])
    if len(folds) != len(weight_files):
        raise RunError(f"{test_path} holds {len(weight_files)} fold weights but the protocol gives {len(folds)} folds")
    model = build_timnet(**run_config["model"])
    representation = backbone_of(model) if tsne else None  # shares the model's layers and weights
    records, representations = [], []
    for fold, ((_, test_idx), path) in enumerate(zip(folds, weight_files), start=1):
        load_authors_weights(model, path)
        x = features.x[test_idx]
        probabilities = np.asarray(model.predict(x, batch_size=64, verbose=0))
        records.append({"fold": fold, "y_true": features.classes[test_idx], "probabilities": probabilities})
        if tsne:
            representations.append(np.asarray(representation.predict(x, batch_size=64, verbose=0)))
    header = _header(run_config, mode="test", run_dir=test_path)
    result_dir = os.path.join(result_path, f"{os.path.basename(os.path.normpath(test_path))}_test_{stamp()}")
    histories = []
    for fold in range(1, len(weight_files) + 1):
        record_path = os.path.join(test_path, f"fold_{fold}.json")
        if os.path.isfile(record_path):
            histories.append((fold, load_fold_record(test_path, fold)["history"]))
    summary = write_results(result_dir, records, features.labels, header, histories, log=log)
    if tsne:
        from .plots import plot_tsne

        y = np.concatenate([r["y_true"] for r in records])
        path = os.path.join(result_dir, "tsne.png")
        plot_tsne(np.concatenate(representations), y, features.labels, path,
                  f"{data_name} t-SNE of the fused representation, WAR {summary['pooled']['war']:.2f} %")
        log(f"t-SNE: {path}")
    return summary


# --- predict ------------------------------------------------------------------------------

def predict_files(paths, test_path, data_name, features_like, authors_model_config, seed):
    """Mean of the fold models' probabilities for each audio file; bad files are reported, not fatal.

    Returns (rows, errors); each row: {"file", "label", "probabilities": {label: p}}.
    """
    run_config, weight_files = saved_run(test_path, data_name, features_like, authors_model_config, seed)
    labels = run_config.get("labels") or list(features_like.labels)
    length = int(run_config.get("features", {}).get("mean_signal_length") or features_like.settings["mean_signal_length"])
    x, good, errors = [], [], []
    for path in paths:
        try:
            x.append(file_features(path, length))
            good.append(path)
        except BadAudioError as error:
            errors.append(str(error))
    rows = []
    if good:
        x = np.stack(x)
        model = build_timnet(**run_config["model"])
        total = np.zeros((len(good), len(labels)), np.float64)
        for path in weight_files:
            load_authors_weights(model, path)
            total += np.asarray(model.predict(x, batch_size=64, verbose=0))
        mean = total / len(weight_files)
        for path, p in zip(good, mean):
            order = np.argsort(p)[::-1]
            rows.append({"file": path, "label": labels[order[0]], "probabilities": {labels[i]: round(float(p[i]), 4) for i in order}})
    return rows, errors


def format_prediction(row, top=3):
    best = list(row["probabilities"].items())[:top]
    return f"{row['file']}: {row['label']}  (" + ", ".join(f"{k} {v:.2f}" for k, v in best) + ")"


def write_predictions(rows, path):
    if path.lower().endswith(".json"):
        text = json.dumps(rows, indent=1)
    else:
        labels = sorted(rows[0]["probabilities"]) if rows else []
        lines = ["file,label," + ",".join(labels)]
        lines += [f"{r['file']},{r['label']}," + ",".join(f"{r['probabilities'][k]:.4f}" for k in labels) for r in rows]
        text = "\n".join(lines) + "\n"
    write_text_atomic(path, text)


# --- cross-corpus ---------------------------------------------------------------------------

def fit_frames(x, frames):
    """Centre pad (with the MFCC of silence) or centre crop a feature batch to `frames`.

    The frame-domain image of the authors' signal padding: padded samples are
    zeros, whose MFCC frame is constant, so corpora cached at different
    lengths meet at one common length without the audio.
    """
    n = x.shape[1]
    if n == frames:
        return x
    if n > frames:
        start = (n - frames) // 2
        return x[:, start : start + frames]
    silence = mfcc_matrix(np.zeros(4096, np.float32))[2]
    left = (frames - n) // 2
    right = frames - n - left
    pad = lambda k: np.broadcast_to(silence, (x.shape[0], k, x.shape[2]))
    return np.concatenate([pad(left), x, pad(right)], axis=1).astype(np.float32)


def shared_subset(features, labels, frames):
    keep = [i for i, k in enumerate(features.classes) if features.labels[k] in labels]
    classes = [labels.index(features.labels[features.classes[i]]) for i in keep]
    return fit_frames(features.x[keep], frames), np.eye(len(labels), dtype=np.float32)[classes]


def cross_corpus(source, target, model_config, training, seeds, mean_signal_length, jit_compile=True, log=print):
    """Train on all of `source`, test on all of `target`, on their shared emotions; one result per seed."""
    from .evaluation import uar, war

    labels = [l for l in CROSS_CORPUS_LABELS if l in source.labels and l in target.labels]
    if len(labels) < 2:
        raise RunError(f"the corpora share fewer than two of {', '.join(CROSS_CORPUS_LABELS)}")
    frames = frames_for(mean_signal_length)
    x_source, y_source = shared_subset(source, labels, frames)
    x_target, y_target = shared_subset(target, labels, frames)
    config = dict(model_config, input_shape=(frames, source.x.shape[2]), num_classes=len(labels))
    results = []
    for seed in seeds:
        trainer = FoldTrainer(config, training, seed, "last", jit_compile)
        trainer.train_fold(0, x_source, y_source, desc=f"seed {seed}")
        predictions = np.argmax(trainer.model.predict(x_target, batch_size=64, verbose=0), axis=1)
        truth = np.argmax(y_target, axis=1)
        results.append({"seed": seed, "uar": uar(truth, predictions), "war": war(truth, predictions)})
        log(f"seed {seed}: UAR {results[-1]['uar']:.2f} %  WAR {results[-1]['war']:.2f} %")
    return {"labels": labels, "mean_signal_length": int(mean_signal_length), "frames": frames,
            "n_source": int(len(x_source)), "n_target": int(len(x_target)), "runs": results}


def cross_corpus_table(pairs):
    """Table 2 / A4 layout: source -> target, UAR and WAR mean +- std over runs."""
    lines = ["| source | target | UAR % | WAR % | runs | shared emotions |", "| --- | --- | --- | --- | --- | --- |"]
    for (source, target), result in pairs.items():
        u = [r["uar"] for r in result["runs"]]
        w = [r["war"] for r in result["runs"]]
        lines.append(f"| {source} | {target} | {np.mean(u):.2f} ± {np.std(u):.2f} | {np.mean(w):.2f} ± {np.std(w):.2f} | {len(u)} | {', '.join(result['labels'])} |")
    return "\n".join(lines) + "\n"


def cross_corpus_pairs(source, target):
    names = CROSS_CORPUS_NAMES
    if source.lower() == "all":
        return [(s, t) for s in names for t in names if s != t]
    return [(canonical_name(source) or source, canonical_name(target) or target)]


# --- Table 1 summary ------------------------------------------------------------------------

def summarize_results(result_path):
    """One Markdown table of every run's summary.json under `result_path`."""
    rows = []
    for path in sorted(glob.glob(os.path.join(result_path, "*", "summary.json"))):
        with open(path, encoding="utf-8") as handle:
            s = json.load(handle)
        selection = s.get("selection", "?") + (" **(test-selected)**" if s.get("test_selected") else "")
        rows.append(
            f"| {s.get('data')} | {s.get('mode')} | {s.get('protocol')} | {selection} | {s.get('model', {}).get('variant', 'timnet')} "
            f"| {s['pooled']['uar']:.2f} | {s['pooled']['war']:.2f} | {s['mean']['uar']:.2f} ± {s['std']['uar']:.2f} "
            f"| {s['mean']['war']:.2f} ± {s['std']['war']:.2f} | {len(s['folds'])} | {s.get('epochs') or '-'} | {s.get('seed')} "
            f"| {os.path.basename(os.path.dirname(path))} |"
        )
    if not rows:
        raise RunError(f"no runs (*/summary.json) under {result_path}")
    header = ("| corpus | mode | protocol | selection | model | pooled UAR % | pooled WAR % | mean UAR % | mean WAR % | folds | epochs | seed | run |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    return header + "\n" + "\n".join(rows) + "\n"
