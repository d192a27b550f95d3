"""Export: the authors' EMODB_46 fold-1 model in every format gives the Keras model's probabilities.

The ONNX checks run in a child process that imports neither TensorFlow nor
Keras nor this package: it makes the features from the wav files with
librosa alone, following the exported `timnet_export.json`, as a consumer
of the README's snippet would; an audio-input export (`--input audio`) needs
only the samples (soundfile and onnxruntime).

The audio-input export is checked twice: its in-graph MFCC against the
preprocessor's on DEMO audio, and its probabilities against `predict_files`
on a tiny calibrated DEMO run (always) and on Emo-DB with the authors'
weights (when ../shared is there).
"""
import glob
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import EMODB_46, EMODB_WAV, needs_emodb, needs_emodb_46
from timnet_keras.cli import main
from timnet_keras.model.export import ExportError, FORMATS, MANIFEST


def on_emodb(test):
    """The authors' weights and Emo-DB: skipped cleanly without ../shared."""
    return pytest.mark.slow(needs_emodb_46(test))


@pytest.fixture(scope="module")
def fold_1():
    from timnet_keras.model.classifier import TimnetClassifier

    return TimnetClassifier.from_weights(EMODB_46, corpus="EMODB", fold=1)


@pytest.fixture(scope="module")
def keras_probabilities(fold_1, emodb_features):
    return fold_1.predict(emodb_features.x, batch_size=64, verbose=0)


def exported(fold_1, tmp_path, fmt):
    out = str(tmp_path / fmt)
    manifest = fold_1.export_bundle(out, fmt, source=EMODB_46, fold=1)
    stored = json.load(open(os.path.join(out, MANIFEST)))
    assert stored["labels"] == list(fold_1.labels) and stored["input_shape"] == [None, 188, 39]
    assert stored["preprocessing"]["mean_signal_length"] == 96000 and stored["fold"] == 1
    assert sorted(os.listdir(out)) == sorted([MANIFEST, FORMATS[fmt]])
    return os.path.join(out, manifest.model_file)


def assert_same(probabilities, reference, atol):
    np.testing.assert_allclose(probabilities, reference, atol=atol)
    assert (np.argmax(probabilities, 1) == np.argmax(reference, 1)).all()


@on_emodb
def test_keras_file_gives_the_same_probabilities(fold_1, keras_probabilities, emodb_features, tmp_path):
    from timnet_keras.model.classifier import TimnetClassifier

    again = TimnetClassifier.load(exported(fold_1, tmp_path, "keras"))
    assert_same(again.predict(emodb_features.x, verbose=0), keras_probabilities, 1e-5)


@on_emodb
def test_saved_model_gives_the_same_probabilities(fold_1, keras_probabilities, emodb_features, tmp_path):
    import tensorflow as tf

    served = tf.saved_model.load(exported(fold_1, tmp_path, "saved_model"))
    probabilities = np.concatenate([served.serve(emodb_features.x[i:i + 128]).numpy() for i in range(0, 535, 128)])
    assert_same(probabilities, keras_probabilities, 1e-5)


@on_emodb
def test_tflite_gives_the_same_probabilities_within_1e_3(fold_1, keras_probabilities, emodb_features, tmp_path):
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's notice that it moves to ai_edge_litert
        interpreter = tf.lite.Interpreter(model_path=exported(fold_1, tmp_path, "tflite"))
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(source["index"], emodb_features.x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], emodb_features.x)
    interpreter.invoke()
    assert_same(interpreter.get_tensor(target["index"]), keras_probabilities, 1e-3)


CONSUMER = r"""
import json, os, sys
import numpy as np, librosa, onnxruntime
folder, out = sys.argv[1], sys.argv[2]
wavs = sys.argv[3:]
manifest = json.load(open(os.path.join(folder, "timnet_export.json")))
p = manifest["preprocessing"]
def features(path):
    y, _ = librosa.load(path, sr=p["sample_rate"])
    n, length = len(y), p["mean_signal_length"]
    if n < length:
        left = (length - n) // 2
        y = np.pad(y, (left, length - n - left))
    else:
        start = (n - length) // 2
        y = y[start:start + length]
    return librosa.feature.mfcc(y=y, sr=p["sample_rate"], n_mfcc=p["n_mfcc"]).T.astype(np.float32)
session = onnxruntime.InferenceSession(os.path.join(folder, manifest["model_file"]))
x = np.load(out + ".x.npy")
np.save(out + ".matrices.npy", session.run(None, {session.get_inputs()[0].name: x})[0])
np.save(out + ".wavs.npy", session.run(None, {session.get_inputs()[0].name: np.stack([features(w) for w in wavs])})[0])
assert not {"tensorflow", "keras", "timnet_keras"} & set(sys.modules), sorted(sys.modules)
"""


@on_emodb
def test_onnx_gives_the_same_probabilities_without_tensorflow(fold_1, keras_probabilities, emodb_features, tmp_path):
    model = exported(fold_1, tmp_path, "onnx")
    out = str(tmp_path / "onnx_out")
    np.save(out + ".x.npy", emodb_features.x)
    wavs = [os.path.join(EMODB_WAV, name) for name in ("03a01Wa.wav", "03a01Nc.wav", "03a01Fa.wav")]
    done = subprocess.run([sys.executable, "-c", CONSUMER, os.path.dirname(model), out, *wavs], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same(np.load(out + ".matrices.npy"), keras_probabilities, 1e-5)
    assert_same(np.load(out + ".wavs.npy"), fold_1.predict_files(wavs), 1e-5)


@on_emodb
def test_export_refuses_an_existing_folder_and_a_run_with_missing_folds(tmp_path, capsys):
    existing = tmp_path / "out"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as stop:
        main(["--mode", "export", "--test_path", EMODB_46, "--data", "EMODB", "--output", str(existing)])
    assert stop.value.code == 2 and "exists; choose another folder or add --overwrite" in capsys.readouterr().err
    assert os.listdir(existing) == ["keep.txt"]

    broken = tmp_path / "run"
    broken.mkdir()
    for name in sorted(os.listdir(EMODB_46))[:9]:  # nine of ten folds, and a run config that says ten
        os.symlink(os.path.join(EMODB_46, name), broken / name)
    from timnet_keras.runs.store import authors_run_config, write_run_config

    config = authors_run_config("EMODB", 10)
    config.n_folds = 10
    write_run_config(str(broken), config)
    assert main(["--mode", "export", "--test_path", str(broken), "--output", str(tmp_path / "new")]) == 2
    assert "the fold count does not match the files" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "new")


@on_emodb
def test_an_unknown_format_is_refused(fold_1, tmp_path):
    with pytest.raises(ExportError, match="choose one of keras, saved_model, tflite, onnx"):
        fold_1.export_bundle(str(tmp_path / "x"), "pickle")
    assert not os.path.exists(tmp_path / "x")


@on_emodb
def test_the_export_mode_writes_the_fold_asked_for_with_its_source(emodb_features, tmp_path, capsys):
    from timnet_keras.model.classifier import TimnetClassifier

    out = tmp_path / "exported"
    assert main(["--mode", "export", "--test_path", EMODB_46, "--data", "EMODB", "--format", "keras", "--fold", "3",
                 "--output", str(out)]) == 0
    assert "exported fold 3 as keras" in capsys.readouterr().out
    manifest = json.load(open(out / MANIFEST))
    assert manifest["ensemble_size"] == 1 and manifest["fold"] == 3 and manifest["source"] == os.path.abspath(EMODB_46)
    x = emodb_features.x[:16]
    expected = TimnetClassifier.from_weights(EMODB_46, corpus="EMODB", fold=3).predict(x, verbose=0)
    assert_same(TimnetClassifier.load(str(out / manifest["model_file"])).predict(x, verbose=0), expected, 1e-5)


# --- the audio-input export: the MFCC recipe inside the graph ---------------------------------

MFCC_ATOL = 2e-3  # the graph's float32 DFT against scipy's float64 one; MFCC values reach about ±660
PROBABILITY_ATOL = 1e-2  # the promise; the figures measured are far below (README)
TINY = ["--epoch", "3", "--dilation_size", "1", "--split_fold", "2", "--batch_size", "8", "--no-xla"]


def graph_mfcc(preprocessor, batch):
    from timnet_keras.model.mfcc_graph import MfccGraph

    layer = MfccGraph(preprocessor.mean_signal_length, preprocessor.sample_rate, preprocessor.n_mfcc)
    return np.asarray(layer(np.asarray(batch, np.float32)))


def test_the_graphs_mfcc_is_the_preprocessors_within_2e_3_for_audio_shorter_and_longer_than_the_corpus_length():
    from timnet_keras.features.demo import synthesize_demo_corpus
    from timnet_keras.features.preprocessor import MfccPreprocessor

    preprocessor = MfccPreprocessor(44100)  # DEMO's 2 s; its utterances last 1 to 3 s
    signals = [signal for _, _, _, signal in synthesize_demo_corpus(12, seed=7)]
    rng = np.random.default_rng(3)
    # odd pads and crops (the extra zero goes right), a length of exactly L, a tiny and a silent signal
    signals += [rng.normal(0, 0.1, n).astype(np.float32) for n in (44099, 44100, 44101, 45003, 2048, 700)]
    signals += [np.zeros(30000, np.float32)]
    assert {len(s) < 44100 for s in signals} == {True, False}
    worst = 0.0
    for signal in signals:
        ours = graph_mfcc(preprocessor, signal[None])[0]
        expected = preprocessor.signal_features(signal)
        assert ours.shape == expected.shape == (87, 39)
        np.testing.assert_allclose(ours, expected, rtol=0, atol=MFCC_ATOL)
        worst = max(worst, float(np.abs(ours - expected).max()))
    print(f"in-graph MFCC vs the preprocessor on {len(signals)} signals: max |difference| {worst:.2g}")


def test_a_batch_of_the_graph_floors_each_recording_at_its_own_maximum_minus_80_db():
    from timnet_keras.features.preprocessor import MfccPreprocessor

    preprocessor = MfccPreprocessor(22050)
    rng = np.random.default_rng(4)
    loud, quiet = rng.normal(0, 0.5, 30000).astype(np.float32), rng.normal(0, 1e-4, 30000).astype(np.float32)
    batch = graph_mfcc(preprocessor, np.stack([loud, quiet]))
    for row, signal in zip(batch, (loud, quiet)):
        np.testing.assert_allclose(row, preprocessor.signal_features(signal), rtol=0, atol=MFCC_ATOL)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A tiny calibrated DEMO run (2 folds, 3 epochs, 1 block): an ensemble whose members have temperatures."""
    from timnet_keras.features.cache import save_feature_cache
    from timnet_keras.features.extract import demo_features

    root = tmp_path_factory.mktemp("demo_run")
    save_feature_cache(str(root / "MFCC" / "DEMO.npz"), demo_features(n_utterances=30))
    flags = ["--mfcc_path", str(root / "MFCC"), "--model_path", str(root / "Models"), "--result_path", str(root / "Results")]
    assert main(["--mode", "train", "--data", "DEMO", "--calibrate", *TINY, *flags]) == 0
    (run,) = glob.glob(str(root / "Models" / "DEMO_*"))
    return run


@pytest.fixture(scope="module")
def demo_wavs(tmp_path_factory):
    """Eight DEMO recordings the run did not train on (another seed): 1 to 3 s at 22 050 Hz, float wav."""
    from timnet_keras.features.demo import write_demo_wavs

    return write_demo_wavs(str(tmp_path_factory.mktemp("demo_wavs")), n_utterances=8, seed=7)


@pytest.fixture(scope="module")
def demo_expected(demo_run, demo_wavs):
    from timnet_keras.model.classifier import TimnetClassifier

    classifier = TimnetClassifier.from_run(demo_run)
    assert classifier.ensemble_size == 2 and all(t != 1.0 for t in classifier.temperatures)
    return classifier, classifier.predict_files(demo_wavs)


def assert_same_labels(probabilities, reference, atol=PROBABILITY_ATOL):
    np.testing.assert_allclose(probabilities, reference, rtol=0, atol=atol)
    assert (np.argmax(probabilities, 1) == np.argmax(reference, 1)).all()


AUDIO_CONSUMER = r"""
import json, os, sys
import numpy as np, onnxruntime, soundfile
folder, out, wavs = sys.argv[1], sys.argv[2], sys.argv[3:]
manifest = json.load(open(os.path.join(folder, "timnet_export.json")))
session = onnxruntime.InferenceSession(os.path.join(folder, manifest["model_file"]))
rows = []
for path in wavs:
    y, rate = soundfile.read(path, dtype="float32")
    assert rate == manifest["preprocessing"]["sample_rate"] and y.ndim == 1
    rows.append(session.run(None, {"audio": y[None]})[0][0])
np.save(out, np.stack(rows))
json.dump(session.get_modelmeta().custom_metadata_map, open(out + ".meta.json", "w"))
assert not {"tensorflow", "keras", "timnet_keras", "librosa"} & set(sys.modules), sorted(sys.modules)
"""


@pytest.mark.slow
def test_the_audio_onnx_export_of_a_calibrated_demo_ensemble_gives_predict_files_labels_without_tensorflow(
        demo_run, demo_wavs, demo_expected, tmp_path, capsys):
    classifier, expected = demo_expected
    out = tmp_path / "audio_onnx"
    assert main(["--mode", "export", "--test_path", demo_run, "--input", "audio", "--output", str(out)]) == 0
    assert "as onnx" in capsys.readouterr().out
    manifest = json.load(open(out / MANIFEST))
    assert manifest["input"] == manifest["input_name"] == "audio" and manifest["input_shape"] == [None, None]
    assert manifest["labels"] == list(classifier.labels) and manifest["ensemble_size"] == 2
    assert manifest["temperatures"] == pytest.approx(list(classifier.temperatures))
    assert manifest["preprocessing"]["sample_rate"] == 22050 and manifest["preprocessing"]["mean_signal_length"] == 44100
    assert sorted(os.listdir(out)) == sorted([MANIFEST, "model.onnx"])
    result = str(tmp_path / "probabilities.npy")
    done = subprocess.run([sys.executable, "-c", AUDIO_CONSUMER, str(out), result, *demo_wavs], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    probabilities = np.load(result)
    assert_same_labels(probabilities, expected)
    print(f"DEMO, 2-fold calibrated ensemble, ONNX: max |p - predict_files| {np.abs(probabilities - expected).max():.2g}")
    metadata = {key: json.loads(value) for key, value in json.load(open(result + ".meta.json")).items()}
    assert metadata == {"labels": list(classifier.labels), "input": "audio", "sample_rate": 22050,
                        "mean_signal_length": 44100, "n_mfcc": 39}


@pytest.mark.slow
def test_the_audio_saved_model_replaces_an_earlier_export_of_ours_and_gives_predict_files_probabilities(
        demo_run, demo_wavs, demo_expected, tmp_path):
    import soundfile
    import tensorflow as tf

    classifier, expected = demo_expected
    out = tmp_path / "exported"
    assert main(["--mode", "export", "--test_path", demo_run, "--format", "keras", "--output", str(out)]) == 0
    assert main(["--mode", "export", "--test_path", demo_run, "--format", "saved_model", "--input", "audio",
                 "--output", str(out), "--overwrite"]) == 0
    assert sorted(os.listdir(out)) == sorted([MANIFEST, "saved_model"]) and not glob.glob(str(tmp_path / ".exported*"))
    served = tf.saved_model.load(str(out / "saved_model"))
    probabilities = np.concatenate([served.serve(soundfile.read(w, dtype="float32")[0][None]).numpy() for w in demo_wavs])
    assert_same_labels(probabilities, expected)
    metadata = served.metadata()
    assert [label.decode() for label in metadata["labels"].numpy()] == list(classifier.labels)
    assert int(metadata["sample_rate"]) == 22050 and metadata["input"].numpy() == b"audio"


@pytest.mark.slow
def test_the_audio_tflite_export_gives_predict_files_labels(demo_wavs, demo_expected, tmp_path):
    import soundfile
    import tensorflow as tf

    classifier, expected = demo_expected
    manifest = classifier.export_bundle(str(tmp_path / "tflite"), "tflite", input="audio")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's notice that it moves to ai_edge_litert
        interpreter = tf.lite.Interpreter(model_path=str(tmp_path / "tflite" / manifest.model_file))
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for path in demo_wavs:
        y = soundfile.read(path, dtype="float32")[0][None]
        interpreter.resize_tensor_input(source["index"], y.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], y)
        interpreter.invoke()
        rows.append(interpreter.get_tensor(target["index"]))
    assert_same_labels(np.concatenate(rows), expected)


def test_an_audio_input_keras_file_is_refused_in_one_line_before_any_model_is_read(tmp_path, capsys):
    assert main(["--mode", "export", "--test_path", str(tmp_path / "no_run"), "--format", "keras", "--input", "audio",
                 "--output", str(tmp_path / "e")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --input audio exports a graph with the MFCC inside") and "--input mfcc" in line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv,words", [
    (["--mode", "export", "--input", "wav"], "argument --input: invalid choice: 'wav'"),
    (["--mode", "predict", "--wav", "x.wav", "--input", "audio"], "--input applies to --mode export, not --mode predict"),
])
def test_input_takes_mfcc_or_audio_and_belongs_to_export_mode(argv, words, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--test_path", str(tmp_path), "--output", str(tmp_path / "e")])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and line.startswith("error: ") and words in line


@on_emodb
@needs_emodb
def test_the_audio_exports_of_the_authors_fold_1_give_predict_files_labels_on_emodb(fold_1, tmp_path):
    """Every twentieth Emo-DB recording (27), loaded as librosa.load(path, sr=22050) does; all 535 with the
    ten-fold ensemble: benchmarks/audio_export_parity.py (README)."""
    import onnxruntime
    import tensorflow as tf

    from timnet_keras.features.mfcc import load

    wavs = sorted(glob.glob(os.path.join(EMODB_WAV, "*.wav")))[::20]
    expected = fold_1.predict_files(wavs)
    signals = [load(path) for path in wavs]  # timnet_keras.features.mfcc.load is librosa.load(path, sr=22050) bit for bit
    onnx_dir, saved_dir = str(tmp_path / "onnx"), str(tmp_path / "saved_model")
    fold_1.export_bundle(onnx_dir, "onnx", input="audio", fold=1)
    fold_1.export_bundle(saved_dir, "saved_model", input="audio", fold=1)
    session = onnxruntime.InferenceSession(os.path.join(onnx_dir, "model.onnx"))
    onnx = np.concatenate([session.run(None, {"audio": y[None]})[0] for y in signals])
    served = tf.saved_model.load(os.path.join(saved_dir, "saved_model"))
    saved = np.concatenate([served.serve(y[None]).numpy() for y in signals])
    for probabilities in (onnx, saved):
        assert_same_labels(probabilities, expected)
    print(f"Emo-DB fold 1, {len(wavs)} recordings: max |p - predict_files| ONNX {np.abs(onnx - expected).max():.2g}, "
          f"SavedModel {np.abs(saved - expected).max():.2g}")
