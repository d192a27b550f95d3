"""Audio -> the (frames, 39) MFCC matrix TIM-Net eats, exactly as the authors.

librosa's default load (mono, 22 050 Hz, default resampler), centre pad or
crop to `mean_signal_length`, `librosa.feature.mfcc(n_mfcc=39)` with every
other default. The resampler matters: another one costs the released EMODB
weights up to 15 points of accuracy (REFERENCE.md), so nothing here departs
from librosa's defaults.
"""
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from .config import HOP_LENGTH, N_FFT, N_MFCC, SAMPLE_RATE

# `--mean_signal_length auto` takes this percentile of the corpus' durations:
# long enough to keep most of nearly every utterance, without padding
# every sample to the longest outlier.
AUTO_LENGTH_PERCENTILE = 75


class BadAudioError(ValueError):
    """An input file that cannot become features; the message names the file."""


def _librosa():
    import librosa  # imported lazily: it takes a second and workers import it once

    return librosa


def load_signal(path, sample_rate=SAMPLE_RATE):
    """librosa's default load; raises BadAudioError naming the file."""
    if not os.path.isfile(path):
        raise BadAudioError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise BadAudioError(f"{path}: empty file")
    try:
        signal, _ = _librosa().load(path, sr=sample_rate)
    except Exception as error:  # soundfile/audioread raise many types
        raise BadAudioError(f"{path}: not readable as audio ({type(error).__name__}: {error})") from None
    if signal.size < N_FFT:
        raise BadAudioError(
            f"{path}: {signal.size} samples, shorter than one {N_FFT}-sample analysis frame"
        )
    return signal


def fit_length(signal, length):
    """Centre pad with zeros or centre crop to `length` samples (the authors' rule)."""
    n = len(signal)
    if n < length:
        pad = length - n
        left = pad // 2
        return np.pad(signal, (left, left + pad % 2), "constant")
    start = (n - length) // 2
    return signal[start : start + length]


def mfcc_matrix(signal, sample_rate=SAMPLE_RATE, n_mfcc=N_MFCC):
    """librosa MFCCs with defaults, as (frames, n_mfcc) float32."""
    mfcc = _librosa().feature.mfcc(y=signal, sr=sample_rate, n_mfcc=n_mfcc)
    return np.ascontiguousarray(mfcc.T, dtype=np.float32)


def frames_for(length):
    """Number of MFCC frames a signal of `length` samples gives (centred STFT)."""
    return 1 + length // HOP_LENGTH


def file_features(path, mean_signal_length):
    """One file's features: load, fit length, MFCC."""
    return mfcc_matrix(fit_length(load_signal(path), mean_signal_length))


def feature_settings(mean_signal_length):
    """Every setting the features depend on, with the library versions, for the cache."""
    import soxr

    librosa = _librosa()
    return {
        "sample_rate": SAMPLE_RATE,
        "mean_signal_length": int(mean_signal_length),
        "n_mfcc": N_MFCC,
        "n_fft": N_FFT,
        "hop_length": HOP_LENGTH,
        "resampler": "librosa default (soxr_hq)",
        "librosa_version": librosa.__version__,
        "soxr_version": soxr.__version__,
    }


def _init_worker():
    # One BLAS thread per worker: the workers already fill the cores, and
    # oversubscribed BLAS threads made extraction five times slower.
    from threadpoolctl import threadpool_limits

    global _THREAD_LIMIT
    _THREAD_LIMIT = threadpool_limits(1)
    mfcc_matrix(np.zeros(N_FFT, np.float32))  # librosa's lazy imports, once per worker


def _features_or_error(args):
    path, length = args
    try:
        return file_features(path, length), None
    except BadAudioError as error:
        return None, str(error)


def _duration_or_error(path):
    try:
        return len(load_signal(path)), None
    except BadAudioError as error:
        return None, str(error)


def _map(function, items, workers, desc):
    from tqdm import tqdm

    workers = max(1, min(workers or os.cpu_count() or 1, len(items) or 1))
    progress = dict(total=len(items), desc=desc, unit="file", disable=None)
    if workers == 1:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # as in the workers, so features never depend on --workers
            return [function(item) for item in tqdm(items, **progress)]
    import multiprocessing
    import sys

    # fork is fastest, but not safe once a framework has started its threads.
    threaded = any(m in sys.modules for m in ("tensorflow", "jax"))
    context = multiprocessing.get_context("forkserver" if threaded else "fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        chunk = max(1, len(items) // (workers * 8))
        return list(tqdm(pool.map(function, items, chunksize=chunk), **progress))


def extract_features(paths, mean_signal_length, workers=None, skip_bad=False):
    """Features for many files in parallel, in the given order.

    Returns (x, kept_indices, errors). A bad file raises BadAudioError unless
    `skip_bad`, in which case it is left out and its message returned.
    """
    results = _map(_features_or_error, [(p, mean_signal_length) for p in paths], workers, "MFCC")
    return _collect(results, skip_bad)


def _collect(results, skip_bad):
    errors = [error for _, error in results if error]
    if errors and not skip_bad:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BadAudioError(f"{errors[0]}{more}; fix or remove it, or pass --skip-bad")
    kept = [i for i, (value, _) in enumerate(results) if value is not None]
    return [results[i][0] for i in kept], kept, errors


def auto_signal_length(paths, workers=None, skip_bad=False, percentile=AUTO_LENGTH_PERCENTILE):
    """The `auto` mean_signal_length: a percentile of the corpus' durations in samples."""
    results = _map(_duration_or_error, list(paths), workers, "durations")
    lengths, _, _ = _collect(results, skip_bad)
    return int(np.percentile(lengths, percentile))
