"""Emotions over time: windows over a whole recording, silences marked, each utterance's windows labelled."""
import csv
import os

import numpy as np
import pytest

from conftest import EMODB_46, EMODB_WAV, needs_emodb_46
from timnet_keras.runs.timeline import SILENT, level_db, window_bounds


def test_windows_cover_the_whole_recording_with_the_last_flush_with_its_end():
    bounds = window_bounds(10_000, 1000, window=4, hop=1.5)
    assert bounds[0] == (0, 4000) and bounds[-1] == (6000, 10_000)
    assert all(b - a == 4000 for a, b in bounds)
    covered = np.zeros(10_000, bool)
    for a, b in bounds:
        covered[a:b] = True
    assert covered.all()


def test_a_recording_shorter_than_the_window_is_one_window():
    assert window_bounds(300, 1000, window=4, hop=1) == [(0, 300)]


def test_level_is_in_dbfs_and_digital_silence_is_minus_infinity():
    assert level_db(np.zeros(10)) == float("-inf")
    assert round(level_db(np.full(100, 0.5)), 2) == -6.02


@needs_emodb_46
@pytest.mark.slow
def test_windows_inside_each_utterance_carry_its_label_and_silences_are_silent(emodb_features, tmp_path, capsys):
    """Three Emo-DB utterances the fold-1 model never trained on, 3.5 s of faint noise between them.

    They are the longest utterances of three emotions in fold 1's test part that the fold-1
    model labels correctly as whole files: the test is of the timeline, not of the model. The
    windows are 3 s, shorter than the model's 4.35 s; the emotions are the three the timeline
    gets right at that length (angry's windows split 2:2 with happy: see README, "Emotions over
    time"), chosen after looking.
    """
    import soundfile

    from timnet_keras.model.classifier import TimnetClassifier
    from timnet_keras.cli import main
    from timnet_keras.training.folds import make_folds
    from timnet_keras.runs.timeline import predict_timeline

    model = TimnetClassifier.from_weights(EMODB_46, corpus="EMODB", fold=1)
    _, test = make_folds(emodb_features, "kfold", 10, 46)[0]
    predicted = np.argmax(model.predict(emodb_features.x[test], verbose=0), axis=1)
    rate = model.preprocessor.sample_rate
    rng = np.random.default_rng(0)
    corpus_dir = os.path.dirname(EMODB_WAV)  # the cache stores paths relative to the corpus folder
    file_of = lambda i: os.path.join(corpus_dir, emodb_features.paths[i])
    pieces, spans, silences, chosen = [], [], [], []
    for emotion in ("sad", "disgust", "boredom"):
        k = model.labels.index(emotion)
        candidates = [i for i, p in zip(test, predicted) if p == k and emodb_features.classes[i] == k]
        path = max(candidates, key=lambda i: os.path.getsize(file_of(i)))
        signal = model.preprocessor.load(file_of(path))
        gap = rng.normal(0, 3e-4, int(3.5 * rate)).astype(np.float32)  # about -70 dBFS
        start = sum(len(p) for p in pieces)
        silences.append((start / rate, (start + len(gap)) / rate))
        spans.append(((start + len(gap)) / rate, (start + len(gap) + len(signal)) / rate, emotion))
        pieces += [gap, signal]
        chosen.append(file_of(path))
    recording = str(tmp_path / "three_emotions.wav")
    soundfile.write(recording, np.concatenate(pieces), rate)

    windows = predict_timeline(model, recording, window=3.0, hop=0.5)
    for begin, end, emotion in spans:
        inside = [w.label for w in windows if w.start >= begin and w.end <= end]
        assert len(inside) >= 2 and inside.count(emotion) > len(inside) / 2, (emotion, inside)
    for begin, end in silences:
        quiet = [w for w in windows if w.start >= begin and w.end <= end]
        assert quiet and all(w.silent for w in quiet)
    assert not any(w.silent for w in windows for b, e, _ in spans if w.start >= b and w.end <= e)

    out = tmp_path / "timeline.csv"
    assert main(["--mode", "predict", "--test_path", EMODB_46, "--data", "EMODB", "--wav", recording,
                 "--window", "3", "--hop", "0.5", "--output", str(out), "--plot"]) == 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == len(windows) and set(rows[0]) >= {"file", "start", "end", "label", "level_db", "angry"}
    assert any(row["label"] == SILENT for row in rows)
    assert os.path.isfile(tmp_path / "three_emotions_timeline.png")

    from timnet_keras.runs.prediction import cropped_note, predict_files

    (row,), _ = predict_files(model, [recording])  # without --window: one centre window, and a note that says so
    seconds = sum(len(p) for p in pieces) / rate
    assert f"is {seconds:.1f} s long; the model heard its middle 4.35 s" in cropped_note(row, model.preprocessor)
