"""Predictions of files: bad files skipped and reported, a CSV any spreadsheet reads back."""
import csv
import json


from timnet_keras.backbone import TimnetBackbone
from timnet_keras.classifier import TimnetClassifier
from timnet_keras.demo import write_demo_wavs
from timnet_keras.prediction import predict_files, write_predictions
from timnet_keras.preprocessor import MfccPreprocessor


def test_bad_files_are_skipped_and_named_the_rest_predicted(tmp_path):
    classifier = TimnetClassifier(TimnetBackbone(frames=44, num_blocks=2), 4, labels=("angry", "happy", "neutral", "sad"),
                                  preprocessor=MfccPreprocessor(22050))
    wavs = write_demo_wavs(str(tmp_path / "w"), n_utterances=2)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"")
    rows, errors = predict_files(classifier, [wavs[0], str(broken), wavs[1]])
    assert [r["file"] for r in rows] == [wavs[0], wavs[1]] and "broken.wav" in errors[0]
    probabilities = classifier.predict_files(wavs)
    assert [r["label"] for r in rows] == classifier.predicted_labels(probabilities)
    assert list(rows[0]["probabilities"].values()) == sorted(rows[0]["probabilities"].values(), reverse=True)


def test_a_comma_or_quote_in_a_file_name_does_not_break_the_csv(tmp_path):
    rows = [{"file": 'take 1, "loud".wav', "label": "sad", "probabilities": {"sad": 0.75, "angry": 0.25}}]
    path = str(tmp_path / "p.csv")
    write_predictions(rows, path)
    with open(path, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table == [["file", "label", "angry", "sad"], ['take 1, "loud".wav', "sad", "0.2500", "0.7500"]]
    write_predictions(rows, str(tmp_path / "p.json"))
    assert json.load(open(tmp_path / "p.json")) == rows
