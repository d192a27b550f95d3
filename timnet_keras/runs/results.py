"""Result folders (`Results/<run>/`) and the Table 1 summary of all of them.

A result folder holds summary.json (per fold, mean +- std, pooled, the
pooled confusion matrix, protocol and selection; ECE, NLL and Brier before
and after each fold's temperature), classification_report.csv,
confusion_matrix.png, reliability.png (before/after calibration) and
training_curves.png. Test-selected results say so in every one of them.
"""
import glob
import os

from timnet_keras.errors import TimnetError
from timnet_keras.training.evaluation import classification_report_csv, console_table, summarize_folds
from timnet_keras.io import read_json, versions, write_json_atomic, write_text_atomic


class ResultsError(TimnetError):
    """Results that cannot be read; the message says what to do."""


def run_header(run_config, mode, run_dir):
    """What a summary.json says about the run it scores."""
    return {
        "mode": mode,
        "data": run_config.data,
        "run_dir": run_dir,
        "protocol": run_config.protocol,
        "selection": run_config.selection,
        "selection_note": run_config.selection_note,
        "test_selected": run_config.test_selected,
        "seed": run_config.seed,
        "n_folds": run_config.n_folds,
        "epochs": run_config.training.epoch if mode == "train" or not run_config.source else None,
        "model": run_config.model.backbone_kwargs() | {"num_classes": run_config.model.num_classes},
        "features": run_config.features,
        "normalise": run_config.normalise,
        "versions": versions(),
    }


def write_results(result_dir, fold_records, labels, header, histories=(), log=print):
    """Writes a result folder; returns the summary dict."""
    import numpy as np

    from timnet_keras.training.calibration import apply_temperature
    from timnet_keras.runs.plots import plot_confusion_matrix, plot_reliability, plot_training_curves

    os.makedirs(result_dir, exist_ok=True)
    summary = dict(header)
    summary.update(summarize_folds(fold_records, labels))
    write_json_atomic(os.path.join(result_dir, "summary.json"), summary)
    write_text_atomic(os.path.join(result_dir, "classification_report.csv"), classification_report_csv(fold_records, labels))
    tag = " [TEST-SELECTED]" if summary.get("test_selected") else ""
    title = f"{header.get('data')} pooled WAR {summary['pooled']['war']:.2f} % UAR {summary['pooled']['uar']:.2f} %{tag}"
    plot_confusion_matrix(summary["confusion_matrix"], labels, os.path.join(result_dir, "confusion_matrix.png"), title)
    y_true = np.concatenate([np.asarray(r.y_true, int) for r in fold_records])
    raw = np.concatenate([np.asarray(r.probabilities, np.float64) for r in fold_records])
    scaled = np.concatenate([apply_temperature(r.probabilities, getattr(r, "temperature", 1.0)) for r in fold_records])
    note = "" if summary.get("calibrated") else " (no fitted temperature: train with --calibrate)"
    plot_reliability(y_true, raw, scaled, os.path.join(result_dir, "reliability.png"),
                     f"{header.get('data')} pooled test predictions{note}{tag}")
    if histories:
        plot_training_curves(histories, os.path.join(result_dir, "training_curves.png"), title)
    log(console_table(summary))
    if tag:
        log("NOTE: test-selected result (--select best-test): each fold's epoch was chosen on its test fold.")
    log(f"results: {result_dir}")
    return summary


def summarize_results(result_path):
    """One Markdown table (the paper's Table 1 layout) of every summary.json under `result_path`."""
    rows = []
    for path in sorted(glob.glob(os.path.join(result_path, "*", "summary.json"))):
        s = read_json(path)
        selection = s.get("selection", "?") + (" **(test-selected)**" if s.get("test_selected") else "")
        protocol = s.get("protocol") if s.get("normalise", "none") == "none" else f"{s.get('protocol')}, {s['normalise']}-normalised"
        rows.append(
            f"| {s.get('data')} | {s.get('mode')} | {protocol} | {selection} | {s.get('model', {}).get('variant', 'timnet')} "
            f"| {s['pooled']['uar']:.2f} | {s['pooled']['war']:.2f} | {s['mean']['uar']:.2f} ± {s['std']['uar']:.2f} "
            f"| {s['mean']['war']:.2f} ± {s['std']['war']:.2f} | {len(s['folds'])} | {s.get('epochs') or '-'} | {s.get('seed')} "
            f"| {os.path.basename(os.path.dirname(path))} |"
        )
    if not rows:
        raise ResultsError(f"no runs (*/summary.json) under {result_path}")
    header = ("| corpus | mode | protocol | selection | model | pooled UAR % | pooled WAR % | mean UAR % | mean WAR % | folds | epochs | seed | run |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    return header + "\n" + "\n".join(rows) + "\n"
