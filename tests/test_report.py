"""REPRODUCTION.md from the registry: the paper beside ours, every cell shown, incomplete cells marked."""
import os
import shutil

import numpy as np

from timnet_keras.paper.figures import TABLE_1, TABLE_3
from timnet_keras.paper.registry import Unit, unit_record, read_records, write_record
from timnet_keras.paper.report import Cell, ablation_comparisons, confidence_interval, paired_test, render

LABELS = ("angry", "boredom", "disgust", "fear", "happy", "neutral", "sad")


def fold_record(variant, seed, fold, correct, n=10, precision="float32", corpus="EMODB", curve=None):
    """A 10-sample fold (EMODB unless told) of the paper's setting with `correct` right answers.

    `curve`: (test accuracies, test UARs) per epoch, as fractions, for a record with a test curve.
    """
    y_true = np.arange(n) % 7
    y_pred = np.where(np.arange(n) < correct, y_true, (y_true + 1) % 7)
    history = {"loss": [2.0 + fold / 10, 0.5]}
    if curve:
        history.update(test_accuracy=list(curve[0]), test_uar=list(curve[1]), test_loss=[1.0] * len(curve[0]))
    return unit_record(Unit("cv", corpus, variant, seed, 500, fold, 10, precision=precision), LABELS, np.arange(n),
                      y_true, np.eye(7)[y_pred], history=history)


def registry_with(tmp_path, cells, precision="float32", corpus="EMODB", curves=None):
    """`cells`: {(variant, seed): right answers per fold}; `curves`: {(variant, seed): a curve per fold}."""
    for (variant, seed), correct_per_fold in cells.items():
        for fold, correct in enumerate(correct_per_fold, start=1):
            curve = curves[(variant, seed)][fold - 1] if curves and (variant, seed) in curves else None
            write_record(str(tmp_path), fold_record(variant, seed, fold, correct, precision=precision, corpus=corpus,
                                                    curve=curve))
    return str(tmp_path)


def columns(line):
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def row(report, start):
    return next(line for line in report.splitlines() if line.startswith(start))


def test_every_paper_cell_has_a_row_even_with_an_empty_registry(tmp_path):
    report = render(str(tmp_path))
    for corpus, figures in TABLE_1.items():
        assert f"| {corpus} | {figures['last'][0]:.2f} / {figures['last'][1]:.2f} |" in report
    assert report.count("not run yet") >= len(TABLE_1) + 5 * len(TABLE_3)


def test_pooled_figures_over_seeds_and_the_paired_test_against_timnet(tmp_path):
    registry = registry_with(tmp_path, {("timnet", 46): [9] * 10, ("timnet", 47): [8] * 10,
                                        ("tcn", 46): [7] * 10, ("tcn", 47): [6] * 10})
    report = render(registry)
    assert row(report, "| EMODB | 89.19").split(" | ")[3] == "85.00 ± 7.07"  # WAR: seeds 90 and 80
    tcn = row(report, "| EMODB | TCN |")
    paper_gap = TABLE_3["EMODB"]["tcn"][1] - TABLE_3["EMODB"]["timnet"][1]
    assert f"| 65.00 ± 7.07 | no test curve | no test curve | 2 | 2.55 / 0.50 | {paper_gap:+.2f} | -20.00 [-20.0, -20.0], p = " in tcn
    assert "(20)" in tcn


def test_a_cell_with_missing_folds_is_marked_incomplete_and_kept_out_of_the_means(tmp_path):
    registry = registry_with(tmp_path, {("timnet", 46): [9] * 10, ("no_df", 46): [5] * 7})
    line = row(render(registry), "| EMODB | w/o DF |")
    assert "seed 46: 7/10 folds (incomplete; so far UAR / WAR " in line and "| — | — | 0 |" in line


def test_the_report_depends_on_the_records_alone(tmp_path):
    registry = registry_with(tmp_path, {("timnet", 46): [9] * 10})
    assert render(registry) == render(registry)
    open(tmp_path / "notes.md", "w").write("## Notes\n\nA finding.\n")
    assert render(registry).endswith("## Notes\n\nA finding.\n")


def test_intervals_and_paired_tests_need_enough_values():
    assert confidence_interval([90.0]) is None
    low, high = confidence_interval([90.0, 92.0])
    assert low < 90.0 and high > 92.0
    assert paired_test({}, {}) is None


def test_the_paired_interval_says_whether_our_folds_allow_the_papers_gap(tmp_path):
    # TCN loses 1 of 10 on odd folds and wins 1 on even ones: a mean of 0 over folds that scatter by 10 points.
    registry = registry_with(tmp_path, {("timnet", 46): [8] * 10, ("tcn", 46): [7, 9] * 5})
    report = render(registry)
    cells = {}
    for record in read_records(registry):
        cells.setdefault(record.unit.variant, []).append(record)
    test = paired_test({46: Cell(cells["timnet"])}, {46: Cell(cells["tcn"])})
    assert test.mean == 0.0 and test.pairs == 10 and test.p == 1.0
    assert -10.0 < test.low < -5.0 and 5.0 < test.high < 10.0  # t(9) 2.26 x 10.5 / sqrt(10) = 7.5
    assert f"| {str(test)} |" in row(report, "| EMODB | TCN |")


def test_bfloat16_cells_stand_beside_their_float32_twins_and_stay_out_of_the_tables(tmp_path):
    registry = registry_with(tmp_path, {("timnet", 46): [9] * 10})
    registry_with(tmp_path, {("timnet", 46): [9, 8, 7, 8, 9, 8, 7, 8, 9, 8]}, precision="bfloat16")
    report = render(registry)
    assert row(report, "| EMODB | 89.19").split(" | ")[3] == "90.00"  # Table 1: float32 alone
    mixed = row(report, "| EMODB, TIM-Net | 46 |")
    assert "## Mixed precision (bfloat16) beside float32" in report
    float32, bfloat16 = mixed.split(" | ")[2:4]
    assert float32.endswith("/ 90.00") and bfloat16.endswith("/ 81.00")  # WAR: 90 of 100, 81 of 100
    assert "| -9.00 [" in mixed and "], p = " in mixed and "(10)" in mixed


def test_table_3s_figure_sets_our_interval_beside_the_papers_gap_and_the_report_shows_it(tmp_path):
    from timnet_keras.paper.reproduction import TABLE_3_FIGURE, write_report

    registry = registry_with(tmp_path / "reproduction", {("timnet", 46): [8] * 10, ("tcn", 46): [7, 9] * 5,
                                                         ("no_df", 46): [5] * 7})  # no_df incomplete: not compared
    (comparison,) = ablation_comparisons(registry)
    assert (comparison.corpus, comparison.variant) == ("EMODB", "tcn")
    assert comparison.paper_gap == TABLE_3["EMODB"]["tcn"][1] - TABLE_3["EMODB"]["timnet"][1]
    assert comparison.ours.mean == 0.0 and comparison.ours.pairs == 10
    report = write_report(registry, str(tmp_path / "REPRODUCTION.md"))
    assert open(tmp_path / "reproduction" / TABLE_3_FIGURE, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert f"](reproduction/{TABLE_3_FIGURE})" in open(report).read()


def test_without_a_variant_to_compare_there_is_no_figure_and_no_link(tmp_path):
    from timnet_keras.paper.reproduction import TABLE_3_FIGURE, write_report

    registry = registry_with(tmp_path / "reproduction", {("timnet", 46): [8] * 10})
    report = write_report(registry, str(tmp_path / "REPRODUCTION.md"))
    assert not (tmp_path / "reproduction" / TABLE_3_FIGURE).exists()
    assert TABLE_3_FIGURE not in open(report).read()


def test_over_the_corpora_every_fold_is_a_pair_and_the_papers_gap_is_averaged_over_the_same_pairs(tmp_path):
    registry_with(tmp_path, {("timnet", 46): [8] * 10, ("tcn", 46): [7] * 10})  # EMODB: TCN 10 points lower
    registry = registry_with(tmp_path, {("timnet", 1): [8] * 10, ("tcn", 1): [8] * 10}, corpus="EMOVO")  # equal
    *per_corpus, over = ablation_comparisons(registry)
    assert [(c.corpus, c.ours.mean) for c in per_corpus] == [("EMODB", -10.0), ("EMOVO", 0.0)]
    paper_gap = np.mean([TABLE_3[c]["tcn"][1] - TABLE_3[c]["timnet"][1] for c in ("EMODB", "EMOVO")])
    assert over.corpus == "EMODB+EMOVO" and over.ours.pairs == 20 and over.ours.mean == -5.0
    assert abs(over.paper_gap - paper_gap) < 1e-9
    assert f"| TCN | EMODB, EMOVO | {paper_gap:+.2f} | {over.ours} |" in render(registry)


def test_a_cell_with_test_curves_shows_both_protocols_with_each_folds_first_best_epoch(tmp_path):
    # Odd folds: 10 samples, best 1.0 first at epoch 2 (tied at 3, where the UAR differs); last epoch 9 right.
    # Even folds: 11 samples, best at the last epoch, 10 right. The fold sizes differ, so pooled WAR and mean WAR do too.
    odd = ([0.5, 1.0, 1.0, 0.9], [0.5, 0.96, 0.80, 0.9])
    even = ([0.5, 0.7, 0.8, 10 / 11], [0.5, 0.7, 0.8, 0.88])
    for fold in range(1, 11):
        curve, (n, correct) = (odd, (10, 9)) if fold % 2 else (even, (11, 10))
        write_record(str(tmp_path), fold_record("timnet", 46, fold, correct, n=n, curve=curve))
    report = render(str(tmp_path))
    table_1 = columns(row(report, "| EMODB | 89.19"))
    assert table_1[3] == f"{100 * 95 / 105:.2f}"  # last epoch: 5 x 9 + 5 x 10 right of 105, as before
    assert table_1[5] == "95.17 / 95.70"  # the paper's test-selected figure beside ours
    assert table_1[6:8] == ["92.00", f"{100 * 100 / 105:.2f}"]  # UAR: mean of 96 and 88; WAR: 5 x 10 + 5 x 10 of 105
    header = columns(row(report, "| corpus | paper UAR / WAR %"))
    assert header[3] == "ours WAR %, last epoch" and header[7] == "ours WAR %, test-selected"
    timnet = columns(row(report, "| EMODB | TIM-Net |"))
    assert timnet[4:7] == [f"{100 * 95 / 105:.2f}", "92.00", f"{100 * 100 / 105:.2f}"]


def test_a_cell_without_test_curves_says_so_and_keeps_its_last_epoch_figure(tmp_path):
    registry = registry_with(tmp_path, {("timnet", 46): [9] * 10})
    table_1 = columns(row(render(registry), "| EMODB | 89.19"))
    assert table_1[3] == "90.00" and table_1[6:8] == ["no test curve", "no test curve"]


def test_table_3s_gaps_are_taken_within_each_protocol(tmp_path):
    # Last epoch: TCN 2 right fewer on every fold (-20). Test-selected: TIM-Net peaks at 10, TCN at 10 on odd
    # folds and 8 on even ones, so the gap is 0 and -20 in turn (-10).
    timnet = [([1.0, 0.9], [1.0, 0.9])] * 10
    tcn = [([1.0, 0.7], [1.0, 0.7]) if fold % 2 else ([0.8, 0.7], [0.8, 0.7]) for fold in range(1, 11)]
    registry_with(tmp_path, {("timnet", 46): [9] * 10, ("tcn", 46): [7] * 10},
                  curves={("timnet", 46): timnet, ("tcn", 46): tcn})
    registry = registry_with(tmp_path, {("timnet", 1): [8] * 10, ("tcn", 1): [8] * 10}, corpus="EMOVO")  # no curve
    emodb, emovo, over = ablation_comparisons(registry)
    assert (emodb.ours.mean, emodb.test_selected.mean, emodb.test_selected.pairs) == (-20.0, -10.0, 10)
    assert emovo.ours.mean == 0.0 and emovo.test_selected is None
    assert over.ours.pairs == 20 and over.test_selected is None  # EMOVO's pairs have no curve: not over a subset
    report = render(registry)
    tcn_row = columns(row(report, "| EMODB | TCN |"))
    assert tcn_row[10].startswith("-20.00 [-20.0, -20.0], p = ") and tcn_row[11] == str(emodb.test_selected)
    assert tcn_row[11].startswith("-10.00 [")
    assert columns(row(report, "| EMOVO | TCN |"))[11] == "no test curve"
    assert row(report, "| TCN | EMODB, EMOVO |").endswith(f"| {over.ours} | no test curve |")


def test_a_cross_corpus_run_shows_its_test_selected_figure_on_the_targets_curve(tmp_path):
    y_true = np.arange(20) % 5
    unit = Unit("cross", "EMODB", "timnet", 46, 500, target="EMOVO")
    history = {"loss": [2.0, 0.5], "test_accuracy": [0.3, 0.45, 0.4], "test_uar": [0.3, 0.44, 0.4],
               "test_loss": [2.0, 1.9, 1.8]}
    y_pred = np.where(np.arange(20) < 8, y_true, (y_true + 1) % 5)  # the last epoch: 8 of 20 right
    write_record(str(tmp_path), unit_record(unit, LABELS[:5], np.arange(20), y_true, np.eye(5)[y_pred], history=history))
    report = render(str(tmp_path))
    pair = columns(row(report, "| EMODB → EMOVO |"))
    assert pair[3] == "40.00" and pair[4:6] == ["—", "—"] and pair[7:] == ["44.00", "45.00", "1 (seed 46)"]
    assert columns(row(report, "| CASIA → EMODB |"))[-1] == "0: no records, not run yet"
    ours = columns(row(report, "| ours: the six pairs of CASIA, EMODB, EMOVO |"))
    assert ours[1:] == ["—"] * 6 + ["0: no run has all six pairs yet (1 of 6 pairs have records)"]


SIX_PAIRS = [(s, t) for s in ("CASIA", "EMODB", "EMOVO") for t in ("CASIA", "EMODB", "EMOVO") if s != t]


def cross_record(source, target, seed, correct, selected_accuracy, n=20):
    """A 20-sample pair (five classes) with `correct` right at the last epoch; its curve peaks at epoch 2."""
    y_true = np.arange(n) % 5
    y_pred = np.where(np.arange(n) < correct, y_true, (y_true + 1) % 5)
    history = {"loss": [2.0, 0.5, 0.4], "test_accuracy": [0.1, selected_accuracy, correct / n],
               "test_uar": [0.1, selected_accuracy - 0.02, correct / n], "test_loss": [2.0, 1.9, 1.8]}
    return unit_record(Unit("cross", source, "timnet", seed, 500, target=target), LABELS[:5], np.arange(n), y_true,
                      np.eye(5)[y_pred], history=history)


def test_table_2_shows_each_pair_over_its_runs_and_the_average_over_the_six_pairs_beside_the_papers(tmp_path):
    from timnet_keras.training.evaluation import uar
    from timnet_keras.paper.figures import TABLE_2_AVERAGE, TABLE_A4_BEST

    figures = {}  # (pair, seed) -> (UAR, WAR) at the last epoch, computed here from the predictions
    for seed in (46, 47, 48):
        for k, pair in enumerate(SIX_PAIRS):
            if seed == 48 and k == 5:
                continue  # seed 48 lacks one pair: it cannot enter the average over the six
            correct = 4 + k + 2 * (seed - 46)
            record = cross_record(*pair, seed, correct, 0.6 + 0.05 * (seed - 46))
            write_record(str(tmp_path), record)
            figures[(pair, seed)] = (uar(record.y_true, record.y_pred), 100 * correct / 20)
    report = render(str(tmp_path))

    first = columns(row(report, "| CASIA → EMODB |"))
    wars = [figures[(SIX_PAIRS[0], s)][1] for s in (46, 47, 48)]
    assert first[1] == "{:.2f} / {:.2f}".format(*TABLE_A4_BEST[("CASIA", "EMODB")])
    assert first[3] == f"{np.mean(wars):.2f} ± {np.std(wars, ddof=1):.2f}" == "30.00 ± 10.00"
    low, high = confidence_interval(wars)
    assert first[5] == f"{low:.2f}–{high:.2f}" and first[9] == "3 (seeds 46, 47, 48)"
    assert first[7:9] == ["63.00 ± 5.00", "65.00 ± 5.00"]  # each run at epoch 2 of its target curve
    assert columns(row(report, "| EMOVO → EMODB |"))[9] == "2 (seeds 46, 47)"

    per_run = [np.mean([figures[(p, s)] for p in SIX_PAIRS], axis=0) for s in (46, 47)]  # seed 48: five pairs only
    ours = columns(row(report, "| ours: the six pairs of CASIA, EMODB, EMOVO |"))
    u, w = [r[0] for r in per_run], [r[1] for r in per_run]
    assert ours[1:3] == [f"{np.mean(u):.2f} ± {np.std(u, ddof=1):.2f}", f"{np.mean(w):.2f} ± {np.std(w, ddof=1):.2f}"]
    assert ours[2] == "37.50 ± 7.07" and ours[4] == "{:.2f}–{:.2f}".format(*confidence_interval(w))
    assert ours[6] == "60.50 ± 3.54 / 62.50 ± 3.54" and ours[7] == "2 (seeds 46, 47)"
    best = np.mean([max((figures[(p, s)] for s in (46, 47, 48) if (p, s) in figures), key=lambda f: f[0])
                    for p in SIX_PAIRS], axis=0)
    assert ours[5] == f"{best[0]:.2f} / {best[1]:.2f}"
    paper = columns(row(report, "| paper (Table 2): the 20 pairs of"))
    assert paper[1:3] == ["{:.2f} ± {:.2f}".format(*TABLE_2_AVERAGE["timnet"][0]),
                          "{:.2f} ± {:.2f}".format(*TABLE_2_AVERAGE["timnet"][1])]
    six = np.mean([TABLE_A4_BEST[p] for p in SIX_PAIRS], axis=0)
    assert columns(row(report, "| paper (Table A4): the six pairs of"))[5] == f"{six[0]:.2f} / {six[1]:.2f}"
    assert "our average is over the six pairs of CASIA, EMODB, EMOVO: a different set of pairs" in report


def test_the_committed_records_without_curves_keep_their_figures(tmp_path):
    cell = os.path.join("cv", "EMODB", "timnet", "seed46-e500")
    committed = os.path.join(os.path.dirname(__file__), os.pardir, "reproduction", "records", cell)
    shutil.copytree(committed, tmp_path / "records" / cell)
    table_1 = columns(row(render(str(tmp_path)), "| EMODB | 89.19"))
    assert table_1[2:4] == ["89.81", "90.84"] and table_1[6:8] == ["no test curve", "no test curve"]
