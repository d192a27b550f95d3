"""New speakers (#38): leave-one-speaker-out cells in the grid, and two baselines on the very same folds."""
import json
import os
from dataclasses import replace

import numpy as np
import pytest

from conftest import EMODB_WAV, needs_emodb, tiny_grid_flags
from timnet_keras.paper.baselines import BASELINES, fit_fold, mfcc_statistics, speaker_standardised
from timnet_keras.paper.grid import GridSpec, SPEAKER_COUNTS, expand, held_out_speakers, parse_protocols, unit_folds
from timnet_keras.paper.registry import Unit, unit_record, read_record, write_record


@pytest.fixture(scope="module")
def demo():
    from timnet_keras.features.extract import demo_features

    return demo_features(n_utterances=60)


def speaker_units(corpus):
    return expand(GridSpec(("1", "B"), (corpus,), protocols=("speaker",)))


def assert_no_test_speaker_trains(units, features):
    speakers = np.asarray(features.speakers)
    tested = []
    for unit in units:
        train, test = unit_folds(unit, features)
        assert not set(speakers[train]) & set(speakers[test]), unit.key
        assert len(set(speakers[test])) == 1 and len(train) + len(test) == len(speakers)
        assert held_out_speakers(unit, features, test) == (speakers[test][0],)
        tested.append(speakers[test][0])
    return tested


def test_no_leave_one_speaker_out_fold_trains_on_its_test_speaker_on_demo(demo):
    units = [u for u in speaker_units("DEMO") if u.variant == "timnet"]
    assert len(units) == SPEAKER_COUNTS["DEMO"] == len(set(demo.speakers))
    assert assert_no_test_speaker_trains(units, demo) == sorted(set(demo.speakers))  # fold k: the k-th speaker


@needs_emodb
def test_no_leave_one_speaker_out_fold_trains_on_its_test_speaker_with_emodbs_own_speaker_rule():
    from timnet_keras.features.cache import FeatureSet, one_hot
    from timnet_keras.features.corpora import read_corpus

    labels, utterances = read_corpus("EMODB", os.path.dirname(EMODB_WAV))
    assert all(u.speaker == os.path.basename(u.path)[:2] for u in utterances)  # SSTTTEV.wav: SS is the speaker
    rank = {label: k for k, label in enumerate(labels)}
    features = FeatureSet(np.zeros((len(utterances), 1, 1)), one_hot([rank[u.label] for u in utterances], len(labels)),
                          labels, speakers=tuple(u.speaker for u in utterances))
    units = [u for u in speaker_units("EMODB") if u.variant == "mfcc_stats"]
    assert len(units) == 10
    assert len(assert_no_test_speaker_trains(units, features)) == 10


def test_a_corpus_with_another_number_of_speakers_is_refused(demo):
    from timnet_keras.paper.grid import GridError

    unit = speaker_units("DEMO")[0]
    with pytest.raises(GridError, match="hold 5 speakers, the cell expects 6"):
        unit_folds(unit, replace(demo, speakers=tuple("spk1" if s == "spk6" else s for s in demo.speakers)))


def test_kfold_units_keep_their_names_and_speaker_units_get_their_own():
    kfold = expand(GridSpec(("1", "3"), ("EMODB", "EMOVO")))
    assert kfold == expand(GridSpec(("1", "3"), ("EMODB", "EMOVO"), protocols=parse_protocols("kfold")))
    assert kfold[0].key == "cv/EMODB/timnet/seed46-e500/fold01"
    both = expand(GridSpec(("1",), ("EMODB", "CASIA"), protocols=parse_protocols("both")))
    speaker = [u for u in both if u.protocol == "speaker"]
    assert [u.key for u in both if u.protocol == "kfold"] == [u.key for u in expand(GridSpec(("1",), ("EMODB", "CASIA")))]
    assert len(speaker) == 10 + 4 and speaker[2].key == "cv/EMODB/timnet/seed46-e500-speaker/fold03"
    assert len({u.key for u in both}) == len(both)
    baselines = expand(GridSpec(("B",), ("EMOVO",), protocols=("kfold", "speaker")))
    assert len(baselines) == len(BASELINES) * (10 + 6)
    assert baselines[0].key == "cv/EMOVO/mfcc_stats/seed1-e0/fold01"  # the same seed, hence folds, as TIM-Net's
    assert baselines[10].key == "cv/EMOVO/mfcc_stats/seed1-e0-speaker/fold01"


def test_an_older_record_reads_as_kfold_and_a_speaker_record_says_what_it_held_out(tmp_path, rng):
    older = {k: v for k, v in Unit("cv", "EMODB", "timnet", 46, 500, 1, 10).to_json().items() if k != "protocol"}
    assert Unit.from_json(older).protocol == "kfold" and Unit.from_json(older).key == "cv/EMODB/timnet/seed46-e500/fold01"
    unit = Unit("cv", "EMODB", "timnet", 46, 500, 3, 10, protocol="speaker")
    record = unit_record(unit, ("a", "b"), np.arange(4), np.array([0, 1, 0, 1]), rng.dirichlet([1, 1], 4),
                        held_out_speakers=("08",))
    path = write_record(str(tmp_path), record)
    assert path.endswith(os.path.join("seed46-e500-speaker", "fold03.json"))
    stored = json.load(open(path))
    assert stored["protocol"] == "speaker" and stored["held_out_speakers"] == ["08"]
    assert read_record(path).held_out_speakers == ("08",) and read_record(path).unit == unit


def fitted(variant, x, classes, speakers, train, protocol):
    inputs, pipeline, c, _ = fit_fold(variant, x, classes, speakers, train, protocol, 46)
    scaler, classifier = pipeline.named_steps["scale"], pipeline.named_steps["classify"]
    return c, scaler.mean_, scaler.scale_, classifier.coef_, classifier.intercept_, inputs[train]


@pytest.mark.parametrize("variant", ["mfcc_stats", "mfcc_stats_spk"])
@pytest.mark.parametrize("protocol", ["kfold", "speaker"])
def test_a_baselines_scaler_and_classifier_do_not_change_when_only_the_test_part_changes(demo, variant, protocol, rng):
    x, classes, speakers = mfcc_statistics(demo.x), demo.classes, np.asarray(demo.speakers)
    unit = Unit("cv", "DEMO", variant, 46, 0, 2, 2 if protocol == "kfold" else 6, protocol=protocol)
    train, test = unit_folds(unit, demo)
    changed_x, changed_classes = x.copy(), classes.copy()
    changed_x[test] = rng.normal(50.0, 30.0, size=(len(test), x.shape[1]))  # other recordings
    changed_classes[test] = (classes[test] + 1) % len(demo.labels)  # other labels
    before = fitted(variant, x, classes, speakers, train, protocol)
    after = fitted(variant, changed_x, changed_classes, speakers, train, protocol)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_per_speaker_standardisation_uses_a_held_out_speaker_s_own_recordings_only():
    x = np.array([[0.0], [2.0], [100.0], [300.0]])
    out = speaker_standardised(x, ["a", "a", "b", "b"], np.array([0, 1]))
    np.testing.assert_allclose(out.ravel(), [-1, 1, -1, 1])
    # under kfold a speaker in the training part is scaled by its training rows alone, test rows included
    out = speaker_standardised(np.array([[0.0], [2.0], [40.0]]), ["a", "a", "a"], np.array([0, 1]))
    np.testing.assert_allclose(out.ravel(), [-1, 1, 39])


def test_without_opensmile_the_egemaps_units_are_skipped_with_a_message(monkeypatch):
    import timnet_keras.paper.baselines as baselines
    from timnet_keras.paper.reproduction import _without_unavailable_baselines

    monkeypatch.setattr(baselines, "opensmile_available", lambda: False)
    units = expand(GridSpec(("B",), ("DEMO",), protocols=("speaker",)))
    said = []
    kept = _without_unavailable_baselines(units, said.append)
    assert {u.variant for u in kept} == {"mfcc_stats", "mfcc_stats_spk"}
    assert len(said) == 1 and "12 eGeMAPS baseline units skipped" in said[0] and "timnet-keras[baselines]" in said[0]


@pytest.mark.slow
def test_the_baselines_run_through_the_grid_on_demo_in_both_protocols(tmp_path, demo_mfcc, capsys):
    from timnet_keras.paper.baselines import opensmile_available
    from timnet_keras.cli import reproduce_main
    from timnet_keras.paper.registry import finished_units, read_records

    registry = str(tmp_path / "reproduction")
    flags = tiny_grid_flags(demo_mfcc, registry)
    flags[flags.index("--table") + 1] = "B"
    assert reproduce_main(flags + ["--seeds", "1", "--protocol", "both"]) == 0
    variants = BASELINES if opensmile_available() else ("mfcc_stats", "mfcc_stats_spk")
    expected = {f"cv/DEMO/{v}/seed46-e0/fold0{k}" for v in variants for k in (1, 2)}
    expected |= {f"cv/DEMO/{v}/seed46-e0-speaker/fold0{k}" for v in variants for k in range(1, 7)}
    assert finished_units(registry) == expected
    if not opensmile_available():
        assert "eGeMAPS baseline units skipped" in capsys.readouterr().out
    records = read_records(registry)
    for record in records:
        assert record.probabilities.shape == (len(record.test_indices), 4) and record.labels == ("angry", "happy",
                                                                                                 "neutral", "sad")
        assert record.training["protocol"] == record.unit.protocol and record.training["C"] > 0
        assert (record.held_out_speakers != ()) == (record.unit.protocol == "speaker")
    speaker_folds = [r for r in records if r.unit.protocol == "speaker" and r.unit.variant == "mfcc_stats"]
    assert sorted(r.held_out_speakers[0] for r in speaker_folds) == ["spk1", "spk2", "spk3", "spk4", "spk5", "spk6"]
    report = open(os.path.join(registry, "R.md")).read()
    assert "## New speakers" in report
    row = next(line for line in report.splitlines() if line.startswith("| DEMO | MFCC statistics |"))
    assert row.endswith("| 10-fold: 1 seed × 2 folds; LOSO: 1 seed × 6 speakers |")
    assert "| DEMO | TIM-Net | — |" in report and "not run yet" in report


def test_the_new_speakers_table_sets_both_protocols_side_by_side_with_the_paired_test(tmp_path):
    from timnet_keras.paper.report import render

    labels = tuple("abcdefg")

    def write(variant, epochs, protocol, correct_per_fold, n=10, n_folds=10):
        for fold, correct in enumerate(correct_per_fold, start=1):
            y_true = np.arange(n) % 7
            y_pred = np.where(np.arange(n) < correct, y_true, (y_true + 1) % 7)
            unit = Unit("cv", "EMODB", variant, 46, epochs, fold, n_folds, protocol=protocol)
            write_record(str(tmp_path), unit_record(unit, labels, np.arange(n), y_true, np.eye(7)[y_pred],
                                                   held_out_speakers=(f"{fold:02d}",) if protocol == "speaker" else ()))

    write("timnet", 500, "kfold", [9] * 10)
    write("mfcc_stats", 0, "kfold", [7, 8] * 5)
    write("mfcc_stats", 0, "speaker", [6] * 10)
    write("egemaps", 0, "speaker", [5] * 4)  # incomplete
    report = render(str(tmp_path))
    rows = [line for line in report.splitlines() if line.startswith("| EMODB | MFCC statistics |")]
    assert len(rows) == 1  # once, though the corpus is a shared one with baseline records
    cells = [c.strip() for c in rows[0].strip("|").split(" | ")]
    assert cells[3].startswith("75.00 [") and cells[5] == "60.00 [60.00, 60.00]"
    assert cells[6].endswith("/ +15.00")  # WAR: 75 over ten folds minus 60 over ten speakers
    assert cells[7].startswith("+15.00 [") and "(10)" in cells[7] and cells[8] == "—"  # TIM-Net − baseline; no LOSO TIM-Net
    timnet = [line for line in report.splitlines() if line.startswith("| EMODB | TIM-Net | ")][-1]
    assert " | 90.00 [90.00, 90.00] | " in timnet and timnet.endswith("| 10-fold: 1 seed × 10 folds; LOSO: not run yet |")
    assert "| EMODB | eGeMAPS | — | — | — | — | — | — | — | 10-fold: not run yet; LOSO: seed 46: 4/10 folds (incomplete) |" \
        in report
    assert "| CASIA | TIM-Net | — |" in report  # cells without records say so
