"""Features: the authors' exact MFCCs, the length rule, bad input, and the cache."""
import os

import numpy as np
import pytest
import soundfile

from conftest import needs_emodb
from timnet_keras.cache import CacheError, FeatureSet, load_feature_cache, one_hot, save_feature_cache
from timnet_keras.features import BadAudioError, extract_features, file_features, fit_length, load_signal


@needs_emodb
@pytest.mark.shared
def test_emodb_features_are_the_authors(emodb_features):
    x = emodb_features.x
    assert x.shape == (535, 188, 39) and x.dtype == np.float32
    assert abs(float(x.mean()) - -8.0481) < 5e-4
    assert abs(float(x.std()) - 68.0865) < 5e-4
    counts = dict(zip(emodb_features.labels, emodb_features.y.sum(axis=0).astype(int)))
    assert counts == {"angry": 127, "boredom": 81, "disgust": 46, "fear": 69, "happy": 71, "neutral": 79, "sad": 62}


def test_centre_pad_and_crop_follow_the_authors_rule():
    signal = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(signal, 8), [0, 1, 2, 3, 4, 5, 0, 0])  # left 1, right 2
    np.testing.assert_array_equal(fit_length(signal, 3), [2, 3, 4])  # start (5 - 3) // 2
    np.testing.assert_array_equal(fit_length(signal, 5), signal)


def test_stereo_48k_input_is_down_mixed_and_resampled_as_librosa_does(tmp_path, rng):
    import librosa

    stereo = (0.1 * rng.normal(size=(48000, 2))).astype(np.float32)
    path = str(tmp_path / "neu-f1-b1.wav")
    soundfile.write(path, stereo, 48000, subtype="FLOAT")
    ours = load_signal(path)
    expected = librosa.resample(stereo.mean(axis=1), orig_sr=48000, target_sr=22050, res_type="soxr_hq")
    assert ours.ndim == 1 and len(ours) == 22050
    np.testing.assert_allclose(ours, expected, atol=1e-6)


@pytest.mark.parametrize("content,message", [(b"", "empty file"), (b"this is not audio at all" * 10, "not readable as audio")])
def test_empty_and_non_audio_files_are_named_in_the_error(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(BadAudioError, match=message) as error:
        file_features(str(path), 96000)
    assert str(path) in str(error.value)


def test_a_file_shorter_than_one_frame_is_refused(tmp_path):
    path = str(tmp_path / "short.wav")
    soundfile.write(path, np.zeros(500, np.float32), 22050)
    with pytest.raises(BadAudioError, match="shorter than one 2048-sample analysis frame"):
        file_features(path, 96000)


def test_skip_bad_leaves_bad_files_out_and_reports_them(tmp_path, rng):
    good = str(tmp_path / "good.wav")
    soundfile.write(good, (0.1 * rng.normal(size=22050)).astype(np.float32), 22050, subtype="FLOAT")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"")
    with pytest.raises(BadAudioError, match="--skip-bad"):
        extract_features([good, str(bad)], 22050, workers=1)
    x, kept, errors = extract_features([good, str(bad)], 22050, workers=1, skip_bad=True)
    assert kept == [0] and len(x) == 1 and "empty file" in errors[0]


def test_parallel_extraction_equals_serial(tmp_path, rng):
    paths = []
    for i in range(6):
        paths.append(str(tmp_path / f"{i}.wav"))
        soundfile.write(paths[-1], (0.1 * rng.normal(size=16000 + 1000 * i)).astype(np.float32), 16000, subtype="FLOAT")
    serial, _, _ = extract_features(paths, 30000, workers=1)
    parallel, _, _ = extract_features(paths, 30000, workers=2)
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


def _features(n=6):
    return FeatureSet(np.ones((n, 5, 39), np.float32), one_hot([0, 1] * (n // 2), 2), ("a", "b"),
                      tuple(f"f{i}.wav" for i in range(n)), tuple("s1" for _ in range(n)), {"mean_signal_length": 2048})


def test_cache_round_trip_loads_without_pickle(tmp_path):
    path = str(tmp_path / "X.npz")
    save_feature_cache(path, _features())
    loaded = load_feature_cache(path)
    assert loaded.labels == ("a", "b") and loaded.paths[2] == "f2.wav" and loaded.settings["mean_signal_length"] == 2048
    np.testing.assert_array_equal(loaded.x, _features().x)


def test_an_interrupted_cache_write_leaves_nothing(tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        save_feature_cache(str(tmp_path / "X.npz"), _features())
    assert os.listdir(tmp_path) == []


def test_the_authors_pickled_npy_needs_allow_pickle(tmp_path):
    np.save(tmp_path / "EMODB.npy", {"x": np.zeros((2, 3, 39)), "y": np.eye(7)[:2]}, allow_pickle=True)
    with pytest.raises(CacheError, match="--allow-pickle"):
        load_feature_cache(str(tmp_path / "EMODB.npz"))
    loaded = load_feature_cache(str(tmp_path / "EMODB.npz"), labels=("a", "b", "c", "d", "e", "f", "g"), allow_pickle=True)
    assert loaded.x.shape == (2, 3, 39) and loaded.labels[0] == "a"
