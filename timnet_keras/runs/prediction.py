"""Emotions of audio files through a `TimnetClassifier`, and the predictions file.

Bad files are reported and skipped, not fatal: one broken recording must
not cost the predictions of the others. Every row says how sure it is:
`confidence` (the calibrated top probability) and `abstain` (why not to
trust it, empty when nothing speaks against it; see `abstain`). A run with
normalised features (`normalise`) is predicted on features normalised its
way; every row then says how (`normalisation`), and for `speaker` whose
statistics were used: an enrolment folder's, or the given recordings'.
"""
import os

import csv
import io
import json

import numpy as np

from timnet_keras.errors import InputError
from timnet_keras.io import write_text_atomic
from timnet_keras.features.preprocessor import BadAudioError


def enrolment_statistics(preprocessor, enrol):
    """(Statistics, errors) of a speaker's enrolment: a folder of audio (searched recursively) or a list of files.

    The statistics are those of the real frames of each recording's feature matrix, made as the
    model's input is (one centre window of `mean_signal_length`); unreadable files are left out and
    named in `errors`; none readable is an InputError.
    """
    from timnet_keras.features.corpora import audio_files
    from timnet_keras.features.normalise import frame_statistics

    if isinstance(enrol, (str, os.PathLike)):
        folder = os.fspath(enrol)
        if not os.path.isdir(folder):
            raise InputError(f"--enrol {folder}: no such folder (name a folder of the speaker's recordings)")
        paths, where = sorted(audio_files(folder, recursive=True)), f"enrolment folder {folder}"
    else:
        paths, where = [os.fspath(p) for p in enrol], "enrolment recordings"
    rows, errors = [], []
    for path in paths:
        try:
            rows.append(preprocessor.file_features(path))
        except BadAudioError as error:
            errors.append(str(error))
    if not rows:
        raise InputError(f"--enrol: no readable recording among the {len(paths)} files of the {where}; "
                         f"give the speaker's recordings (.wav, .flac, .ogg)")
    count = f"{len(rows)} recording{'s' if len(rows) != 1 else ''}"
    return frame_statistics(np.stack(rows), f"{where} ({count})"), errors


def check_enrolment(preprocessor, enrol):
    """Refuses an enrolment for a run whose normalisation does not use one (anything but `speaker`)."""
    if enrol is not None and preprocessor.normalise != "speaker":
        raise InputError(f"--enrol gives a speaker's statistics, which only a run trained with --normalise speaker "
                         f"uses; this run's normalisation is {preprocessor.normalise}: drop --enrol")


def normalisation_note(preprocessor, statistics=None):
    """What the features of a prediction were normalised with, in words ("" for the authors' raw MFCCs)."""
    if preprocessor.normalise == "none":
        return ""
    if preprocessor.normalise == "utterance":
        return "utterance: each recording standardised over its own real frames"
    return f"speaker: the statistics of {statistics.source}" if statistics is not None else "speaker"


def predict_files(classifier, paths, batch_size=64, enrol=None):
    """(rows, errors): a row per readable file, {"file", "label", "confidence", "abstain", "seconds",
    "probabilities": {label: p} best first}; a silent file's label is "(silence)".

    A normalised run's rows also carry "normalisation" (`normalisation_note`). For `speaker`, `enrol`
    (a folder, a list of files or a `normalise.Statistics`) gives the speaker's statistics; without
    it the readable files of this call are taken to be one speaker and give them.
    """
    from timnet_keras.runs.abstain import SILENCE, SILENT_LABEL, abstain_reason, native_rate, signal_reasons
    from timnet_keras.features.normalise import Statistics, frame_statistics

    features, good, errors, seconds, checks = [], [], [], [], []
    preprocessor = classifier.preprocessor
    check_enrolment(preprocessor, enrol)
    statistics = enrol if isinstance(enrol, Statistics) or enrol is None else None
    if enrol is not None and statistics is None:
        statistics, enrol_errors = enrolment_statistics(preprocessor, enrol)
        errors += [f"enrolment: {error}" for error in enrol_errors]
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
        x = np.stack(features)
        if preprocessor.normalise == "speaker" and statistics is None:
            statistics = frame_statistics(x, f"the {len(good)} recording{'s' if len(good) != 1 else ''} given together "
                                             f"(taken to be one speaker)")
        note = normalisation_note(preprocessor, statistics)
        probabilities = classifier.predict(preprocessor.normalised(x, statistics), batch_size=batch_size, verbose=0)
        for path, p, duration, reasons in zip(good, probabilities, seconds, checks):
            order = np.argsort(p)[::-1]
            abstain = abstain_reason(reasons, p, thresholds)
            rows.append({"file": path, "label": SILENT_LABEL if abstain == SILENCE else classifier.labels[order[0]],
                         "confidence": round(float(p[order[0]]), 4), "abstain": abstain, "seconds": duration,
                         "probabilities": {classifier.labels[i]: round(float(p[i]), 4) for i in order}})
            if note:
                rows[-1]["normalisation"] = note
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
    """The predictions file's content: JSON, or CSV (file, label, confidence, abstain, [normalisation,] one column
    per class; normalisation for a run with normalised features only)."""
    if json_format:
        return json.dumps(rows, indent=1)
    labels = sorted(rows[0]["probabilities"]) if rows else []
    normalised = any("normalisation" in r for r in rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "label", "confidence", "abstain", *(["normalisation"] if normalised else []), *labels])
    for r in rows:
        confidence = f"{r['confidence']:.4f}" if r.get("confidence") is not None else ""
        writer.writerow([r["file"], r["label"], confidence, r.get("abstain", ""),
                         *([r.get("normalisation", "")] if normalised else []),
                         *(f"{r['probabilities'][k]:.4f}" for k in labels)])
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
