"""Emotions of audio files through a `TimnetClassifier`, and the predictions file.

Bad files are reported and skipped, not fatal: one broken recording must
not cost the predictions of the others. Every row says how sure it is:
`confidence` (the calibrated top probability) and `abstain` (why not to
trust it, empty when nothing speaks against it; see `abstain`).
"""
import csv
import io
import json

import numpy as np

from .io import write_text_atomic
from .preprocessor import BadAudioError


def predict_files(classifier, paths, batch_size=64):
    """(rows, errors): a row per readable file, {"file", "label", "confidence", "abstain", "seconds",
    "probabilities": {label: p} best first}; a silent file's label is "(silence)"."""
    from .abstain import SILENCE, SILENT_LABEL, abstain_reason, native_rate, signal_reasons

    features, good, errors, seconds, checks = [], [], [], [], []
    preprocessor = classifier.preprocessor
    thresholds = getattr(classifier, "abstain_thresholds", None)
    for path in paths:
        try:
            signal = preprocessor.load(path)
            features.append(preprocessor.signal_features(signal))
            good.append(path)
            seconds.append(round(len(signal) / preprocessor.sample_rate, 3))
            checks.append(signal_reasons(signal, preprocessor.sample_rate, preprocessor.mean_signal_length, native_rate(path)))
        except BadAudioError as error:
            errors.append(str(error))
    rows = []
    if good:
        probabilities = classifier.predict(np.stack(features), batch_size=batch_size, verbose=0)
        for path, p, duration, reasons in zip(good, probabilities, seconds, checks):
            order = np.argsort(p)[::-1]
            abstain = abstain_reason(reasons, p, thresholds)
            rows.append({"file": path, "label": SILENT_LABEL if abstain == SILENCE else classifier.labels[order[0]],
                         "confidence": round(float(p[order[0]]), 4), "abstain": abstain, "seconds": duration,
                         "probabilities": {classifier.labels[i]: round(float(p[i]), 4) for i in order}})
    return rows, errors


def cropped_note(row, preprocessor):
    """A note for a file longer than the model's window (None otherwise): what was heard, and how to hear it all."""
    model_seconds = preprocessor.mean_signal_length / preprocessor.sample_rate
    if row["seconds"] <= model_seconds:
        return None
    return (f"note: {row['file']} is {row['seconds']:.1f} s long; the model heard its middle {model_seconds:.2f} s "
            f"(one centre window, as the authors' predict); --window {model_seconds:.2f} --hop 1 labels all of it over time")


def format_prediction(row, top=3):
    best = list(row["probabilities"].items())[:top]
    abstain = f"  [abstain: {row['abstain']}]" if row.get("abstain") else ""
    if row.get("abstain") == "silence":  # the model's guesses of silence mean nothing: the files keep them
        return f"{row['file']}: {row['label']}{abstain}"
    return f"{row['file']}: {row['label']}  (" + ", ".join(f"{k} {v:.2f}" for k, v in best) + ")" + abstain


def predictions_text(rows, json_format=False):
    """The predictions file's content: JSON, or CSV (file, label, confidence, abstain, one column per class)."""
    if json_format:
        return json.dumps(rows, indent=1)
    labels = sorted(rows[0]["probabilities"]) if rows else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "label", "confidence", "abstain", *labels])
    for r in rows:
        confidence = f"{r['confidence']:.4f}" if r.get("confidence") is not None else ""
        writer.writerow([r["file"], r["label"], confidence, r.get("abstain", ""), *(f"{r['probabilities'][k]:.4f}" for k in labels)])
    return out.getvalue()


def write_predictions(rows, path):
    write_text_atomic(path, predictions_text(rows, json_format=path.lower().endswith(".json")))


def is_predictions_file(path):
    """True for a file predict wrote (its CSV header or its JSON rows): the only kind `--overwrite` may replace."""
    try:
        with open(path, encoding="utf-8") as handle:
            head = handle.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    if head.startswith("file,label,") or head.startswith("file,start,end,label,"):
        return True
    try:
        rows = json.load(open(path, encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(rows, list) and all(isinstance(r, dict) and {"file", "label"} <= set(r) for r in rows)
