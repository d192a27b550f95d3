"""Emotions over time: the model's fixed-length window slid over a recording of any length.

TIM-Net hears one window of `mean_signal_length` samples (EMODB: 4.35 s).
A longer recording is cut into windows of `window` seconds every `hop`
seconds (the last window ends at the recording's end, so no tail is lost);
each window goes through the same preprocessing as an utterance (centre
padded or cropped to the model's length). A window whose loudness is below
`silence_db` (RMS in dB relative to full scale; default -45 dBFS, about
the level of a quiet room on a close microphone, 30 dB under normal speech)
is marked silent instead of getting an emotion. A run with normalised features
(`normalise`) has each window normalised its way: `utterance` over the
window's own frames; `speaker` with the statistics given (an enrolment's), or
those of all the windows of the recordings given together (`timeline_statistics`).
"""
import math
from dataclasses import dataclass

import numpy as np

from timnet_keras.runs.abstain import SILENCE_DB, SILENT, level_db
from timnet_keras.errors import TimnetError



class TimelineError(TimnetError):
    """Windows that cannot be made as asked; the message says what to do."""


@dataclass
class WindowPrediction:
    """One window of a recording: where it is, how loud, and what the model heard."""

    file: str
    start: float  # seconds
    end: float
    label: str  # SILENT for a silent window
    level_db: float
    probabilities: dict  # label -> probability (all labels, also for silent windows)
    confidence: float = float("nan")  # the calibrated top probability
    abstain: str = ""  # why not to trust this window ("silence" for a silent one; see `abstain`), "" for no reason
    normalisation: str = ""  # how its features were normalised (`prediction.normalisation_note`); "" for raw MFCCs

    @property
    def silent(self):
        return self.label == SILENT


def window_bounds(n_samples, sample_rate, window, hop):
    """[(start, end)] sample indices of the windows over `n_samples`.

    Example:
        >>> window_bounds(10 * 100, 100, window=4, hop=3)
        [(0, 400), (300, 700), (600, 1000)]
        >>> window_bounds(250, 100, window=4, hop=1)
        [(0, 250)]
    """
    if not (window > 0 and hop > 0):
        raise TimelineError(f"--window {window} --hop {hop}: both must be positive seconds")
    size, step = int(round(window * sample_rate)), max(1, int(round(hop * sample_rate)))
    if n_samples <= size:
        return [(0, n_samples)]
    starts = list(range(0, n_samples - size + 1, step))
    if starts[-1] + size < n_samples:
        starts.append(n_samples - size)  # the tail: a last window flush with the end
    return [(s, s + size) for s in starts]


def window_features(preprocessor, path, window, hop):
    """(signal, bounds, pieces, raw features) of the windows over the recording at `path`."""
    signal = preprocessor.load(path)
    bounds = window_bounds(len(signal), preprocessor.sample_rate, window, hop)
    pieces = [signal[a:b] for a, b in bounds]
    return signal, bounds, pieces, np.stack([preprocessor.signal_features(piece) for piece in pieces])


def timeline_statistics(preprocessor, paths, window, hop):
    """(Statistics, errors): a speaker's from every window of the readable recordings `paths`, taken together."""
    from timnet_keras.features.normalise import frame_statistics
    from timnet_keras.features.preprocessor import BadAudioError

    features, errors, files = [], [], 0
    for path in paths:
        try:
            features.append(window_features(preprocessor, path, window, hop)[3])
            files += 1
        except BadAudioError as error:
            errors.append(str(error))
    if not features:
        return None, errors
    x = np.concatenate(features)
    return frame_statistics(x, f"the {len(x)} windows of the {files} recording{'s' if files != 1 else ''} given "
                               f"together (taken to be one speaker)"), errors


def predict_timeline(classifier, path, window, hop, silence_db=SILENCE_DB, batch_size=64, statistics=None):
    """[WindowPrediction] over the whole recording at `path`, each with its confidence and abstain reason.

    `statistics`: a speaker's (`normalise.Statistics`) for a run with speaker normalisation; without
    them, the recording's own windows give them.
    """
    from timnet_keras.runs.abstain import SILENCE, abstain_reason, native_rate, signal_reasons
    from timnet_keras.features.normalise import frame_statistics
    from timnet_keras.runs.prediction import normalisation_note

    preprocessor = classifier.preprocessor
    rate_of_file = native_rate(path)
    thresholds = getattr(classifier, "abstain_thresholds", None)
    signal, bounds, pieces, features = window_features(preprocessor, path, window, hop)
    rate = preprocessor.sample_rate
    if preprocessor.normalise == "speaker" and statistics is None:
        statistics = frame_statistics(features, f"the {len(features)} windows of {path}")
    note = normalisation_note(preprocessor, statistics)
    probabilities = classifier.predict(preprocessor.normalised(features, statistics), batch_size=batch_size, verbose=0)
    rows = []
    for (a, b), piece, p in zip(bounds, pieces, probabilities):
        level = level_db(piece)
        abstain = abstain_reason(signal_reasons(piece, rate, preprocessor.mean_signal_length, rate_of_file, silence_db), p,
                                 thresholds)
        label = SILENT if abstain == SILENCE else classifier.labels[int(np.argmax(p))]
        rows.append(WindowPrediction(path, round(a / rate, 3), round(b / rate, 3), label, round(level, 1),
                                     {name: round(float(v), 4) for name, v in zip(classifier.labels, p)},
                                     round(float(np.max(p)), 4), abstain, note))
    return rows


def plot_timeline(rows, labels, path, title=None):
    """Probabilities over time (one line per emotion), the label track on top, silent windows greyed."""
    from matplotlib.figure import Figure

    from timnet_keras.runs.plots import _colours, _save

    centres = [(r.start + r.end) / 2 for r in rows]
    colours = _colours("tab10")
    fig = Figure(figsize=(10, 4.5))
    track, curves = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 4]})
    half = _hop(rows) / 2
    for r, centre in zip(rows, centres):
        colour = (0.8, 0.8, 0.8) if r.silent else colours(labels.index(r.label) % 10)
        track.axvspan(centre - half, centre + half, color=colour, linewidth=0)
    track.set_yticks([])
    track.set_ylabel("label", rotation=0, ha="right", va="center")
    for k, label in enumerate(labels):
        curves.plot(centres, [r.probabilities[label] for r in rows], color=colours(k % 10), label=label)
    for r in rows:
        if r.silent:
            curves.axvspan(r.start, r.end, color=(0.92, 0.92, 0.92), zorder=0, linewidth=0)
    curves.set_ylim(0, 1)
    curves.set_xlabel("time (s, window centres)")
    curves.set_ylabel("probability")
    curves.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    track.set_title(title or (rows[0].file if rows else ""))
    _save(fig, path)


def _hop(rows):
    return (rows[1].start - rows[0].start) if len(rows) > 1 else (rows[0].end - rows[0].start)


def timeline_text(rows, json_format=False):
    """The timeline file: JSON (a list of windows) or CSV (file, start, end, label, level_db, confidence, abstain,
    a column per emotion)."""
    import csv
    import io
    import json

    normalised = any(r.normalisation for r in rows)  # its column (key) only for a run with normalised features
    if json_format:  # digital silence has no level in dB: null, since JSON has no -Infinity
        return json.dumps([{**{k: v for k, v in r.__dict__.items() if k != "normalisation" or normalised},
                            "level_db": r.level_db if math.isfinite(r.level_db) else None,
                            "silent": r.silent} for r in rows], indent=1, allow_nan=False)
    labels = list(rows[0].probabilities) if rows else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "start", "end", "label", "level_db", "confidence", "abstain",
                     *(["normalisation"] if normalised else []), *labels])
    for r in rows:
        writer.writerow([r.file, f"{r.start:.3f}", f"{r.end:.3f}", r.label, f"{r.level_db:.1f}", f"{r.confidence:.4f}",
                         r.abstain, *([r.normalisation] if normalised else []), *(f"{r.probabilities[k]:.4f}" for k in labels)])
    return out.getvalue()
