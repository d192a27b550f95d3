"""Export: the authors' EMODB_46 fold-1 model in every format gives the Keras model's probabilities.

The ONNX check runs in a child process that imports neither TensorFlow nor
Keras nor this package: it makes the features from the wav files with
librosa alone, following the exported `timnet_export.json`, as a consumer
of the README's snippet would.
"""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import EMODB_46, EMODB_WAV, needs_emodb_46
from timnet_keras.cli import main
from timnet_keras.export import ExportError, FORMATS, MANIFEST

pytestmark = [needs_emodb_46, pytest.mark.slow]


@pytest.fixture(scope="module")
def fold_1():
    from timnet_keras.classifier import TimnetClassifier

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


def test_keras_file_gives_the_same_probabilities(fold_1, keras_probabilities, emodb_features, tmp_path):
    from timnet_keras.classifier import TimnetClassifier

    again = TimnetClassifier.load(exported(fold_1, tmp_path, "keras"))
    assert_same(again.predict(emodb_features.x, verbose=0), keras_probabilities, 1e-5)


def test_saved_model_gives_the_same_probabilities(fold_1, keras_probabilities, emodb_features, tmp_path):
    import tensorflow as tf

    served = tf.saved_model.load(exported(fold_1, tmp_path, "saved_model"))
    probabilities = np.concatenate([served.serve(emodb_features.x[i:i + 128]).numpy() for i in range(0, 535, 128)])
    assert_same(probabilities, keras_probabilities, 1e-5)


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
    from timnet_keras.run_store import authors_run_config, write_run_config

    config = authors_run_config("EMODB", 10)
    config.n_folds = 10
    write_run_config(str(broken), config)
    assert main(["--mode", "export", "--test_path", str(broken), "--output", str(tmp_path / "new")]) == 2
    assert "the fold count does not match the files" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "new")


def test_an_unknown_format_is_refused(fold_1, tmp_path):
    with pytest.raises(ExportError, match="choose one of keras, saved_model, tflite, onnx"):
        fold_1.export_bundle(str(tmp_path / "x"), "pickle")
    assert not os.path.exists(tmp_path / "x")


def test_the_export_mode_writes_the_fold_asked_for_with_its_source(emodb_features, tmp_path, capsys):
    from timnet_keras.classifier import TimnetClassifier

    out = tmp_path / "exported"
    assert main(["--mode", "export", "--test_path", EMODB_46, "--data", "EMODB", "--format", "keras", "--fold", "3",
                 "--output", str(out)]) == 0
    assert "exported fold 3 as keras" in capsys.readouterr().out
    manifest = json.load(open(out / MANIFEST))
    assert manifest["ensemble_size"] == 1 and manifest["fold"] == 3 and manifest["source"] == os.path.abspath(EMODB_46)
    x = emodb_features.x[:16]
    expected = TimnetClassifier.from_weights(EMODB_46, corpus="EMODB", fold=3).predict(x, verbose=0)
    assert_same(TimnetClassifier.load(str(out / manifest["model_file"])).predict(x, verbose=0), expected, 1e-5)
