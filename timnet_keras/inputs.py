"""Inputs checked at the door: flag values and their relations, and the arrays of the Python API.

Each check runs once, where the input enters, before any backend is loaded
or any file is written, and raises `InputError` with one sentence that names
the input and says what to do. No Keras here: a wrong flag costs no start-up.
"""
import argparse
import re

import numpy as np

from timnet_keras.errors import InputError

MAX_DBFS = 0.0
MAX_FLOAT_PEAK = 1e6  # float samples far beyond full scale overflow the float32 power spectrum into NaN  # a level above full scale cannot be measured in a recording


def label_list(text, flag="--labels"):
    """A comma list of class names: no blanks, no duplicates, at least two.

    Example:
        >>> label_list("calm, joy")
        ('calm', 'joy')
        >>> label_list("calm,calm,joy")
        Traceback (most recent call last):
        ...
        timnet_keras.errors.InputError: --labels calm,calm,joy: 'calm' is listed twice; name each class folder once
    """
    labels = tuple(part.strip() for part in text.split(","))
    if any(not label for label in labels):
        raise InputError(f"{flag} {text}: a blank name; separate class folder names by single commas")
    seen = set()
    for label in labels:
        if label in seen:
            raise InputError(f"{flag} {text}: {label!r} is listed twice; name each class folder once")
        seen.add(label)
    if len(labels) < 2:
        raise InputError(f"{flag} {text}: one class; an emotion classifier needs at least two class folders")
    return labels


def check_data_name(name, flag="--data"):
    """A corpus name is a plain name: it names the cache file MFCC/<name>.npz, so no folders and no `..`.

    Example:
        >>> check_data_name("MyCorpus-2")
        'MyCorpus-2'
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or "") or ".." in name:
        raise InputError(f"{flag} {name!r}: a corpus name is letters, digits, '_', '-' or '.', starting with a letter "
                         f"or digit (it names MFCC/<name>.npz)")
    return name


def speaker_pattern(text):
    """A regex that compiles (its first group, or the match, is the speaker)."""
    try:
        return re.compile(text)
    except re.error as error:
        raise InputError(f"--speaker_regex {text!r} is not a regular expression ({error}); e.g. '^(\\w+?)_'") from None


def check_window(window, hop, silence_db):
    """--window, --hop and --silence_db together: windows that cover the audio, a level a recording can have."""
    if window is None:
        if silence_db is not None:
            raise InputError("--silence_db applies to windows: add --window SECONDS")
        return
    if hop > window:
        raise InputError(f"--hop {hop:g} is longer than --window {window:g}: the audio between windows would never be "
                         f"heard; choose --hop {window:g} or less")
    if silence_db is not None and not -200 <= silence_db <= MAX_DBFS:
        raise InputError(f"--silence_db {silence_db:g}: a level in dBFS is between -200 and 0 (default -45)")


def check_gpu(text):
    """--gpu: a CUDA device index or a comma list of them."""
    if not re.fullmatch(r"\d+(,\d+)*", text or ""):
        raise InputError(f"--gpu {text!r}: give a device index such as 0, or a comma list such as 0,1")


def check_activation(name):
    """--activation: a name Keras knows (Keras must be imported by now)."""
    import keras

    try:
        keras.activations.get(name)
    except (ValueError, TypeError):
        raise InputError(f"--activation {name!r}: Keras knows no such activation; e.g. relu (the default), gelu, "
                         f"elu, swish, tanh") from None


def audio_array(signal, sample_rate, what="signal"):
    """`signal` as librosa would take it: float32, mono; an integer PCM array scaled to [-1, 1).

    Accepted: 1-D samples; 2-D (channels, samples) as librosa has them, or (samples, channels)
    as soundfile reads them (the shorter axis, at most 8, is the channels), averaged to mono.
    Refused: a rate that is not positive, an empty or non-numeric array, NaN or infinity.

    Example:
        >>> audio_array(np.array([0, 16384, -32768], np.int16), 16000).tolist()
        [0.0, 0.5, -1.0]
        >>> audio_array(np.ones((100, 2)), 16000).shape
        (100,)
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)) \
            or not np.isfinite(sample_rate) or sample_rate <= 0:
        raise InputError(f"sample_rate {sample_rate!r}: give the recording's rate in Hz, a positive number such as 16000")
    array = np.asarray(signal)
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        scale = 2.0 ** (info.bits - 1)
        array = (array.astype(np.float64) - (scale if array.dtype.kind == "u" else 0.0)) / scale
    elif array.dtype.kind == "b" or array.dtype.kind not in "f":
        raise InputError(f"{what}: an array of {array.dtype} is not audio; give float samples in [-1, 1] or integer PCM")
    if array.ndim == 2:
        channels_first = array.shape[0] <= 8 and array.shape[0] < array.shape[1]
        if not channels_first and array.shape[1] > 8:
            raise InputError(f"{what}: shape {array.shape} is neither (channels, samples) nor (samples, channels)")
        array = array.mean(axis=0 if channels_first else 1)
    elif array.ndim != 1:
        raise InputError(f"{what}: shape {array.shape}; give 1-D samples or a 2-D (channels, samples) array")
    if array.size == 0:
        raise InputError(f"{what}: no samples")
    if not np.isfinite(array).all():
        raise InputError(f"{what}: holds NaN or infinite samples")
    peak = float(np.max(np.abs(array)))
    if peak > MAX_FLOAT_PEAK:
        raise InputError(f"{what}: samples reach {peak:.3g}; float audio lies in [-1, 1] (give integer PCM as an "
                         f"integer array)")
    return array.astype(np.float32)


# --- flag types: argparse turns their ArgumentTypeError into one `error:` line naming the flag ---

def at_least(low, kind=int):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not value >= low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text}")
        return value

    return parse


def within(low, high, include_low=True):
    """A float in [low, high) (or (low, high) when not include_low)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not ((value >= low if include_low else value > low) and value < high):
            raise argparse.ArgumentTypeError(f"must be in {'[' if include_low else '('}{low}, {high}), got {text}")
        return value

    return parse


positive = within(0, float("inf"), include_low=False)
MAX_SEED = 2**31 - 1 - 10_000  # fold k draws from seed + k, and NumPy takes seeds below 2**32


def seed_value(text):
    value = at_least(0)(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SEED}, got {text}")
    return value
