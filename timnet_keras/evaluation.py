"""Scores of a cross-validated run: per fold, mean +- std, and pooled; in percent.

WAR (weighted average recall) is plain accuracy; UAR (unweighted average
recall) is the mean of the per-class recalls, the fair figure on corpora
whose classes are unbalanced. `pooled` scores all test predictions of all
folds at once, which is what the paper's tables and our README report.
"""
import csv
import io
import warnings

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


def cross_entropy(y_true, probabilities):
    p = np.clip(probabilities[np.arange(len(y_true)), y_true], 1e-7, 1.0)
    return float(-np.mean(np.log(p)))


def fold_scores(y_true, probabilities):
    y_pred = np.argmax(probabilities, axis=1)
    return {"war": war(y_true, y_pred), "uar": uar(y_true, y_pred), "loss": cross_entropy(y_true, probabilities), "n_test": int(len(y_true))}


def summarize_folds(fold_records, labels):
    """Per fold, mean +- std over folds, and pooled scores with the pooled confusion matrix.

    `fold_records`: FoldRecords (or anything with fold, y_true, probabilities) in fold order.
    """
    folds = [dict(fold=r.fold, **fold_scores(np.asarray(r.y_true), np.asarray(r.probabilities))) for r in fold_records]
    y_true = np.concatenate([r.y_true for r in fold_records]).astype(int)
    y_pred = np.concatenate([np.argmax(r.probabilities, axis=1) for r in fold_records])
    summary = {"folds": folds}
    for key in ("war", "uar", "loss"):
        values = [f[key] for f in folds]
        summary.setdefault("mean", {})[key] = float(np.mean(values))
        summary.setdefault("std", {})[key] = float(np.std(values))
    summary["pooled"] = {"war": war(y_true, y_pred), "uar": uar(y_true, y_pred), "n_test": int(len(y_true))}
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
    return "\n".join(lines)
