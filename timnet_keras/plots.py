"""Figures of a run: confusion matrix, training curves, t-SNE of the representation.

Figures are `matplotlib.figure.Figure` objects, never pyplot's: a notebook
user's pyplot backend and open figures stay as they were.
"""
import numpy as np
from matplotlib.figure import Figure

from .io import write_atomic


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


def plot_tsne(representation, class_indices, labels, path, title, seed=0):
    """The paper's Fig. 3: a 2-D t-SNE of the fused representation, coloured by class."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(representation) - 1) // 3)))
    points = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(representation)
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    colours = _colours("tab10")
    for k, label in enumerate(labels):
        mask = np.asarray(class_indices) == k
        ax.scatter(points[mask, 0], points[mask, 1], s=8, color=colours(k % 10), label=label)
    ax.legend(fontsize=8, markerscale=2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
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
