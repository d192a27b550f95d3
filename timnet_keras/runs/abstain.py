"""When a prediction abstains: the recording is not what the model was made for, or the model is unsure.

One reason per check, checked in this order; the `abstain` column of the
predictions joins those that hold with "; " (empty: no reason to doubt).

Input checks (any recording, any run):
  silence          RMS level below `SILENCE_DB` (-45 dBFS, the timeline's silent windows;
                   digital silence is -inf). Alone: a silent recording has no other reason,
                   and its label is "(silence)", never an emotion.
  clipping         more than 1 % of the samples at or above 0.99 of full scale.
  low sample rate  the file's native rate below 12 kHz (the corpora are 16 kHz or more:
                   8 kHz telephone audio has no energy above 4 kHz, which the MFCCs expect).
  too short        under a quarter of the model's window (it hears mostly zero padding);
  too long         over four times the window (it hears only the middle: use --window).
Model checks (a run trained with --calibrate; not the authors' weights, not older runs):
  low confidence   calibrated top probability below `min_confidence`, the 5 % quantile of
                   the calibrated top probability over the fold's held-out calibration rows;
  high entropy     calibrated entropy above `max_entropy`, their 95 % quantile.
An ensemble uses the mean of its members' thresholds (`calibration.ensemble_thresholds`).
"""
import math

import numpy as np

SILENCE_DB = -45.0  # RMS level in dBFS below which a recording or window is silent
SILENT = "(silence)"

CLIP_LEVEL, CLIP_SHARE = 0.99, 0.01
MIN_NATIVE_RATE = 12000
DURATION_FACTORS = (0.25, 4.0)
def level_db(signal):
    """RMS level in dB relative to full scale (-inf for digital silence).

    Example:
        >>> round(level_db(np.full(100, 0.1)), 1)
        -20.0
    """
    rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) if len(signal) else 0.0
    return 20 * math.log10(rms) if rms > 0 else float("-inf")


SILENCE = "silence"
SILENT_LABEL = SILENT  # the label of a silent recording or window: "(silence)", never an emotion


def native_rate(path):
    """The file's own sample rate from its header (None when soundfile cannot read it)."""
    import soundfile

    try:
        return int(soundfile.info(path).samplerate)
    except Exception:  # a format only audioread reads: no rate check
        return None


def signal_reasons(signal, sample_rate, model_samples, rate=None, silence_db=SILENCE_DB):
    """The input reasons (list) of a signal at `sample_rate` for a model of `model_samples` per window.

    Example:
        >>> signal_reasons(np.zeros(22050), 22050, 22050)
        ['silence']
        >>> loud = np.clip(3 * np.sin(np.arange(22050) / 5), -1, 1)
        >>> signal_reasons(loud, 22050, 22050, rate=8000)
        ['clipping', 'low sample rate']
        >>> signal_reasons(0.1 * np.sin(np.arange(2000) / 5), 22050, 22050)
        ['too short']
    """
    signal = np.asarray(signal)
    if level_db(signal) < silence_db:
        return [SILENCE]
    reasons = []
    if len(signal) and np.mean(np.abs(signal) >= CLIP_LEVEL) > CLIP_SHARE:
        reasons.append("clipping")
    if rate is not None and rate < MIN_NATIVE_RATE:
        reasons.append("low sample rate")
    low, high = DURATION_FACTORS
    if len(signal) < low * model_samples:
        reasons.append("too short")
    elif len(signal) > high * model_samples:
        reasons.append("too long")
    return reasons


def model_reasons(probabilities, thresholds):
    """The model reasons (list) of one row of calibrated probabilities against {min_confidence, max_entropy}.

    Example:
        >>> model_reasons(np.array([0.4, 0.3, 0.3]), {"min_confidence": 0.5, "max_entropy": 0.9})
        ['low confidence', 'high entropy']
        >>> model_reasons(np.array([0.9, 0.05, 0.05]), {"min_confidence": 0.5, "max_entropy": 0.9}), model_reasons([0.4, 0.6], None)
        ([], [])
    """
    from timnet_keras.training.calibration import entropy

    if not thresholds:
        return []
    p = np.asarray(probabilities, np.float64)
    reasons = []
    if p.max() < thresholds["min_confidence"]:
        reasons.append("low confidence")
    if float(entropy(p[None])[0]) > thresholds["max_entropy"]:
        reasons.append("high entropy")
    return reasons


def abstain_reason(input_reasons, probabilities, thresholds):
    """The `abstain` column: "" or the reasons joined by "; " (silence alone when silent).

    Example:
        >>> abstain_reason(["silence"], [0.9, 0.1], {"min_confidence": 0.95, "max_entropy": 0.1})
        'silence'
        >>> abstain_reason(["too long"], [0.4, 0.6], {"min_confidence": 0.7, "max_entropy": 1.0})
        'too long; low confidence'
    """
    if SILENCE in input_reasons:
        return SILENCE
    return "; ".join(list(input_reasons) + model_reasons(probabilities, thresholds))
