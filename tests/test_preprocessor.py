"""MfccPreprocessor: the authors' exact MFCCs, the length rule, resampling, bad files, config."""
import numpy as np
import pytest
import soundfile

from conftest import needs_emodb
from timnet_keras.features.preprocessor import BadAudioError, MfccPreprocessor, fit_length, frames_for


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


def test_every_signal_length_gives_the_frames_the_model_expects(rng):
    preprocessor = MfccPreprocessor(30000)
    for n in (2048, 29999, 30000, 70001):
        assert preprocessor.signal_features(rng.normal(size=n).astype(np.float32)).shape == (frames_for(30000), 39)


def test_stereo_48k_input_is_down_mixed_and_resampled_as_librosa_does(tmp_path, rng):
    import librosa

    stereo = (0.1 * rng.normal(size=(48000, 2))).astype(np.float32)
    path = str(tmp_path / "neu-f1-b1.wav")
    soundfile.write(path, stereo, 48000, subtype="FLOAT")
    ours = MfccPreprocessor(22050).load(path)
    expected = librosa.resample(stereo.mean(axis=1), orig_sr=48000, target_sr=22050, res_type="soxr_hq")
    assert ours.ndim == 1 and len(ours) == 22050
    np.testing.assert_allclose(ours, expected, atol=1e-6)


def test_a_signal_in_memory_gives_the_same_features_as_its_file(tmp_path, rng):
    stereo = (0.1 * rng.normal(size=(2, 40000))).astype(np.float32)  # librosa's (channels, samples)
    path = str(tmp_path / "x.wav")
    soundfile.write(path, stereo.T, 16000, subtype="FLOAT")
    preprocessor = MfccPreprocessor(44100)
    np.testing.assert_allclose(preprocessor([stereo], sample_rate=16000), preprocessor([path]), atol=1e-4)


@pytest.mark.parametrize("content,message", [(b"", "empty file"), (b"this is not audio at all" * 10, "not readable as audio")])
def test_empty_and_non_audio_files_are_named_in_the_error(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(BadAudioError, match=message) as error:
        MfccPreprocessor(96000).file_features(str(path))
    assert str(path) in str(error.value)


def test_a_file_shorter_than_one_frame_is_refused(tmp_path):
    path = str(tmp_path / "short.wav")
    soundfile.write(path, np.zeros(500, np.float32), 22050)
    with pytest.raises(BadAudioError, match="shorter than one 2048-sample analysis frame"):
        MfccPreprocessor(96000).file_features(path)


def test_config_round_trip_and_settings_name_the_resampler():
    preprocessor = MfccPreprocessor(88000, n_mfcc=20)
    assert MfccPreprocessor.from_config(preprocessor.get_config()) == preprocessor
    assert MfccPreprocessor.from_settings(preprocessor.settings()) == preprocessor
    assert "soxr_hq" in preprocessor.settings()["resampler"]


from hypothesis import given, strategies as st  # noqa: E402


@given(st.integers(0, 400), st.integers(1, 400))
def test_fit_length_always_gives_the_length_and_keeps_the_signal_centred(n, length):
    signal = np.arange(1, n + 1, dtype=np.float32)
    fitted = fit_length(signal, length)
    assert len(fitted) == length
    kept = fitted[fitted != 0]
    if n <= length:  # padded: the whole signal, left pad never longer than the right one
        np.testing.assert_array_equal(kept, signal)
        left = int(np.argmax(fitted != 0)) if n else length // 2
        assert 0 <= (length - n - left) - left <= 1
    else:  # cropped: a contiguous middle stretch
        start = int(kept[0]) - 1
        assert np.array_equal(kept, signal[start : start + length]) and start == (n - length) // 2
