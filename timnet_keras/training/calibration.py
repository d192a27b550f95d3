"""Temperature scaling, and the thresholds below which a prediction abstains: fitted per fold on held-out rows.

The model ends in a softmax, so its log-probabilities serve as logits:
scaling them by 1/T and re-normalising is temperature scaling (Guo et al.,
2017). T > 1 softens overconfident probabilities, T < 1 sharpens
underconfident ones; the arg-max, and so WAR and UAR, never change.

Everything here is fitted on the *calibration rows* of a fold: a stratified
tenth of its training part (`training.validation_split`) that the fold's
model did not train on, never its test fold. A fold without them (old runs,
the authors' weights) has temperature 1 and no thresholds.

The abstain thresholds (see `abstain`): `min_confidence` is the 5 % quantile
of the calibrated top probability over the calibration rows, `max_entropy`
the 95 % quantile of the calibrated entropy; so about one held-out in-domain
utterance in twenty falls below either.
"""
import numpy as np

from timnet_keras.training.evaluation import apply_temperature  # noqa: F401  (callers import it from here too)

TEMPERATURE_BOUNDS = (0.05, 20.0)  # a search on ln T between these; a fit at a bound says the held-out rows were too few
ABSTAIN_QUANTILE = 0.05


def entropy(probabilities):
    """Entropy of each row in nats (0 for a certain prediction, ln K for a uniform one).

    Example:
        >>> entropy(np.array([[1.0, 0.0], [0.5, 0.5]])).round(4).tolist()
        [0.0, 0.6931]
    """
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    return -np.sum(p * np.log(p), axis=-1)


def fit_temperature(probabilities, y_true, bounds=TEMPERATURE_BOUNDS):
    """The T minimising the NLL of `apply_temperature(probabilities, T)` on these rows (bounded 1-D search on ln T).

    Example:
        >>> p = np.array([[0.6, 0.4]] * 10)  # right 9 times in 10 at 0.6: underconfident, so T < 1
        >>> y = np.array([0] * 9 + [1])
        >>> t = fit_temperature(p, y)
        >>> round(float(apply_temperature(p, t)[0, 0]), 3)  # the fitted probability is the hit rate
        0.9
    """
    from scipy.optimize import minimize_scalar

    from timnet_keras.training.evaluation import negative_log_likelihood

    probabilities, y_true = np.asarray(probabilities, np.float64), np.asarray(y_true, int)
    if not len(y_true):
        return 1.0
    low, high = np.log(bounds)
    result = minimize_scalar(lambda log_t: negative_log_likelihood(y_true, apply_temperature(probabilities, np.exp(log_t))),
                             bounds=(low, high), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(result.x))


def fit_calibration(probabilities, y_true, indices=(), bounds=TEMPERATURE_BOUNDS):
    """A fold's calibration from its held-out rows' raw probabilities: the record a fold stores.

    {temperature, min_confidence, max_entropy, n, indices, nll_before, nll_after, ece_before, ece_after}:
    `indices` are the rows (of the corpus) it was fitted on, for anyone to check they are not test rows.

    Example:
        >>> c = fit_calibration(np.array([[0.6, 0.4]] * 10), np.array([0] * 9 + [1]), range(10))
        >>> round(c["temperature"], 3), round(c["min_confidence"], 3), c["n"]
        (0.185, 0.9, 10)
    """
    from timnet_keras.training.evaluation import expected_calibration_error, negative_log_likelihood

    probabilities, y_true = np.asarray(probabilities, np.float64), np.asarray(y_true, int)
    temperature = fit_temperature(probabilities, y_true, bounds)
    scaled = apply_temperature(probabilities, temperature)
    return {
        "temperature": round(temperature, 6),
        "min_confidence": round(float(np.quantile(scaled.max(axis=1), ABSTAIN_QUANTILE)), 6),
        "max_entropy": round(float(np.quantile(entropy(scaled), 1 - ABSTAIN_QUANTILE)), 6),
        "n": int(len(y_true)),
        "indices": [int(i) for i in indices],
        "nll_before": round(negative_log_likelihood(y_true, probabilities), 6),
        "nll_after": round(negative_log_likelihood(y_true, scaled), 6),
        "ece_before": round(expected_calibration_error(y_true, probabilities), 6),
        "ece_after": round(expected_calibration_error(y_true, scaled), 6),
    }


def ensemble_thresholds(calibrations):
    """The abstain thresholds of an ensemble: the mean of its members' (None when any member has none).

    No rows are held out from every member of a cross-validated ensemble, so its own
    thresholds cannot be fitted; the members' mean is the stated approximation.

    Example:
        >>> ensemble_thresholds([{"min_confidence": 0.4, "max_entropy": 1.0}, {"min_confidence": 0.6, "max_entropy": 0.5}])
        {'min_confidence': 0.5, 'max_entropy': 0.75}
        >>> ensemble_thresholds([None]) is None
        True
    """
    if not calibrations or any(not c for c in calibrations):
        return None
    return {key: round(float(np.mean([c[key] for c in calibrations])), 6) for key in ("min_confidence", "max_entropy")}
