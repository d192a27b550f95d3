"""timnet_keras.features.mfcc: librosa's load and MFCC to the last bit, without librosa's import cost."""
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from conftest import REPO, SHARED
from timnet_keras.features import mfcc

librosa = pytest.importorskip("librosa")


def test_window_is_scipys_periodic_hann():
    import scipy.signal

    for n_fft in (2048, 512, 4):
        np.testing.assert_array_equal(mfcc.hann_window(n_fft), scipy.signal.get_window("hann", n_fft, fftbins=True))


@pytest.mark.parametrize("sample_rate", [22050, 16000, 8000, 44100, 48000])
def test_mel_filters_are_librosas_bit_for_bit(sample_rate):
    ours = mfcc.mel_filterbank(sample_rate, 2048)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, librosa.filters.mel(sr=sample_rate, n_fft=2048))


@pytest.mark.parametrize("length", [1000, 2048, 2049, 3000, 22050, 96000, 300001])
def test_mfccs_are_librosas_bit_for_bit_for_any_length(length, rng):
    signal = (0.3 * rng.normal(size=length)).astype(np.float32)
    signal[: length // 3] *= 1e-6  # a quiet stretch: the 80 dB floor must clip the same cells
    np.testing.assert_array_equal(mfcc.mfcc(signal), librosa.feature.mfcc(y=signal, sr=22050, n_mfcc=39))


def test_silence_gives_librosas_floor():
    silence = np.zeros(22050, np.float32)
    np.testing.assert_array_equal(mfcc.mfcc(silence), librosa.feature.mfcc(y=silence, sr=22050, n_mfcc=39))


@pytest.mark.parametrize("rate,channels,subtype,ext", [
    (16000, 1, "PCM_16", "wav"),   # Emo-DB's format
    (48000, 2, "FLOAT", "wav"),    # stereo, downsampled
    (22050, 1, "PCM_24", "flac"),  # already at our rate: no resampling
    (8000, 1, "PCM_16", "flac"),   # upsampled almost 3x
    (44100, 6, "PCM_16", "wav"),   # more than two channels
    (16000, 1, "PCM_U8", "wav"),   # 8-bit unsigned
    (48000, 2, "VORBIS", "ogg"),   # lossy formats decode through the same soundfile call
    (44100, 1, "MPEG_LAYER_III", "mp3"),
    (16000, 1, "PCM_16", "aiff"),
])
def test_loading_is_librosa_load_bit_for_bit(tmp_path, rng, rate, channels, subtype, ext):
    if subtype not in soundfile.available_subtypes():
        pytest.skip(f"this libsndfile ({soundfile.__libsndfile_version__}) cannot write {subtype}")
    path = str(tmp_path / f"x.{ext}")
    soundfile.write(path, (0.2 * rng.normal(size=(int(rate * 1.3), channels))).astype(np.float32), rate, subtype=subtype)
    ours, theirs = mfcc.load(path), librosa.load(path)[0]
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)


def test_non_finite_audio_is_refused_as_librosa_does():
    signal = np.ones(4096, np.float32)
    signal[100] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        mfcc.mfcc(signal)


def _corpus_sample():
    corpora = os.path.join(SHARED, "corpora")
    files = sorted(glob.glob(os.path.join(corpora, "EMODB", "wav", "*.wav")))[::5]
    for name in ("CASIA", "EMOVO"):
        files += sorted(glob.glob(os.path.join(corpora, name, "**", "*.flac"), recursive=True))[::25]
    return files


@pytest.mark.shared
def test_corpus_files_give_librosas_features_bit_for_bit():
    files = _corpus_sample()
    if not files:
        pytest.skip(f"no corpora under {SHARED}")
    differ = []
    for path in files:
        ours, theirs = mfcc.load(path), librosa.load(path)[0]
        if not np.array_equal(ours, theirs):
            differ.append(f"load {path}")
            continue
        if not np.array_equal(mfcc.mfcc(ours), librosa.feature.mfcc(y=theirs, sr=22050, n_mfcc=39)):
            differ.append(f"mfcc {path}")
    assert not differ, f"{len(differ)} of {len(files)} files differ from librosa: {differ[:3]}"


def test_extraction_never_imports_librosa_or_scipy_signal(tmp_path, rng):
    """The point of the module: an extraction worker starts in a fraction of a second."""
    path = str(tmp_path / "x.wav")
    soundfile.write(path, (0.2 * rng.normal(size=20000)).astype(np.float32), 16000)
    script = ("import sys\nfrom timnet_keras.features.preprocessor import MfccPreprocessor\n"
              f"assert MfccPreprocessor(22050)([{path!r}]).shape == (1, 44, 39)\n"
              "print(sorted(m for m in ('librosa', 'scipy.signal', 'numba', 'keras') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
