"""Predictions of files: bad files skipped and reported, a CSV any spreadsheet reads back."""
import csv
import json


from timnet_keras.model.backbone import TimnetBackbone
from timnet_keras.model.classifier import TimnetClassifier
from timnet_keras.features.demo import write_demo_wavs
from timnet_keras.runs.prediction import predict_files, write_predictions
from timnet_keras.features.preprocessor import MfccPreprocessor


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
    rows = [{"file": 'take 1, "loud".wav', "label": "sad", "confidence": 0.75, "abstain": "clipping; low confidence",
             "probabilities": {"sad": 0.75, "angry": 0.25}}]
    path = str(tmp_path / "p.csv")
    write_predictions(rows, path)
    with open(path, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table == [["file", "label", "confidence", "abstain", "angry", "sad"],
                     ['take 1, "loud".wav', "sad", "0.7500", "clipping; low confidence", "0.2500", "0.7500"]]
    write_predictions(rows, str(tmp_path / "p.json"))
    assert json.load(open(tmp_path / "p.json")) == rows


def _classifier(**kwargs):
    return TimnetClassifier(TimnetBackbone(frames=44, num_blocks=2), 4, labels=("angry", "happy", "neutral", "sad"),
                            preprocessor=MfccPreprocessor(22050), **kwargs)


def test_an_all_zero_wav_abstains_with_silence_and_is_never_an_emotion(tmp_path):
    import numpy as np
    import soundfile

    silent = str(tmp_path / "zeros.wav")
    soundfile.write(silent, np.zeros(22050, np.float32), 16000)
    (speech,) = write_demo_wavs(str(tmp_path / "w"), n_utterances=1)
    rows, errors = predict_files(_classifier(), [silent, speech])
    assert not errors
    assert rows[0]["abstain"] == "silence" and rows[0]["label"] == "(silence)"
    assert rows[1]["label"] in ("angry", "happy", "neutral", "sad") and "silence" not in rows[1]["abstain"]
    assert rows[0]["confidence"] == max(rows[0]["probabilities"].values())


def test_clipped_8_khz_audio_and_unsure_predictions_abstain_with_their_reasons(tmp_path):
    import numpy as np
    import soundfile

    loud = str(tmp_path / "loud_8k.wav")
    soundfile.write(loud, np.clip(3 * np.sin(np.arange(8000) / 3), -1, 1).astype(np.float32), 8000)
    sure_of_nothing = {"min_confidence": 1.0, "max_entropy": 0.0}  # every prediction is below these
    rows, _ = predict_files(_classifier(abstain_thresholds=sure_of_nothing), [loud])
    assert rows[0]["abstain"] == "clipping; low sample rate; low confidence; high entropy"


def test_csv_and_json_predictions_carry_confidence_and_abstain(tmp_path):
    (speech,) = write_demo_wavs(str(tmp_path / "w"), n_utterances=1)
    rows, _ = predict_files(_classifier(), [speech])
    write_predictions(rows, str(tmp_path / "p.csv"))
    write_predictions(rows, str(tmp_path / "p.json"))
    with open(tmp_path / "p.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert float(row["confidence"]) == rows[0]["confidence"] and row["abstain"] == rows[0]["abstain"]
    (stored,) = json.load(open(tmp_path / "p.json"))
    assert stored["confidence"] == rows[0]["confidence"] and stored["abstain"] == rows[0]["abstain"]


def test_an_ensemble_averages_its_members_temperature_scaled_probabilities():
    import numpy as np

    from timnet_keras.training.calibration import apply_temperature

    x = np.random.default_rng(0).normal(size=(3, 44, 39)).astype("float32")
    scaled = _classifier(ensemble_size=2, temperatures=(0.5, 2.0))
    plain = _classifier(ensemble_size=2)
    plain.set_weights(scaled.get_weights())  # the scaling layers have no weights: the same members
    members = []
    for k in range(2):
        one = _classifier()
        one.set_weights([w.numpy() for w in plain.member_backbones[k].weights + plain.member_heads[k].weights])
        members.append(apply_temperature(one.predict(x, verbose=0), (0.5, 2.0)[k]))
    expected = (members[0] + members[1]) / 2
    np.testing.assert_allclose(scaled.predict(x, verbose=0), expected, atol=1e-5)  # the member-by-member path
    np.testing.assert_allclose(np.asarray(scaled(x)), expected, atol=1e-5)  # the graph (what export saves)
    assert scaled.get_config()["temperatures"] == [0.5, 2.0]
