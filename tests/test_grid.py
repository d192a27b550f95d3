"""The grid: the paper's tables as units, each trained by the same code as --mode train and --mode cross."""
import numpy as np
import pytest

from timnet_keras.config import CORPORA, DEFAULT_SEED
from timnet_keras.grid import GridError, GridSpec, UnitRunner, expand, parse_tables


def test_table_1_is_ten_folds_per_corpus_and_seed_from_the_corpus_tables_seed():
    units = expand(GridSpec(("1",), ("EMOVO", "CASIA"), seeds=2))
    assert len(units) == 2 * 2 * 10
    assert {u.seed for u in units if u.corpus == "EMOVO"} == {CORPORA["EMOVO"].seed, CORPORA["EMOVO"].seed + 1}
    assert {u.seed for u in units if u.corpus == "CASIA"} == {32, 33}
    assert [u.fold for u in units[:10]] == list(range(1, 11)) and all(u.epochs == 500 for u in units)
    assert units[0].seed == CORPORA["EMOVO"].seed and units[20].seed == CORPORA["EMOVO"].seed + 1  # seed by seed


def test_table_3_adds_four_ablations_and_shares_timnet_cells_with_table_1():
    one = {u.key for u in expand(GridSpec(("1",), ("EMODB",)))}
    both = expand(GridSpec(("1", "3"), ("EMODB",)))
    assert one <= {u.key for u in both}
    assert sorted({u.variant for u in both}) == ["no_bd", "no_df", "no_ms", "tcn", "timnet"]
    assert len(both) == len(set(u.key for u in both)) == 50


def test_table_2_trains_once_per_ordered_pair_and_run():
    units = expand(GridSpec(("2",), ("CASIA", "EMODB", "EMOVO"), seeds=3))
    assert len(units) == 6 * 3
    assert {(u.corpus, u.target) for u in units} == {(s, t) for s in ("CASIA", "EMODB", "EMOVO")
                                                     for t in ("CASIA", "EMODB", "EMOVO") if s != t}
    assert {u.seed for u in units} == {DEFAULT_SEED, DEFAULT_SEED + 1, DEFAULT_SEED + 2}


def test_a_bfloat16_grid_is_the_same_units_in_mixed_precision():
    plain = expand(GridSpec(("1", "2"), ("EMODB", "EMOVO")))
    mixed = expand(GridSpec(("1", "2"), ("EMODB", "EMOVO"), precision="bfloat16"))
    assert [u.cell + "-bfloat16" for u in plain] == [u.cell for u in mixed]
    source = type("Source", (), {"x": np.zeros((4, 188, 39)), "labels": tuple("abcdefg")})()
    training, _ = UnitRunner._settings(mixed[0], source)
    assert training.precision == "bfloat16" and training.epoch == 500


@pytest.mark.parametrize("text", ["4", "", "1,x"])
def test_unknown_tables_are_refused(text):
    with pytest.raises(GridError, match="choose 1, 2, 3"):
        parse_tables(text)


@pytest.mark.slow
def test_a_grid_unit_is_the_same_fold_as_the_train_mode(tmp_path):
    from timnet_keras.config import TRAINING_DEFAULTS
    from timnet_keras.extract import demo_features
    from timnet_keras.registry import Unit
    from timnet_keras.run_config import ModelConfig, RunConfig, TrainingConfig
    from timnet_keras.runs import run_cross_validation

    features = demo_features(n_utterances=40)
    config = RunConfig(data="DEMO", model=ModelConfig(frames=features.x.shape[1], num_classes=4),
                       training=TrainingConfig(epoch=1), seed=46, split_fold=2)
    folds = run_cross_validation(features, config, str(tmp_path), log=lambda *_: None, run_eagerly=True)
    record = UnitRunner(run_eagerly=True).run(Unit("cv", "DEMO", "timnet", 46, 1, fold=2, n_folds=2), features)
    np.testing.assert_array_equal(record.test_indices, folds[1].test_indices)
    np.testing.assert_allclose(record.probabilities, folds[1].probabilities, atol=1e-5)
    np.testing.assert_allclose(record.history["loss"], folds[1].history["loss"], rtol=1e-5)
    assert TRAINING_DEFAULTS["label_smoothing"] == record.training["label_smoothing"]


def test_the_command_line_lists_a_bfloat16_grid_before_running_it(tmp_path, capsys):
    from timnet_keras.cli import reproduce_main

    assert reproduce_main(["--table", "1", "--corpora", "EMODB", "--precision", "bfloat16", "--dry-run",
                           "--registry", str(tmp_path)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 10 and listed[0] == "todo  cv/EMODB/timnet/seed46-e500-bfloat16/fold01"
