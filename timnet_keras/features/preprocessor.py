"""Audio -> the (frames, 39) MFCC matrix TIM-Net eats, exactly as the authors: `MfccPreprocessor`.

librosa's default load (mono, 22 050 Hz, default resampler), centre pad or
crop to `mean_signal_length`, `librosa.feature.mfcc(n_mfcc=39)` with every
other default. The resampler matters: another one costs the released EMODB
weights up to 15 points of accuracy (REFERENCE.md), so nothing here departs
from librosa's defaults. `mfcc.py` computes that recipe bit for bit without
librosa's second of import time. Extraction, prediction and the classifier
all use this one object. No Keras here: extraction must not pay for a backend.

`normalise` (`none`, `utterance`, `speaker`; see `timnet_keras.features.normalise`) is
the run's feature normalisation: `signal_features`/`file_features` always give
the raw matrix (what the cache holds), and a batch through `__call__` or
`normalised` is normalised the run's way.
"""
import os

import numpy as np

from timnet_keras.errors import InputError, TimnetError
from timnet_keras.features import mfcc
from timnet_keras.config import DEFAULT_NORMALISE, HOP_LENGTH, N_FFT, N_MFCC, SAMPLE_RATE


class BadAudioError(TimnetError):
    """An input file that cannot become features; the message names the file."""


def fit_length(signal, length):
    """Centre pad with zeros or centre crop to `length` samples (the authors' rule).

    Example:
        >>> fit_length(np.arange(1, 6), 8).tolist(), fit_length(np.arange(1, 6), 3).tolist()
        ([0, 1, 2, 3, 4, 5, 0, 0], [2, 3, 4])
    """
    n = len(signal)
    if n < length:
        pad = length - n
        left = pad // 2
        return np.pad(signal, (left, left + pad % 2), "constant")
    start = (n - length) // 2
    return signal[start : start + length]


def frames_for(length):
    """MFCC frames of a signal of `length` samples (librosa's centred STFT).

    Example:
        >>> frames_for(96000)
        188
    """
    return 1 + length // HOP_LENGTH


def mfcc_matrix(signal, sample_rate=SAMPLE_RATE, n_mfcc=N_MFCC):
    """librosa's default MFCCs, as (frames, n_mfcc) float32."""
    return np.ascontiguousarray(mfcc.mfcc(signal, sample_rate, n_mfcc).T, dtype=np.float32)


class MfccPreprocessor:
    """Signals or audio files in, TIM-Net's (frames, n_mfcc) float32 MFCCs out.

    Args:
        mean_signal_length: samples every signal is centre padded or cropped to
            (the corpus table's value; EMODB 96 000 gives 188 frames).
        sample_rate: rate signals are resampled to before the MFCC (22 050, librosa's default).
        n_mfcc: coefficients per frame (39).
        normalise: the run's feature normalisation, "none" (the authors'), "utterance" or "speaker"
            (`timnet_keras.features.normalise`); applied by `__call__` and `normalised`, never by `signal_features`.

    Example:
        >>> preprocessor = MfccPreprocessor(mean_signal_length=22050)
        >>> preprocessor.frames
        44
        >>> preprocessor([np.zeros(16000, "float32")], sample_rate=16000).shape
        (1, 44, 39)
    """

    def __init__(self, mean_signal_length, sample_rate=SAMPLE_RATE, n_mfcc=N_MFCC, normalise=DEFAULT_NORMALISE):
        from timnet_keras.features.normalise import check_normalise

        self.mean_signal_length = int(mean_signal_length)
        self.sample_rate = int(sample_rate)
        self.n_mfcc = int(n_mfcc)
        self.normalise = check_normalise(normalise, "normalise")

    @property
    def frames(self):
        return frames_for(self.mean_signal_length)

    def load(self, path):
        """librosa's default load at our rate; BadAudioError names the file."""
        if not os.path.isfile(path):
            raise BadAudioError(f"{path}: no such file")
        if os.path.getsize(path) == 0:
            raise BadAudioError(f"{path}: empty file")
        try:
            signal = mfcc.load(path, self.sample_rate)
        except Exception as error:  # soundfile/audioread raise many types
            raise BadAudioError(f"{path}: not readable as audio ({type(error).__name__}: {error})") from None
        if signal.size < N_FFT:
            raise BadAudioError(f"{path}: {signal.size} samples, shorter than one {N_FFT}-sample analysis frame")
        return signal

    def resample(self, signal, sample_rate):
        """A signal at `sample_rate` as load would give it: checked and made float mono by `inputs.audio_array`."""
        from timnet_keras.inputs import audio_array

        resampled = mfcc.resample(audio_array(signal, sample_rate), sample_rate, self.sample_rate)
        if resampled.size < N_FFT:  # as load refuses a file this short
            raise InputError(f"a signal of {resampled.size} samples at {self.sample_rate} Hz is shorter than one "
                             f"{N_FFT}-sample analysis frame")
        return resampled

    def signal_features(self, signal):
        """One signal already at our sample rate -> (frames, n_mfcc)."""
        return mfcc_matrix(fit_length(signal, self.mean_signal_length), self.sample_rate, self.n_mfcc)

    def file_features(self, path):
        return self.signal_features(self.load(path))

    def raw(self, inputs, sample_rate=None):
        """The raw batch (n, frames, n_mfcc) of file paths, or of signals at `sample_rate` (default ours)."""
        rows = []
        for item in inputs:
            if isinstance(item, (str, os.PathLike)):
                rows.append(self.file_features(os.fspath(item)))
            else:
                rows.append(self.signal_features(self.resample(item, self.sample_rate if sample_rate is None else sample_rate)))
        return np.stack(rows) if rows else np.zeros((0, self.frames, self.n_mfcc), np.float32)

    def __call__(self, inputs, sample_rate=None, statistics=None):
        """A batch (n, frames, n_mfcc) of file paths, or of signals at `sample_rate` (default ours), normalised
        the run's way (`normalised`; `statistics`: a speaker's enrolment)."""
        return self.normalised(self.raw(inputs, sample_rate), statistics)

    def normalised(self, x, statistics=None):
        """A raw batch (n, frames, n_mfcc) normalised the run's way: `none` returns x itself.

        `speaker` uses `statistics` (a `normalise.Statistics`, e.g. of an enrolment folder) or, when
        None, the statistics of the batch itself: its recordings are taken to be one speaker's.
        """
        from timnet_keras.features.normalise import frame_statistics, utterance_normalised

        if self.normalise == "none" or not len(x):
            return x
        if self.normalise == "utterance":
            return utterance_normalised(x)
        return (statistics or frame_statistics(x, f"the {len(x)} recordings given together")).apply(x)

    def settings(self):
        """Every setting the features depend on, with the library versions, for the cache."""
        from importlib.metadata import version

        return {
            "sample_rate": self.sample_rate,
            "mean_signal_length": self.mean_signal_length,
            "n_mfcc": self.n_mfcc,
            "n_fft": N_FFT,
            "hop_length": HOP_LENGTH,
            "resampler": "librosa default (soxr_hq)",
            "mfcc": "timnet_keras.features.mfcc: librosa 0.11's load and mfcc recipe, bit for bit",
            "librosa_version": version("librosa"),
            "soxr_version": version("soxr"),
        }

    def get_config(self):
        config = {"mean_signal_length": self.mean_signal_length, "sample_rate": self.sample_rate, "n_mfcc": self.n_mfcc}
        return config if self.normalise == DEFAULT_NORMALISE else {**config, "normalise": self.normalise}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_settings(cls, settings, normalise=DEFAULT_NORMALISE):
        """The preprocessor that made a feature cache or a run (its stored settings), with the run's `normalise`."""
        return cls(settings["mean_signal_length"], settings.get("sample_rate", SAMPLE_RATE), settings.get("n_mfcc", N_MFCC),
                   normalise)

    def __eq__(self, other):
        return isinstance(other, MfccPreprocessor) and self.get_config() == other.get_config()

    def __repr__(self):
        normalise = "" if self.normalise == DEFAULT_NORMALISE else f", normalise={self.normalise!r}"
        return (f"MfccPreprocessor(mean_signal_length={self.mean_signal_length}, sample_rate={self.sample_rate}, "
                f"n_mfcc={self.n_mfcc}{normalise})")
