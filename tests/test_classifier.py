"""TimnetClassifier: head, fold ensembles, audio in, `.keras` files, the authors' weights. Also run with KERAS_BACKEND=jax."""
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import soundfile

from conftest import EMODB_46, EMODB_WAV, REPO, needs_emodb, needs_emodb_46
from timnet_keras.model.backbone import VARIANTS, TimnetBackbone
from timnet_keras.model.classifier import TimnetClassifier
from timnet_keras.features.demo import write_demo_wavs
from timnet_keras.features.preprocessor import MfccPreprocessor

pytestmark = pytest.mark.both_backends


def small(ensemble_size=1, **kwargs):
    return TimnetClassifier(TimnetBackbone(frames=44, num_blocks=3), 4, labels=("angry", "happy", "neutral", "sad"),
                            preprocessor=MfccPreprocessor(22050), ensemble_size=ensemble_size, **kwargs)


def test_emodb_classifier_has_exactly_106992_parameters():
    assert TimnetClassifier(TimnetBackbone(frames=188), 7).count_params() == 106_992


def test_an_ensemble_averages_its_members_probabilities(rng):
    classifier = small(ensemble_size=3)
    x = rng.normal(size=(5, 44, 39)).astype("float32")
    members = [np.asarray(head(backbone(x, training=False))) for backbone, head in classifier.members]
    assert len(members) == 3 and not np.allclose(members[0], members[1])
    np.testing.assert_allclose(classifier.predict(x, verbose=0), np.mean(members, axis=0), rtol=1e-5, atol=1e-6)
    # predict runs the members through one scratch model: the classifier's own weights stay its members'
    assert len(classifier.weights) == 3 * len(small().weights)
    np.testing.assert_allclose(np.asarray(classifier(x, training=False)), np.mean(members, axis=0), rtol=1e-5, atol=1e-6)


def test_keras_file_round_trip_keeps_preprocessor_labels_and_predictions_from_audio(tmp_path):
    classifier = small(ensemble_size=2)
    wavs = write_demo_wavs(str(tmp_path / "wavs"), n_utterances=4)
    before = classifier.predict_files(wavs)
    path = str(tmp_path / "clf.keras")
    classifier.save(path)
    loaded = TimnetClassifier.load(path)
    assert loaded.labels == classifier.labels and loaded.preprocessor == classifier.preprocessor
    assert loaded.ensemble_size == 2
    np.testing.assert_array_equal(loaded.predict_files(wavs), before)


def test_predict_signals_at_another_rate_equals_predicting_the_written_file(tmp_path, rng):
    classifier = small()
    signal = (0.1 * rng.normal(size=16000)).astype(np.float32)
    path = str(tmp_path / "a.wav")
    soundfile.write(path, signal, 16000, subtype="FLOAT")
    np.testing.assert_allclose(classifier.predict_signals([signal], sample_rate=16000), classifier.predict_files([path]),
                               atol=1e-6)


def test_a_classifier_without_preprocessor_says_how_to_predict():
    classifier = TimnetClassifier(TimnetBackbone(frames=44, num_blocks=2), 4)
    with pytest.raises(ValueError, match="MfccPreprocessor"):
        classifier.predict_files(["a.wav"])


def test_load_refuses_a_keras_file_that_is_not_a_classifier(tmp_path):
    path = str(tmp_path / "other.keras")
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(path)
    with pytest.raises(ValueError, match="not a TimnetClassifier"):
        TimnetClassifier.load(path)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_trains_a_step(variant, rng):
    classifier = TimnetClassifier(TimnetBackbone(frames=32, num_blocks=3, variant=variant), 3)
    classifier.compile(optimizer="adam", loss="categorical_crossentropy", run_eagerly=True)  # no tracing: seconds, not half a minute
    x = rng.normal(size=(8, 32, 39)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 8)]
    before = [np.asarray(w).copy() for w in classifier.trainable_weights]
    assert np.isfinite(classifier.train_on_batch(x, y))
    assert any(not np.array_equal(b, np.asarray(w)) for b, w in zip(before, classifier.trainable_weights))


@needs_emodb
@needs_emodb_46
@pytest.mark.shared
def test_authors_weights_predict_from_audio_in_a_fresh_interpreter_with_no_feature_cache(tmp_path):
    files = [os.path.join(EMODB_WAV, name) for name in ("03a01Wa.wav", "03a01Nc.wav", "03a01Fa.wav")]
    script = ("import sys; from timnet_keras import TimnetClassifier\n"
              "clf = TimnetClassifier.from_weights(sys.argv[1], corpus='EMODB')\n"
              "print(clf.predicted_labels(clf.predict_files(sys.argv[2:])))\n")
    done = subprocess.run([sys.executable, "-c", script, EMODB_46, *files], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['angry', 'neutral', 'happy']"  # W, N, F in Emo-DB's names
    assert os.listdir(tmp_path) == []  # no MFCC/ folder needed, none written
