"""REPRODUCTION.md, generated from the registry: the paper's tables beside ours.

The text depends on the records alone (no clock, no machine), so the same
registry always gives the same file. Cells not run are rows that say so; a
cell with missing folds says how many it has and does not enter the means.

Statistics. A cell's figure is pooled over its folds (all test predictions
together, as the paper reports). Over seeds: mean ± sample standard deviation,
and a 95 % Student-t interval of the mean. Ablations: a Wilcoxon signed-rank
test (two-sided) of the per-fold WAR of TIM-Net against the variant, paired
over the same folds of the same seeds, with a 95 % Student-t interval of the
mean difference, set beside the paper's own difference: an interval that
excludes the paper's gap says our runs disagree with it (for these seeds).
Over corpora, every (corpus, seed, fold) is one pair and the paper's gap is
averaged over the same pairs. Table 3 is also drawn (`plots.plot_ablation_gaps`).
Cells trained in bfloat16 are set beside their float32 twins (same corpus,
variant, seed and folds) with the same test.

New speakers: TIM-Net and the baselines (`baselines.py`) under the paper's
10 folds and under leave-one-speaker-out (LOSO), side by side. There each
figure is the mean over folds (10-fold) or over held-out speakers (LOSO) of
the per-fold UAR and WAR, with a 95 % Student-t interval of that mean; the
drop is the 10-fold mean minus the LOSO mean; TIM-Net is compared with each
baseline by the same paired test as Table 3 (per-fold WAR, paired by seed
and fold; a LOSO fold is one held-out speaker), TIM-Net − baseline. TIM-Net
trained on normalised features (`--normalise utterance|speaker`, cells keyed
`-norm-<option>`) has rows of its own there, paired fold by fold with TIM-Net
on raw MFCCs by the same test wherever both have the fold. Normalised cells are
kept out of every other table (their other settings are listed under other runs).

Table 2 (cross-corpus): per pair, the mean over runs (a run: one training
on all of the source, scored on all of the target) with a 95 % Student-t
interval; over pairs, each run's mean over the six pairs of our corpora, then
mean ± sd and the interval over the runs that hold all six, as the paper
averages its 20 pairs. Test-selected there means selected on the target.

Two protocols, side by side: the last epoch (honest: what a user of the
model gets), and the paper's "test-selected" one (each fold's epoch chosen on
its own test fold, `evaluation.epoch_selected_on_test`), which the paper's
Tables 1 and 3 used and which only records with a per-epoch test curve allow.
Every test compares within one protocol.
"""
import os
from collections import defaultdict
from typing import NamedTuple

import numpy as np

from timnet_keras.training.evaluation import confidence_interval

from timnet_keras.paper.baselines import BASELINE_EPOCHS, BASELINE_NAMES, BASELINES
from timnet_keras.config import CROSS_CORPUS_LABELS, CROSS_CORPUS_NAMES, DEFAULT_SEED, TRAINING_DEFAULTS
from timnet_keras.training.evaluation import epoch_selected_on_test, uar, war
from timnet_keras.paper.figures import (ABLATIONS, SOURCE, TABLE_1, TABLE_2_AVERAGE, TABLE_2_PAIRS, TABLE_2_RUNS, TABLE_3, TABLE_A4_AVERAGE,
                    TABLE_A4_BEST)
from timnet_keras.paper.registry import read_records

PAPER_EPOCHS = TRAINING_DEFAULTS["epoch"]
PAPER_PRECISION = "float32"
SHARED_CORPORA = ("CASIA", "EMODB", "EMOVO")  # the corpora ../shared holds audio for
NOTES = "notes.md"
NORMALISED = ("utterance", "speaker")  # the normalisations the new-speakers table shows beside raw TIM-Net
VARIANT_NAMES = {"timnet": "TIM-Net", "tcn": "TCN", "no_bd": "w/o BD", "no_ms": "w/o MS", "no_df": "w/o DF",
                 **BASELINE_NAMES}
COMMAND = "python Code/reproduce.py"
LAST, TEST_SELECTED = "last epoch", "test-selected"  # the two protocols every cell is shown in
NO_CURVE = "no test curve"  # a record written before the test curve was recorded (or one without a test part)


def _pair(figures):
    return f"{figures[0]:.2f} / {figures[1]:.2f}" if figures else "—"


def _mean_std(values):
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"


def _interval(values):
    interval = confidence_interval(values)
    return f"{interval[0]:.2f}–{interval[1]:.2f}" if interval else "—"


class SelectedFold(NamedTuple):
    """One fold at its test-selected epoch."""
    epoch: int  # from 1
    uar: float  # percent
    correct: int  # right answers on the test fold
    n: int  # test samples


def selected_fold(record):
    """The fold of `record` at its test-selected epoch; None when the record has no test curve.

    The curve holds accuracy as a rounded fraction; times the test count and
    rounded it gives back the exact number of right answers.
    """
    accuracy, uars = record.history.get("test_accuracy"), record.history.get("test_uar")
    if not accuracy or not uars:
        return None
    epoch = epoch_selected_on_test(accuracy)
    n = len(record.y_true)
    return SelectedFold(epoch, 100.0 * float(uars[epoch - 1]), int(round(float(accuracy[epoch - 1]) * n)), n)


class Cell:
    """The records of one cell (one corpus/pair, variant, seed, epochs), fold by fold."""

    def __init__(self, records):
        self.records = sorted(records, key=lambda r: r.unit.fold)
        self.unit = self.records[0].unit

    @property
    def complete(self):
        return self.unit.kind == "cross" or len({r.unit.fold for r in self.records}) == self.unit.n_folds

    @property
    def progress(self):
        return f"{len(self.records)}/{self.unit.n_folds} folds"

    def pooled(self):
        """(UAR, WAR) over all test predictions of the cell's folds."""
        y_true = np.concatenate([r.y_true for r in self.records])
        y_pred = np.concatenate([r.y_pred for r in self.records])
        return uar(y_true, y_pred), war(y_true, y_pred)

    def test_selected(self):
        """(UAR, WAR) with each fold at its test-selected epoch; None unless every fold has a test curve.

        WAR is pooled exactly (the folds' right answers at their epochs over all
        test samples); UAR is the mean over folds of each fold's UAR at its
        epoch, since the curve keeps no per-class counts to pool.
        """
        folds = [selected_fold(r) for r in self.records]
        if not folds or any(f is None for f in folds):
            return None
        return float(np.mean([f.uar for f in folds])), 100.0 * sum(f.correct for f in folds) / sum(f.n for f in folds)

    def fold_wars(self, protocol=LAST):
        """{fold: WAR} under `protocol`; test-selected: only the folds with a test curve."""
        if protocol == LAST:
            return {r.unit.fold: war(r.y_true, r.y_pred) for r in self.records}
        folds = {r.unit.fold: selected_fold(r) for r in self.records}
        return {fold: 100.0 * f.correct / f.n for fold, f in folds.items() if f is not None}

    def losses(self):
        """(mean first-epoch, mean final-epoch) training loss over the folds."""
        losses = [r.history.get("loss") for r in self.records if r.history.get("loss")]
        if not losses:
            return None
        return float(np.mean([l[0] for l in losses])), float(np.mean([l[-1] for l in losses]))


def group_cells(records, protocol="kfold", normalise="none"):
    """{(kind, corpus, target, variant, epochs, precision): {seed: Cell}} of the cells of one protocol and normalisation.

    Cross-corpus units have the default protocol, kfold: they are grouped with the paper's cells. Cells on
    normalised features (`normalise` utterance or speaker) are grouped apart from the raw-MFCC ones.
    """
    by_cell = defaultdict(list)
    for record in records:
        if record.unit.protocol == protocol and record.unit.normalise == normalise:
            by_cell[record.unit.cell].append(record)
    groups = defaultdict(dict)
    for cell_records in by_cell.values():
        cell = Cell(cell_records)
        u = cell.unit
        groups[(u.kind, u.corpus, u.target, u.variant, u.epochs, u.precision)][u.seed] = cell
    return groups


def _summary(cells):
    """The figures of a group of seeds: (UARs, WARs, status) over its complete cells."""
    complete = [c for _, c in sorted(cells.items()) if c.complete]
    incomplete = [f"seed {s}: {c.progress} (incomplete; so far UAR / WAR {_pair(c.pooled())})"
                  for s, c in sorted(cells.items()) if not c.complete]
    pooled = [c.pooled() for c in complete]
    seeds = ", ".join(str(c.unit.seed) for c in complete)
    status = "; ".join(([f"complete: seeds {seeds}"] if complete else []) + incomplete) or "not run yet"
    return [p[0] for p in pooled], [p[1] for p in pooled], status


def _selected_summary(cells):
    """The test-selected UAR and WAR columns over the same complete cells as `_summary`'s figures."""
    complete = [c for _, c in sorted(cells.items()) if c.complete]
    if not complete:
        return "—", "—"
    figures = [c.test_selected() for c in complete]
    missing = [str(c.unit.seed) for c, f in zip(complete, figures) if f is None]
    if missing:
        text = NO_CURVE if len(missing) == len(complete) else f"{NO_CURVE} for seed {', '.join(missing)}"
        return text, text
    return _mean_std([f[0] for f in figures]), _mean_std([f[1] for f in figures])


def _selected_pair(cell):
    figures = cell.test_selected()
    return _pair(figures) if figures else NO_CURVE


class PairedTest(NamedTuple):
    """Per-fold WAR of a variant against TIM-Net (or bfloat16 against float32), paired by (seed, fold)."""
    mean: float  # mean difference, percentage points
    low: float  # 95 % Student-t interval of the mean difference
    high: float
    p: float  # Wilcoxon signed-rank, two-sided
    pairs: int

    def __str__(self):
        return f"{self.mean:+.2f} [{self.low:+.1f}, {self.high:+.1f}], p = {self.p:.3g} ({self.pairs})"


def paired_test(timnet_cells, variant_cells, protocol=LAST):
    """The paired comparison of per-fold WAR under `protocol`, variant − TIM-Net; None when no fold is in both."""
    differences = []
    for seed, cell in sorted(variant_cells.items()):
        if seed not in timnet_cells:
            continue
        base, other = timnet_cells[seed].fold_wars(protocol), cell.fold_wars(protocol)
        differences += [other[f] - base[f] for f in sorted(set(base) & set(other))]
    if not differences:
        return None
    mean = float(np.mean(differences))
    low, high = confidence_interval(differences) or (mean, mean)
    if np.allclose(differences, 0):
        return PairedTest(0.0, low, high, 1.0, len(differences))
    from scipy import stats

    p = float(stats.wilcoxon(differences, alternative="two-sided").pvalue)
    return PairedTest(mean, low, high, p, len(differences))


def _table_1(groups):
    lines = [f"## Table 1: TIM-Net, 10-fold CV ({PAPER_EPOCHS} epochs), {LAST} and {TEST_SELECTED}", "",
             f"Command: `{COMMAND} --table 1 --corpora {','.join(SHARED_CORPORA)} --seeds 3`.", "",
             f"| corpus | paper UAR / WAR %, {LAST} | ours UAR %, {LAST} | ours WAR %, {LAST} | WAR 95 % CI, {LAST} | "
             f"paper UAR / WAR %, {TEST_SELECTED} | ours UAR %, {TEST_SELECTED} | ours WAR %, {TEST_SELECTED} | seeds | "
             "status |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for corpus, paper in TABLE_1.items():
        cells = groups.get(("cv", corpus, "", "timnet", PAPER_EPOCHS, PAPER_PRECISION), {})
        uars, wars, status = _summary(cells)
        selected = _selected_summary(cells)
        if corpus not in SHARED_CORPORA and not cells:
            status = "not run yet (no audio in ../shared)"
        lines.append(f"| {corpus} | {_pair(paper['last'])} | {_mean_std(uars)} | {_mean_std(wars)} | "
                     f"{_interval(wars)} | {_pair(paper['test_selected'])} | {selected[0]} | {selected[1]} | "
                     f"{len(wars)} | {status} |")
    return lines


class AblationComparison(NamedTuple):
    """One Table 3 variant against TIM-Net: the paper's gap beside ours."""
    corpus: str
    variant: str
    paper_gap: float  # the paper's WAR of the variant − TIM-Net's, points (test-selected)
    ours: PairedTest  # ours, variant − TIM-Net over the same folds and seeds (last epoch)
    test_selected: PairedTest | None = None  # the same pairs test-selected; None unless every pair has a test curve


def _ablation_cells(groups, corpus, variant):
    """(TIM-Net's cells, the variant's complete cells) of `corpus`, by seed."""
    timnet_cells = groups.get(("cv", corpus, "", "timnet", PAPER_EPOCHS, PAPER_PRECISION), {})
    cells = groups.get(("cv", corpus, "", variant, PAPER_EPOCHS, PAPER_PRECISION), {})
    return timnet_cells, {s: c for s, c in cells.items() if c.complete}


def _paper_gap(corpus, variant):
    return TABLE_3[corpus][variant][1] - TABLE_3[corpus]["timnet"][1]


def _both_tests(timnet_cells, cells):
    """(last-epoch test, test-selected test or None): the second only over the very pairs of the first.

    So both protocols' figures, and the paper's gap averaged over the pairs,
    describe the same folds; a pair without a test curve leaves the second None.
    """
    test = paired_test(timnet_cells, cells)
    selected = paired_test(timnet_cells, cells, TEST_SELECTED) if test else None
    return test, selected if selected and selected.pairs == test.pairs else None


def _ablation_comparisons(groups):
    """Per corpus in the table's order, then each variant over every corpus it was compared on (when more than one).

    Over corpora, every (corpus, seed, fold) is one pair, and the paper's gap is
    averaged over the same pairs, so the two figures weigh the corpora alike.
    """
    per_corpus, over_corpora = [], []
    for variant in ABLATIONS:
        timnet_all, variant_all, gaps = {}, {}, []
        for corpus in TABLE_3:
            timnet_cells, cells = _ablation_cells(groups, corpus, variant)
            test, selected = _both_tests(timnet_cells, cells)
            if test is None:
                continue
            per_corpus.append(AblationComparison(corpus, variant, _paper_gap(corpus, variant), test, selected))
            timnet_all.update({(corpus, seed): cell for seed, cell in timnet_cells.items()})
            variant_all.update({(corpus, seed): cell for seed, cell in cells.items()})
            gaps += [_paper_gap(corpus, variant)] * test.pairs
        corpora = list(dict.fromkeys(corpus for corpus, _ in variant_all))
        if len(corpora) > 1:
            over_corpora.append(AblationComparison("+".join(corpora), variant, float(np.mean(gaps)),
                                                   *_both_tests(timnet_all, variant_all)))
    order = {corpus: k for k, corpus in enumerate(TABLE_3)}
    per_corpus.sort(key=lambda c: order[c.corpus])  # stable: the variants keep their order within a corpus
    return per_corpus + over_corpora


def ablation_comparisons(registry):
    """Every Table 3 variant with a paired test against TIM-Net: per corpus, then over the corpora."""
    return _ablation_comparisons(group_cells(read_records(registry)))


def _selected_test(comparison):
    return str(comparison.test_selected) if comparison.test_selected else NO_CURVE


def _table_3(groups, figure=None):
    lines = ["## Table 3: ablations, 10-fold CV", "",
             "The paper's figures are test-selected (each fold's best epoch on its own test fold); ours are shown "
             "both ways, and the last-epoch figures are expected a few points lower. Each paired test compares a "
             "variant with TIM-Net over the same folds and seeds, within one protocol; the test-selected one "
             "is shown only when every pair has a test curve.", "",
             f"Command: `{COMMAND} --table 3 --corpora {','.join(SHARED_CORPORA)}`; TIM-Net's cells are Table 1's.", "",
             f"| corpus | variant | paper UAR / WAR %, {TEST_SELECTED} | ours UAR %, {LAST} | ours WAR %, {LAST} | "
             f"ours UAR %, {TEST_SELECTED} | ours WAR %, {TEST_SELECTED} | seeds | training loss, first / last epoch | "
             f"paper's WAR − TIM-Net's, {TEST_SELECTED} | ours, {LAST}: WAR − TIM-Net's [95 % CI], Wilcoxon p (pairs) | "
             f"ours, {TEST_SELECTED}: WAR − TIM-Net's [95 % CI], Wilcoxon p (pairs) | status |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    comparisons = _ablation_comparisons(groups)  # once: the rows' tests and the over-corpora table
    tests = {(c.corpus, c.variant): c for c in comparisons}
    for corpus, paper in TABLE_3.items():
        for variant in (*ABLATIONS, "timnet"):
            cells = groups.get(("cv", corpus, "", variant, PAPER_EPOCHS, PAPER_PRECISION), {})
            uars, wars, status = _summary(cells)
            selected = _selected_summary(cells)
            if corpus not in SHARED_CORPORA and not cells:
                status = "not run yet (no audio in ../shared)"
            losses = [c.losses() for c in cells.values() if c.complete and c.losses()]
            loss = f"{np.mean([l[0] for l in losses]):.2f} / {np.mean([l[1] for l in losses]):.2f}" if losses else "—"
            test = tests.get((corpus, variant))
            compared = (str(test.ours), _selected_test(test)) if test else ("—", "—")
            gap = f"{_paper_gap(corpus, variant):+.2f}" if variant != "timnet" else "—"
            lines.append(f"| {corpus} | {VARIANT_NAMES[variant]} | {_pair(paper[variant])} | {_mean_std(uars)} | "
                         f"{_mean_std(wars)} | {selected[0]} | {selected[1]} | {len(wars)} | {loss} | {gap} | "
                         f"{compared[0]} | {compared[1]} | {status} |")
    over_corpora = [c for c in comparisons if c.corpus not in TABLE_3]
    if over_corpora:
        lines += ["", "Over the corpora: every fold of every corpus one pair, the paper's gap averaged over the same "
                  "pairs.", "", f"| variant | corpora | paper's WAR − TIM-Net's, mean, {TEST_SELECTED} | ours, {LAST}: "
                  f"WAR − TIM-Net's [95 % CI], Wilcoxon p (pairs) | ours, {TEST_SELECTED}: WAR − TIM-Net's [95 % CI], "
                  "Wilcoxon p (pairs) |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {VARIANT_NAMES[c.variant]} | {c.corpus.replace('+', ', ')} | {c.paper_gap:+.2f} | {c.ours} | "
                  f"{_selected_test(c)} |" for c in over_corpora]
    if figure:
        lines += ["", f"![Each ablation's WAR minus TIM-Net's: ours ({LAST}) with its 95 % interval, the paper's gap "
                      f"({TEST_SELECTED}) beside it]({figure})"]
    return lines


TARGET_SELECTED = f"{TEST_SELECTED} on the target"  # cross-corpus: the epoch chosen on the target's own labels


def _seeds_text(seeds):
    return f"{len(seeds)} (seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)})"


def _table_2_average(cells_of, pairs):
    """The average over `pairs` as the paper takes it: per run the mean over the pairs, then over the runs.

    Only runs (seeds) with a record for every pair count, so each run's average is over the same pairs.
    Returns (per-run (UAR, WAR), the same test-selected or None, per-pair best run averaged, seeds).
    """
    seeds = sorted(set.intersection(*[set(cells_of[p]) for p in pairs])) if pairs else []
    per_run = [tuple(np.mean([cells_of[p][seed].pooled() for p in pairs], axis=0)) for seed in seeds]
    selected = [[cells_of[p][seed].test_selected() for p in pairs] for seed in seeds]
    selected = [tuple(np.mean(run, axis=0)) for run in selected] if seeds and all(all(run) for run in selected) else None
    bests = [max((c.pooled() for c in cells_of[p].values()), key=lambda f: f[0]) for p in pairs if cells_of[p]]
    best = tuple(np.mean(bests, axis=0)) if bests and len(bests) == len(pairs) else None
    return per_run, selected, best, seeds


def _table_2(groups):
    corpora = ", ".join(SHARED_CORPORA)
    papers = ", ".join("RAVDESS" if c == "RAVDE" else c for c in CROSS_CORPUS_NAMES)
    pairs = [(s, t) for s in SHARED_CORPORA for t in SHARED_CORPORA if s != t]
    extra = sorted({(k[1], k[2]) for k in groups if k[0] == "cross" and k[3] == "timnet"
                    and k[4:] == (PAPER_EPOCHS, PAPER_PRECISION)} - set(pairs))
    cells_of = {p: groups.get(("cross", *p, "timnet", PAPER_EPOCHS, PAPER_PRECISION), {}) for p in pairs + extra}
    lines = ["## Table 2: cross-corpus, TIM-Net (train on all of the source, test on all of the target)", "",
             f"The paper's protocol: the five shared emotions ({', '.join(CROSS_CORPUS_LABELS)}), every utterance of "
             "the source to train and of the target to test, no target data in training. Each source model is "
             "trained once per run, at the source's length, and scored on each of its targets (centre cropped, or "
             "padded with the MFCC of silence), so a run's two pairs of one source share one model. Runs count up "
             f"from seed {DEFAULT_SEED}. The paper's per-pair figure is Table A4's best of its {TABLE_2_RUNS} runs; "
             f"its average is over the {TABLE_2_PAIRS} ordered pairs of {papers}, of which "
             f"we hold three, so our average is over the six pairs of {corpora}: a different set of pairs.", "",
             f"The paper uses no target data in training; our {LAST} figures use none at all. The columns marked "
             f"\"{TARGET_SELECTED}\" choose each run's epoch on the target corpus' own labels "
             "(`evaluation.epoch_selected_on_test`): the target picks the model, so they overstate what the model "
             "scores on a new corpus; they are shown only to compare with the protocol of the paper's Tables 1 and 3.",
             "", f"Command: `{COMMAND} --table 2 --corpora {','.join(SHARED_CORPORA)} --seeds 3`.", "",
             f"| source → target | paper best run UAR / WAR % | ours UAR %, {LAST} | ours WAR %, {LAST} | "
             f"UAR 95 % CI, {LAST} | WAR 95 % CI, {LAST} | ours best run UAR / WAR %, {LAST} | "
             f"ours UAR %, {TARGET_SELECTED} | ours WAR %, {TARGET_SELECTED} | runs |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for source, target in pairs + extra:
        cells = cells_of[(source, target)]
        figures = [c.pooled() for _, c in sorted(cells.items())]
        uars, wars = [f[0] for f in figures], [f[1] for f in figures]
        best = max(figures, key=lambda f: f[0]) if figures else None
        selected = _selected_summary(cells)
        runs = _seeds_text(sorted(cells)) if cells else "0: no records, not run yet"
        lines.append(f"| {source} → {target} | {_pair(TABLE_A4_BEST.get((source, target)))} | {_mean_std(uars)} | "
                     f"{_mean_std(wars)} | {_interval(uars)} | {_interval(wars)} | {_pair(best)} | {selected[0]} | "
                     f"{selected[1]} | {runs} |")
    per_run, selected, best, seeds = _table_2_average(cells_of, pairs)
    paper_mean = TABLE_2_AVERAGE["timnet"]
    paper_six = tuple(np.mean([TABLE_A4_BEST[p][k] for p in pairs], axis=0) for k in (0, 1)) \
        if all(p in TABLE_A4_BEST for p in pairs) else None
    done = sum(1 for p in pairs if cells_of[p])
    if seeds:
        u, w = [r[0] for r in per_run], [r[1] for r in per_run]
        ours = [_mean_std(u), _mean_std(w), _interval(u), _interval(w)]
        ours_selected = f"{_mean_std([r[0] for r in selected])} / {_mean_std([r[1] for r in selected])}" \
            if selected else NO_CURVE
        runs = _seeds_text(seeds)
    else:
        ours, ours_selected = ["—"] * 4, "—"
        runs = f"0: no run has all six pairs yet ({done} of 6 pairs have records)"
    lines += ["", "Average over pairs: each run's mean over the pairs, then mean ± sample standard deviation and a "
              "95 % Student-t interval over the runs (ours: only runs holding all six pairs). The best-run column "
              f"averages each pair's best run; the paper's over its {TABLE_2_RUNS} runs, ours over fewer.", "",
              f"| pairs | UAR %, {LAST} | WAR %, {LAST} | UAR 95 % CI, {LAST} | WAR 95 % CI, {LAST} | "
              f"best run per pair, UAR / WAR % | UAR / WAR %, {TARGET_SELECTED} | runs |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |",
              f"| paper (Table 2): the {TABLE_2_PAIRS} pairs of {papers} | "
              f"{paper_mean[0][0]:.2f} ± {paper_mean[0][1]:.2f} | {paper_mean[1][0]:.2f} ± {paper_mean[1][1]:.2f} | "
              f"— | — | {TABLE_A4_AVERAGE[0]:.1f} / {TABLE_A4_AVERAGE[1]:.1f} | — | {TABLE_2_RUNS} |",
              f"| paper (Table A4): the six pairs of {corpora} | — | — | — | — | {_pair(paper_six)} | — | "
              f"{TABLE_2_RUNS} |",
              f"| ours: the six pairs of {corpora} | {' | '.join(ours)} | {_pair(best)} | {ours_selected} | {runs} |"]
    return lines


def _paper_setting(key):
    """Whether a group's cells are of a paper table's setting (precision aside)."""
    kind, corpus, _, variant, epochs, _ = key
    return epochs == PAPER_EPOCHS and (corpus in TABLE_1 if kind == "cv" else variant == "timnet")


def _mixed_precision(groups):
    """bfloat16 cells of a paper setting beside their float32 twins: figures, and the paired test over folds."""
    keys = sorted(k for k in groups if k[5] != PAPER_PRECISION and _paper_setting(k))
    if not keys:
        return []
    lines = ["## Mixed precision (bfloat16) beside float32", "",
             "The same cells trained with `--precision bfloat16` (bfloat16 compute, float32 weights), each beside "
             "its float32 twin: same corpus, variant, seed and folds. The test pairs the two over the folds.", "",
             f"Command: `{COMMAND} --table 1 --corpora EMODB --precision bfloat16`.", "",
             f"| cell | seed | float32 UAR / WAR %, {LAST} | bfloat16 UAR / WAR %, {LAST} | WAR bfloat16 − float32 "
             f"[95 % CI], Wilcoxon p (pairs), {LAST} | float32 UAR / WAR %, {TEST_SELECTED} | bfloat16 UAR / WAR %, "
             f"{TEST_SELECTED} | WAR bfloat16 − float32 [95 % CI], Wilcoxon p (pairs), {TEST_SELECTED} |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key in keys:
        twins = groups.get(key[:5] + (PAPER_PRECISION,), {})
        name = f"{key[1]} → {key[2]}" if key[0] == "cross" else key[1]
        for seed, cell in sorted(groups[key].items()):
            twin = twins.get(seed)
            figures = [_pair(c.pooled()) if c.complete else f"{c.progress} (incomplete)" if c else "not run yet"
                       for c in (twin, cell)]
            selected = [_selected_pair(c) if c.complete else "—" if c else "not run yet" for c in (twin, cell)]
            test, selected_test = _both_tests({seed: twin}, {seed: cell}) if twin and twin.complete and cell.complete \
                else (None, None)
            compared = (str(test), str(selected_test) if selected_test else NO_CURVE) if test else ("—", "—")
            lines.append(f"| {name}, {VARIANT_NAMES.get(key[3], key[3])} | {seed} | {figures[0]} | {figures[1]} | "
                         f"{compared[0]} | {selected[0]} | {selected[1]} | {compared[1]} |")
    return lines


def _other_runs(groups, speaker_groups=None, normalised=None):
    """Cells outside the paper's settings (other epochs, other corpora): listed, never mixed into the tables.

    Of the leave-one-speaker-out cells, those the new-speakers table does not show (ablations, other epochs);
    of the normalised cells (`normalised`: {option: (10-fold groups, LOSO groups)}), those it does not show.
    """
    keys = [(k, "", groups) for k in sorted(groups) if not _paper_setting(k) and k[3] not in BASELINES]
    keys += [(k, "leave one speaker out", speaker_groups) for k in sorted(speaker_groups or {})
             if not _new_speakers_setting(k)]
    for option, (kfold_groups, loso_groups) in (normalised or {}).items():
        for protocol, option_groups in (("", kfold_groups), ("leave one speaker out", loso_groups)):
            keys += [(k, ", ".join(filter(None, (protocol, f"{option}-normalised"))), option_groups)
                     for k in sorted(option_groups) if not _normalised_setting(k)]
    if not keys:
        return []
    lines = ["## Other runs in the registry", "", "Settings outside the paper's (fewer epochs, other corpora): checks, "
             "not figures of the tables.", "", f"| cell | seed | epochs | folds | UAR %, {LAST} | WAR %, {LAST} | "
             f"UAR / WAR %, {TEST_SELECTED} |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, protocol, source in keys:
        cells = source[key]
        for seed, cell in sorted(cells.items()):
            name = f"{key[1]} → {key[2]}" if key[0] == "cross" else key[1]
            name += "" if key[5] == PAPER_PRECISION else f" ({key[5]})"
            name += f" ({protocol})" if protocol else ""
            figures = cell.pooled()
            folds = "—" if key[0] == "cross" else cell.progress
            lines.append(f"| {name}, {VARIANT_NAMES.get(key[3], key[3])} | {seed} | {key[4]} | {folds} | "
                         f"{figures[0]:.2f} | {figures[1]:.2f} | {_selected_pair(cell)} |")
    return lines


NEW_SPEAKERS_SYSTEMS = ("timnet", *BASELINES)
KFOLD, LOSO = "10-fold", "new speakers (LOSO)"


def _new_speakers_setting(key):
    """Whether a leave-one-speaker-out group is one the new-speakers table shows."""
    kind, _, _, variant, epochs, precision = key
    return kind == "cv" and precision == PAPER_PRECISION and (
        (variant == "timnet" and epochs == PAPER_EPOCHS) or (variant in BASELINES and epochs == BASELINE_EPOCHS))


def _normalised_setting(key):
    """Whether a normalised group is one the new-speakers table shows: TIM-Net's cv cells of the paper's setting."""
    kind, _, _, variant, epochs, precision = key
    return kind == "cv" and variant == "timnet" and epochs == PAPER_EPOCHS and precision == PAPER_PRECISION


def _fold_figures(cells):
    """([per-fold UAR], [per-fold WAR]) over the complete cells of a group, every (seed, fold) one value."""
    uars, wars = [], []
    for _, cell in sorted(cells.items()):
        if cell.complete:
            uars += [uar(r.y_true, r.y_pred) for r in cell.records]
            wars += [war(r.y_true, r.y_pred) for r in cell.records]
    return uars, wars


def _mean_interval(values):
    if not values:
        return "—"
    interval = confidence_interval(values)
    return f"{np.mean(values):.2f}" + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")


def _protocol_status(cells, n_name):
    complete = [c for _, c in sorted(cells.items()) if c.complete]
    parts = [f"{len(complete)} seed{'s' if len(complete) != 1 else ''} × {complete[0].unit.n_folds} {n_name}"] \
        if complete else []
    parts += [f"seed {s}: {c.progress} (incomplete)" for s, c in sorted(cells.items()) if not c.complete]
    return ", ".join(parts) or "not run yet"


def _new_speakers(groups, speaker_groups, normalised=None):
    """The new-speakers table; `normalised` ({option: (10-fold groups, LOSO groups)}) adds TIM-Net's normalised rows.

    A normalisation has rows (in every corpus) once the registry holds a cell of it in the table's setting.
    """
    shown = [option for option in NORMALISED if any(_normalised_setting(k) for g in (normalised or {}).get(option, ())
                                                    for k in g)]
    corpora = [c for c in SHARED_CORPORA]
    corpora += sorted(({k[1] for k in speaker_groups if _new_speakers_setting(k)}
                       | {k[1] for k in groups if k[0] == "cv" and k[3] in BASELINES}
                       | {k[1] for option in shown for g in normalised[option] for k in g if _normalised_setting(k)})
                      - set(corpora))
    lines = ["## New speakers: 10-fold beside leave-one-speaker-out, TIM-Net beside two baselines", "",
             "The paper's 10 folds put every speaker in the training and the test part of most folds; leave one "
             "speaker out (LOSO) tests each speaker with none of their recordings in training, which is what a "
             "model meets in use. The baselines run on the very same folds (same seeds, same speakers held out): "
             "MFCC statistics (mean, standard deviation, minimum, maximum, quartiles and mean absolute change of "
             "each coefficient of our MFCC cache) or eGeMAPS v02 functionals (audEERING's opensmile, a research and "
             "non-commercial licence), each into a standardised logistic regression whose C is chosen by inner "
             "cross-validation on the training part alone (by speaker under LOSO). \"per speaker\" rows first "
             "scale each speaker's features by that speaker's own mean and deviation (the held-out speaker's from "
             "its own recordings, unlabelled).", ""]
    if shown:
        lines += [
            "TIM-Net's \"normalised\" rows are the same model trained and tested on cepstral mean and variance "
            "normalised MFCCs (`--normalise`): \"utterance\" standardises each recording over its own real frames "
            "(padding left out), \"speaker\" each speaker over its recordings' real frames, a training speaker's "
            "from its recordings in the training part and the held-out speaker's from its own test recordings, "
            "unlabelled (transductive enrolment; under 10-fold every test speaker is also in the training part "
            "and takes those statistics). Their TIM-Net − system columns pair TIM-Net on raw MFCCs with "
            "them fold by fold (negative: the normalisation helps). Command: "
            f"`{COMMAND} --table 1 --corpora EMODB --protocol both --normalise utterance,speaker`.", ""]
    lines += [
            "Figures: mean over the folds (10-fold) or the held-out speakers (LOSO) of each fold's UAR and WAR, in "
            "percent, with a 95 % Student-t interval of the mean; last epoch for TIM-Net (500 epochs). Drop: 10-fold "
            "minus LOSO, points. TIM-Net − baseline: the per-fold WAR difference paired by seed and fold, mean "
            "[95 % CI], Wilcoxon p (pairs), within one protocol.", "",
            f"Command: `{COMMAND} --table 1,B --corpora {','.join(SHARED_CORPORA)} --protocol both "
            "--corpora_dir ../shared/corpora` (the baselines alone: `--table B`; seconds to minutes).", "",
            f"| corpus | system | UAR %, {KFOLD} [95 % CI] | WAR %, {KFOLD} [95 % CI] | UAR %, {LOSO} [95 % CI] | "
            f"WAR %, {LOSO} [95 % CI] | drop UAR / WAR, points | TIM-Net − system, WAR, {KFOLD} | "
            f"TIM-Net − system, WAR, {LOSO} | folds |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for corpus in corpora:
        cells = {}
        for variant in NEW_SPEAKERS_SYSTEMS:
            epochs = PAPER_EPOCHS if variant == "timnet" else BASELINE_EPOCHS
            key = ("cv", corpus, "", variant, epochs, PAPER_PRECISION)
            cells[variant] = (groups.get(key, {}), speaker_groups.get(key, {}))
        key = ("cv", corpus, "", "timnet", PAPER_EPOCHS, PAPER_PRECISION)
        for option in shown:
            cells[f"timnet-norm-{option}"] = (normalised[option][0].get(key, {}), normalised[option][1].get(key, {}))
        for variant in (NEW_SPEAKERS_SYSTEMS[0], *(f"timnet-norm-{o}" for o in shown), *NEW_SPEAKERS_SYSTEMS[1:]):
            kfold, loso = cells[variant]
            (k_uar, k_war), (l_uar, l_war) = _fold_figures(kfold), _fold_figures(loso)
            drop = f"{np.mean(k_uar) - np.mean(l_uar):+.2f} / {np.mean(k_war) - np.mean(l_war):+.2f}" \
                if k_war and l_war else "—"
            tests = []
            for protocol, own in ((0, kfold), (1, loso)):
                if variant == "timnet":
                    tests.append("—")
                    continue
                timnet = {s: c for s, c in cells["timnet"][protocol].items() if c.complete}
                test = paired_test({s: c for s, c in own.items() if c.complete}, timnet)
                tests.append(str(test) if test else "—")
            status = f"{KFOLD}: {_protocol_status(kfold, 'folds')}; LOSO: {_protocol_status(loso, 'speakers')}"
            name = VARIANT_NAMES.get(variant) or f"TIM-Net, {variant.rsplit('-', 1)[-1]}-normalised"
            lines.append(f"| {corpus} | {name} | {_mean_interval(k_uar)} | {_mean_interval(k_war)} | "
                         f"{_mean_interval(l_uar)} | {_mean_interval(l_war)} | {drop} | {tests[0]} | {tests[1]} | "
                         f"{status} |")
    return lines


def render(registry, figure=None):
    """The text of REPRODUCTION.md for the records under `registry`; `figure`: the link to Table 3's plot, if drawn."""
    records = read_records(registry)
    groups, speaker_groups = group_cells(records), group_cells(records, "speaker")
    normalised = {option: (group_cells(records, "kfold", option), group_cells(records, "speaker", option))
                  for option in NORMALISED}
    normalised = {option: pair for option, pair in normalised.items() if pair[0] or pair[1]}
    lines = ["# Reproduction", "",
             f"Generated by `{COMMAND} --report-only` from the records in `{os.path.basename(os.path.normpath(registry))}/` "
             "(one JSON per fold, with its predictions); do not edit by hand: notes go in "
             f"`{os.path.basename(os.path.normpath(registry))}/{NOTES}`. The paper's figures: {SOURCE}.", "",
             "Ours are pooled over the folds of a run, UAR / WAR in percent; over seeds, mean ± sample standard "
             "deviation and a 95 % Student-t interval of the mean. Every run uses the authors' settings and the "
             "corpus table's seed as its first seed; the folds of seed s are the authors' shuffled KFold with "
             "random_state s.", "",
             f"Every cell is shown two ways. **{LAST.capitalize()}** (honest): each fold's model after its last "
             f"epoch, scored as above. **{TEST_SELECTED.capitalize()}** (the paper's protocol for its Tables 1 and 3): "
             "each fold keeps the first epoch of the maximum of its own test-fold accuracy "
             "(`evaluation.epoch_selected_on_test`), so the test labels choose the model and the figure overstates "
             "what it scores on unseen speech; we show it only to compare with the paper. Its WAR is pooled "
             "exactly (each fold's accuracy at its epoch times the fold's test count, over all test samples); its "
             "UAR is the mean over folds of each fold's UAR at its epoch, since the per-epoch curve keeps no "
             f"per-class counts to pool. Records written before the curve was recorded show \"{NO_CURVE}\".", ""]
    for section in (_table_1(groups), _table_3(groups, figure), _table_2(groups),
                    _new_speakers(groups, speaker_groups, normalised), _mixed_precision(groups),
                    _other_runs(groups, speaker_groups, normalised)):
        if section:
            lines += section + [""]
    notes = os.path.join(registry, NOTES)
    if os.path.isfile(notes):
        with open(notes, encoding="utf-8") as handle:
            lines += [handle.read().rstrip("\n"), ""]
    return "\n".join(lines)
