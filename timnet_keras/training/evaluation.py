"""Scores of a cross-validated run: per fold, mean +- std, and pooled; in percent.

WAR (weighted average recall) is plain accuracy; UAR (unweighted average
recall) is the mean of the per-class recalls, the fair figure on corpora
whose classes are unbalanced. `pooled` scores all test predictions of all
folds at once, which is what the paper's tables and our README report.

Beside them, how far the probabilities can be trusted: ECE (expected
calibration error, 15 equal-width bins of the top probability), NLL and the
Brier score, of the raw probabilities and of the temperature-scaled ones
(`calibration`; a fold without a fitted temperature has temperature 1).
"""
import csv
import io
import warnings

import math

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, classification_report, confusion_matrix


def war(y_true, y_pred):
    """Accuracy in percent.

    Example:
        >>> war([0, 0, 0, 1], [0, 0, 0, 0])
        75.0
    """
    return 100.0 * float(accuracy_score(y_true, y_pred))


def uar(y_true, y_pred):
    """Mean recall over the classes present in `y_true`, in percent.

    Example:
        >>> uar([0, 0, 0, 1], [0, 0, 0, 0])
        50.0
    """
    with warnings.catch_warnings():  # a fold may lack a class: sklearn then averages over the present ones
        warnings.simplefilter("ignore")
        return 100.0 * float(balanced_accuracy_score(y_true, y_pred))


def epoch_selected_on_test(test_accuracy):
    """The epoch the paper's Tables 1 and 3 keep: the first epoch of the maximum test-fold accuracy, from 1.

    The authors' checkpoint monitored the test accuracy and saved only on a
    strict improvement, so of tied epochs the first stays. It reads the test
    labels, so it overstates what the model scores on unseen data: we report
    it only to compare with the paper.

    Example:
        >>> epoch_selected_on_test([0.50, 0.75, 0.75, 0.70])
        2
    """
    return int(np.argmax(np.asarray(test_accuracy, dtype=np.float64))) + 1


ECE_BINS = 15


def expected_calibration_error(y_true, probabilities, bins=ECE_BINS):
    """ECE: over `bins` equal-width bins of the top probability (lo, hi], the share-weighted |accuracy - confidence|.

    Example:
        >>> y = np.array([0, 0, 1, 1])
        >>> p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
        >>> round(expected_calibration_error(y, p), 4)  # bin (0.867, 0.933]: 2 of 2 right at 0.9; (0.533, 0.6]: 1 of 2 at 0.6
        0.1
        >>> expected_calibration_error(np.array([1]), np.array([[0.0, 1.0]]))
        0.0
    """
    y_true, probabilities = np.asarray(y_true, int), np.asarray(probabilities, np.float64)
    if not len(y_true):
        return float("nan")
    confidence = probabilities.max(axis=1)
    correct = (np.argmax(probabilities, axis=1) == y_true).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)  # (lo, hi]; a top probability of 0 cannot occur
    total = 0.0
    for b in np.unique(which):
        inside = which == b
        total += inside.sum() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total / len(y_true))


def negative_log_likelihood(y_true, probabilities):
    """Mean -ln p(true class), in nats (probabilities clipped at 1e-7, as the training loss).

    Example:
        >>> round(negative_log_likelihood(np.array([0, 1]), np.array([[0.5, 0.5], [0.0, 1.0]])), 4)  # (ln 2 + 0) / 2
        0.3466
    """
    return cross_entropy(np.asarray(y_true, int), np.asarray(probabilities, np.float64)) + 0.0  # never -0.0


def brier_score(y_true, probabilities):
    """Mean over samples of the squared distance to the one-hot truth, summed over classes (0 best, 2 worst).

    Example:
        >>> brier_score(np.array([0, 1]), np.array([[1.0, 0.0], [0.75, 0.25]]))  # (0 + 2 * 0.75 ** 2) / 2
        0.5625
    """
    y_true, probabilities = np.asarray(y_true, int), np.asarray(probabilities, np.float64)
    truth = np.eye(probabilities.shape[1])[y_true]
    return float(np.mean(np.sum((probabilities - truth) ** 2, axis=1)))


def reliability_bins(y_true, probabilities, bins=ECE_BINS):
    """[(lo, hi, count, accuracy, mean confidence)] of the non-empty top-probability bins: a reliability diagram's bars.

    Example:
        >>> reliability_bins(np.array([0, 1]), np.array([[0.9, 0.1], [0.9, 0.1]]), bins=10)
        [(0.8, 0.9, 2, 0.5, 0.9)]
    """
    probabilities = np.asarray(probabilities, np.float64)
    confidence = probabilities.max(axis=1)
    correct = np.argmax(probabilities, axis=1) == np.asarray(y_true, int)
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    return [(round(float(b) / bins, 6), round(float(b + 1) / bins, 6), int((which == b).sum()), float(correct[which == b].mean()),
             round(float(confidence[which == b].mean()), 6)) for b in np.unique(which)]


def calibration_scores(y_true, probabilities):
    """{ece, nll, brier} of probabilities against the true classes.

    Example:
        >>> calibration_scores(np.array([0]), np.array([[1.0, 0.0]]))
        {'ece': 0.0, 'nll': 0.0, 'brier': 0.0}
    """
    return {"ece": expected_calibration_error(y_true, probabilities), "nll": negative_log_likelihood(y_true, probabilities),
            "brier": brier_score(y_true, probabilities)}


CALIBRATION_KEYS = ("ece", "nll", "brier", "ece_calibrated", "nll_calibrated", "brier_calibrated")


def apply_temperature(probabilities, temperature):
    """softmax(ln p / T) row by row, float64; T = 1 gives the probabilities back.

    Example:
        >>> apply_temperature(np.array([[0.8, 0.2]]), 1.0).round(3).tolist()
        [[0.8, 0.2]]
        >>> apply_temperature(np.array([[0.8, 0.2]]), 2.0).round(3).tolist()  # sqrt(0.8) : sqrt(0.2) = 2 : 1
        [[0.667, 0.333]]
    """
    probabilities = np.asarray(probabilities, np.float64)
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / float(temperature)
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def cross_entropy(y_true, probabilities):
    p = np.clip(probabilities[np.arange(len(y_true)), y_true], 1e-7, 1.0)
    return float(-np.mean(np.log(p)))


def fold_scores(y_true, probabilities):
    y_pred = np.argmax(probabilities, axis=1)
    return {"war": war(y_true, y_pred), "uar": uar(y_true, y_pred), "loss": cross_entropy(y_true, probabilities), "n_test": int(len(y_true))}


def _calibration_row(y_true, probabilities, temperature):
    after = calibration_scores(y_true, apply_temperature(probabilities, temperature))
    return {**calibration_scores(y_true, probabilities), **{f"{key}_calibrated": value for key, value in after.items()}}


def _temperature(record):
    return float(getattr(record, "temperature", 1.0))


def summarize_folds(fold_records, labels):
    """Per fold, mean +- std over folds, and pooled scores with the pooled confusion matrix.

    `fold_records`: FoldRecords (or anything with fold, y_true, probabilities) in fold order.
    The calibration scores (`CALIBRATION_KEYS`) are of each fold's raw probabilities and, `*_calibrated`,
    of the same scaled by the fold's fitted temperature (1 for a fold without one: then they agree).
    """
    folds = [dict(fold=r.fold, **fold_scores(np.asarray(r.y_true), np.asarray(r.probabilities)), temperature=_temperature(r),
                  **_calibration_row(np.asarray(r.y_true), np.asarray(r.probabilities), _temperature(r))) for r in fold_records]
    y_true = np.concatenate([r.y_true for r in fold_records]).astype(int)
    y_pred = np.concatenate([np.argmax(r.probabilities, axis=1) for r in fold_records])
    summary = {"folds": folds}
    for key in ("war", "uar", "loss", *CALIBRATION_KEYS):
        values = [f[key] for f in folds]
        summary.setdefault("mean", {})[key] = float(np.mean(values))
        summary.setdefault("std", {})[key] = float(np.std(values))
    raw = np.concatenate([np.asarray(r.probabilities, np.float64) for r in fold_records])
    scaled = np.concatenate([apply_temperature(r.probabilities, _temperature(r)) for r in fold_records])
    summary["pooled"] = {"war": war(y_true, y_pred), "uar": uar(y_true, y_pred), "n_test": int(len(y_true)),
                         **calibration_scores(y_true, raw),
                         **{f"{k}_calibrated": v for k, v in calibration_scores(y_true, scaled).items()}}
    summary["calibrated"] = any(_temperature(r) != 1.0 for r in fold_records)
    summary["labels"] = list(labels)
    summary["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=range(len(labels))).tolist()
    return summary


def classification_report_csv(fold_records, labels):
    """One CSV of every fold's per-class precision, recall, F1 and support."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["fold", "class", "precision", "recall", "f1", "support"])
    for r in fold_records:
        report = classification_report(
            r.y_true, np.argmax(r.probabilities, axis=1), labels=range(len(labels)),
            target_names=list(labels), output_dict=True, zero_division=0,
        )
        for name in list(labels) + ["macro avg", "weighted avg"]:
            row = report[name]
            writer.writerow([r.fold, name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1-score']:.4f}", int(row["support"])])
    return out.getvalue()


def console_table(summary):
    """The short table the console ends with."""
    lines = ["fold    WAR %   UAR %"]
    lines += [f"{f['fold']:>4}  {f['war']:6.2f}  {f['uar']:6.2f}" for f in summary["folds"]]
    lines.append(f"mean  {summary['mean']['war']:6.2f}  {summary['mean']['uar']:6.2f}   (std {summary['std']['war']:.2f} / {summary['std']['uar']:.2f})")
    lines.append(f"pooled {summary['pooled']['war']:5.2f}  {summary['pooled']['uar']:6.2f}")
    pooled = summary["pooled"]
    if "ece" in pooled:
        after = (f" -> calibrated ECE {pooled['ece_calibrated']:.3f}, NLL {pooled['nll_calibrated']:.3f}, "
                 f"Brier {pooled['brier_calibrated']:.3f}") if summary.get("calibrated") else " (no fitted temperature)"
        lines.append(f"pooled ECE {pooled['ece']:.3f}, NLL {pooled['nll']:.3f}, Brier {pooled['brier']:.3f}{after}")
    return "\n".join(lines)


def confidence_interval(values, level=0.95):
    """Student-t interval of the mean; None for fewer than two values.

    Example:
        >>> [round(v, 2) for v in confidence_interval([90.0, 91.0, 92.0])]
        [88.52, 93.48]
    """
    if len(values) < 2:
        return None
    from scipy import stats

    mean, sem = float(np.mean(values)), float(np.std(values, ddof=1)) / math.sqrt(len(values))
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1)) * sem
    return mean - half, mean + half
