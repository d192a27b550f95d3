"""Figures of a run: confusion matrix, training curves, reliability diagram, t-SNE of the representation (and its tsne.csv).

Figures are `matplotlib.figure.Figure` objects, never pyplot's: a notebook
user's pyplot backend and open figures stay as they were.
"""
import numpy as np
from matplotlib.figure import Figure

from timnet_keras.io import write_atomic, write_text_atomic


def _save(fig, path):
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"))


def _colours(name):
    import matplotlib

    return matplotlib.colormaps[name]


def plot_confusion_matrix(matrix, labels, path, title="Confusion matrix"):
    """Row-normalised confusion matrix (recall on the diagonal), with counts."""
    matrix = np.asarray(matrix, dtype=float)
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.8 * len(labels)))
    ax = fig.subplots()
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(j, i, f"{normalised[i, j]:.2f}\n({int(matrix[i, j])})", ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    _save(fig, path)


def plot_reliability(y_true, raw, calibrated, path, title="Reliability"):
    """Two panels, before and after temperature scaling: accuracy per top-probability bin (15 bins), the diagonal,
    the gap to it shaded, and each panel's ECE in its title."""
    from timnet_keras.training.evaluation import ECE_BINS, expected_calibration_error, reliability_bins

    fig = Figure(figsize=(9, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, probabilities, name in zip(axes, (raw, calibrated), ("before calibration", "after temperature scaling")):
        bins = reliability_bins(y_true, probabilities)
        width = 1.0 / ECE_BINS
        ax.bar([lo for lo, *_ in bins], [acc for *_, acc, _ in bins], width=width, align="edge", color="tab:blue",
               edgecolor="white", label="accuracy")
        ax.bar([lo for lo, *_ in bins], [acc - conf for *_, acc, conf in bins], bottom=[conf for *_, conf in bins],
               width=width, align="edge", color="tab:red", alpha=0.35, label="gap to the mean confidence")
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        for lo, _, count, acc, _ in bins:
            ax.text(lo + width / 2, min(acc, 0.95) + 0.02, str(count), ha="center", fontsize=6)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("top probability (confidence)")
        ax.set_title(f"{name}: ECE {expected_calibration_error(y_true, probabilities):.3f}", fontsize=9)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def plot_training_curves(histories, path, title="Training curves"):
    """Loss and accuracy per epoch, one line per fold (validation dashed when present)."""
    fig = Figure(figsize=(11, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for fold, history in histories:
        for key, style in (("", "-"), ("val_", "--")):
            if history.get(key + "loss"):
                ax_loss.plot(history[key + "loss"], style, lw=0.8, label=f"fold {fold} {key or 'train '}".strip())
                ax_acc.plot(history[key + "accuracy"], style, lw=0.8)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    if histories:
        ax_loss.legend(fontsize=6, ncol=2)
    fig.suptitle(title)
    _save(fig, path)


# --- Fig. 3: t-SNE of the fused representation, one panel per fold model -------------------------
#
# Each fold's model has its own representation space: ten models' points in one embedding
# cluster by model, not by emotion. So each panel embeds one fold's test utterances as
# represented by that fold's model, and tsne.csv keeps the 2-D points beside the figure.

TSNE_COLUMNS = ("fold", "utterance", "true", "predicted", "x", "y")
TSNE_SEED = 0


def embed_tsne(representation, seed=TSNE_SEED):
    """2-D t-SNE of one model's representations (PCA start, a fixed seed: the same points every time).

    One thread: a panel is a few dozen points, and with two cores busy with another job OpenMP's
    threads made one 20 times slower (10 s instead of 0.5 s for Emo-DB's 54 points).
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    representation = np.asarray(representation, dtype=np.float32)
    n = len(representation)
    if n < 3:  # nothing to lay out: t-SNE needs a perplexity below the number of points
        return np.zeros((n, 2))
    perplexity = float(min(30, max(2, (n - 1) // 3), n - 1))
    with threadpool_limits(limits=1):
        return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(representation)


def tsne_rows(fold, utterances, y_true, y_pred, labels, points):
    """tsne.csv's rows of one panel: utterance is the index into the corpus cache, labels by name."""
    return [{"fold": int(fold), "utterance": int(u), "true": labels[int(t)], "predicted": labels[int(p)],
             "x": float(xy[0]), "y": float(xy[1])} for u, t, p, xy in zip(utterances, y_true, y_pred, points)]


def write_tsne_csv(path, rows):
    import csv
    import io

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=TSNE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "x": repr(row["x"]), "y": repr(row["y"])} for row in rows)
    write_text_atomic(path, text.getvalue())


def read_tsne_csv(path):
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        return [{"fold": int(r["fold"]), "utterance": int(r["utterance"]), "true": r["true"], "predicted": r["predicted"],
                 "x": float(r["x"]), "y": float(r["y"])} for r in csv.DictReader(handle)]


def _panels(rows):
    panels = {}
    for row in rows:
        panels.setdefault(row["fold"], []).append(row)
    return dict(sorted(panels.items()))


def neighbour_agreement(rows, k=5):
    """Per panel (fold): the mean over its points of the fraction of their k nearest neighbours (in that
    panel's 2-D points, the point itself left out) with the same true label.

    Returns {fold: agreement}; a panel of fewer than k + 1 points uses all its other points, one of
    a single point has no neighbours and is left out.

    Example:
        >>> rows = [{"fold": 1, "true": t, "x": x, "y": 0.0} for t, x in (("a", 0), ("a", 1), ("b", 10), ("b", 11))]
        >>> neighbour_agreement(rows, k=1)
        {1: 1.0}
    """
    agreement = {}
    for fold, panel in _panels(rows).items():
        if len(panel) < 2:
            continue
        points = np.array([[r["x"], r["y"]] for r in panel], dtype=float)
        true = np.array([r["true"] for r in panel])
        distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
        np.fill_diagonal(distances, np.inf)
        nearest = np.argsort(distances, axis=1, kind="stable")[:, :min(k, len(panel) - 1)]
        agreement[fold] = float(np.mean(true[nearest] == true[:, None]))
    return agreement


def plot_tsne_panels(rows, labels, path, title):
    """The paper's Fig. 3 from tsne.csv's rows: one panel per fold, coloured by true emotion,
    misclassified utterances drawn as crosses. One fold is one large panel."""
    panels = _panels(rows)
    agreement = neighbour_agreement(rows)
    columns = min(5, len(panels)) or 1
    lines = -(-len(panels) // columns) or 1
    size = (7, 6.2) if len(panels) == 1 else (3.2 * columns, 3.2 * lines + 0.6)
    fig = Figure(figsize=size)
    axes = fig.subplots(lines, columns, squeeze=False).ravel()
    colours = _colours("tab10")
    for ax, (fold, panel) in zip(axes, panels.items()):
        for k, label in enumerate(labels):
            for right, marker in ((True, "o"), (False, "x")):
                xy = np.array([[r["x"], r["y"]] for r in panel if r["true"] == label and (r["predicted"] == label) == right])
                if len(xy):
                    ax.scatter(xy[:, 0], xy[:, 1], s=14 if len(panels) == 1 else 8, marker=marker, color=colours(k % 10),
                               lw=0.8)
        war = 100 * np.mean([r["true"] == r["predicted"] for r in panel])
        note = f", 5-NN {agreement[fold]:.2f}" if fold in agreement else ""
        ax.set_title(f"fold {fold}: WAR {war:.1f} %{note}", fontsize=10 if len(panels) == 1 else 8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=colours(k % 10), label=label) for k, label in enumerate(labels)]
    handles.append(Line2D([], [], ls="", marker="x", color="grey", label="misclassified"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 if len(panels) == 1 else 0.5 / size[1], 1, 1))
    _save(fig, path)


def plot_ablation_gaps(comparisons, path, names=None):
    """Table 3 as a figure: each variant's WAR minus TIM-Net's, ours (mean, 95 % interval) beside the paper's gap.

    Whether our interval reaches the paper's marker is the question Table 3's
    last columns answer; here it can be seen at a glance, corpus by corpus.
    `comparisons` are `report.AblationComparison`s; `names` maps variant to label.
    """
    names = names or {}
    rows = list(comparisons)[::-1]  # the table's order from the top
    fig = Figure(figsize=(7.5, 1.2 + 0.38 * len(rows)))
    ax = fig.subplots()
    y = np.arange(len(rows))
    ours = np.array([c.ours.mean for c in rows])
    low = ours - np.array([c.ours.low for c in rows])
    high = np.array([c.ours.high for c in rows]) - ours
    ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    ax.errorbar(ours, y, xerr=[low, high], fmt="o", color="tab:blue", capsize=3,
                label="ours: mean over paired folds, 95 % interval (last epoch)")
    ax.scatter([c.paper_gap for c in rows], y, marker="x", s=50, color="tab:red", zorder=3,
               label="the paper (test-selected)")
    for k, c in enumerate(rows):
        ax.annotate(f"p = {c.ours.p:.2g} ({c.ours.pairs})", (1.0, k), xycoords=("axes fraction", "data"),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks(y, [f"{c.corpus}  {names.get(c.variant, c.variant)}" for c in rows])
    ax.set_xlabel("WAR of the variant − WAR of TIM-Net (percentage points)")
    ax.set_title("Table 3: what each ablation costs")
    below_the_label = -0.62 / (0.38 * len(rows) + 0.3)  # inches under the axes over their height, about
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, below_the_label), ncol=2)
    _save(fig, path)
