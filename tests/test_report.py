"""REPRODUCTION.md from the registry: the paper beside ours, every cell shown, incomplete cells marked."""
import numpy as np

from timnet_keras.paper import TABLE_1, TABLE_3
from timnet_keras.registry import Unit, UnitRecord, read_records, write_record
from timnet_keras.report import Cell, ablation_comparisons, confidence_interval, paired_test, render

LABELS = ("angry", "boredom", "disgust", "fear", "happy", "neutral", "sad")


def fold_record(variant, seed, fold, correct, n=10, precision="float32", corpus="EMODB"):
    """A 10-sample fold (EMODB unless told) of the paper's setting with `correct` right answers."""
    y_true = np.arange(n) % 7
    y_pred = np.where(np.arange(n) < correct, y_true, (y_true + 1) % 7)
    return UnitRecord(Unit("cv", corpus, variant, seed, 500, fold, 10, precision=precision), LABELS, np.arange(n),
                      y_true, np.eye(7)[y_pred], history={"loss": [2.0 + fold / 10, 0.5]})


def registry_with(tmp_path, cells, precision="float32", corpus="EMODB"):
    for (variant, seed), correct_per_fold in cells.items():
        for fold, correct in enumerate(correct_per_fold, start=1):
            write_record(str(tmp_path), fold_record(variant, seed, fold, correct, precision=precision, corpus=corpus))
    return str(tmp_path)


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
    assert f"| 65.00 ± 7.07 | 2 | 2.55 / 0.50 | {paper_gap:+.2f} | -20.00 [-20.0, -20.0], p = " in tcn
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
    from timnet_keras.reproduction import TABLE_3_FIGURE, write_report

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
    from timnet_keras.reproduction import TABLE_3_FIGURE, write_report

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
