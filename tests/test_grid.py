"""The grid: the paper's tables as units, each trained by the same code as --mode train and --mode cross."""
import numpy as np
import pytest

from timnet_keras.config import CORPORA, DEFAULT_SEED
from timnet_keras.paper.grid import GridError, GridSpec, UnitRunner, expand, parse_tables

from conftest import CHEAP_EAGER, count_trainings

# Backend-agnostic flows: make test runs them once, in its JAX pass, where their tiny trainings are cheapest (conftest).
pytestmark = pytest.mark.jax_pass


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
    from timnet_keras.config import TRAINING_DEFAULTS, default_num_blocks
    from timnet_keras.features.extract import demo_features
    from timnet_keras.paper.registry import Unit
    from timnet_keras.runs.run_config import ModelConfig, RunConfig, TrainingConfig
    from timnet_keras.runs.modes import run_cross_validation

    features = demo_features(n_utterances=40)
    config = RunConfig(data="DEMO", model=ModelConfig(frames=features.x.shape[1], num_classes=4,
                                                            num_blocks=default_num_blocks("DEMO")),
                       training=TrainingConfig(epoch=1), seed=46, split_fold=2)
    folds = run_cross_validation(features, config, str(tmp_path), log=lambda *_: None, run_eagerly=CHEAP_EAGER)
    record = UnitRunner(run_eagerly=CHEAP_EAGER).run(Unit("cv", "DEMO", "timnet", 46, 1, fold=2, n_folds=2), features)
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


def test_table_2_is_one_training_per_source_and_run_for_all_its_targets():
    from timnet_keras.paper.grid import trainings

    groups = trainings(expand(GridSpec(("2",), ("CASIA", "EMODB", "EMOVO"), seeds=3)))
    assert len(groups) == 3 * 3 and all(len(group) == 2 for group in groups)
    assert {(g[0].corpus, g[0].seed) for g in groups} == {(c, s) for c in ("CASIA", "EMODB", "EMOVO")
                                                          for s in (DEFAULT_SEED, DEFAULT_SEED + 1, DEFAULT_SEED + 2)}
    assert all(len({u.training_key for u in g}) == 1 and g[0].corpus not in {u.target for u in g} for g in groups)
    assert len(trainings(expand(GridSpec(("1",), ("EMODB",))))) == 10  # a fold is its own training


def corpus_as(labels, seed, length=8192):
    """A small generated corpus whose four classes are renamed to `labels` (they stay separable)."""
    from timnet_keras.features.cache import FeatureSet
    from timnet_keras.features.extract import demo_features

    base = demo_features(mean_signal_length=length, n_utterances=24, seed=seed)
    return FeatureSet(base.x, base.y, tuple(labels), base.paths, base.speakers, base.settings)


@pytest.mark.slow
def test_a_source_serving_two_targets_is_trained_once_and_scores_each_as_if_trained_for_it_alone(monkeypatch):
    from timnet_keras.paper.registry import Unit

    four = ("angry", "happy", "neutral", "sad")
    features = {"SRC": corpus_as(four, 1), "TA": corpus_as(four, 2, 6144), "TB": corpus_as(four, 3, 12288)}
    units = [Unit("cross", "SRC", "timnet", 46, 2, target=t) for t in ("TA", "TB")]
    calls = count_trainings(monkeypatch)
    runner = UnitRunner(run_eagerly=CHEAP_EAGER)  # one runner, as a grid worker: every training starts from its seed
    together = runner.run_training(units, features)
    assert calls == ["cross/SRC/timnet/seed46-e2"]  # one training for both targets
    assert [r.unit for r in together] == units and all(r.training["targets"] == ["TA", "TB"] for r in together)
    assert together[0].history["loss"] == together[1].history["loss"]
    for record, target in zip(together, ("TA", "TB")):  # the same numbers as a training for this target alone
        alone = runner.run(record.unit, features["SRC"], features[target])
        np.testing.assert_allclose(record.probabilities, alone.probabilities, atol=1e-6)
        for key in ("loss", "test_accuracy", "test_uar", "test_loss"):
            np.testing.assert_allclose(record.history[key], alone.history[key], atol=1e-6)
        assert len(record.y_true) == len(features[target].x) and record.labels == four
    assert together[0].history["test_loss"] != together[1].history["test_loss"]  # each its own target's curve
    assert len(calls) == 3


@pytest.mark.slow
def test_a_target_sharing_other_emotions_with_the_source_gets_a_training_of_its_own(monkeypatch):
    from timnet_keras.paper.registry import Unit

    features = {"SRC": corpus_as(("angry", "happy", "neutral", "sad"), 1),
                "TA": corpus_as(("angry", "happy", "neutral", "sad"), 2),
                "TB": corpus_as(("angry", "happy", "neutral", "surprise"), 3),
                "TC": corpus_as(("sad", "happy", "neutral", "angry"), 4)}
    units = [Unit("cross", "SRC", "timnet", 46, 1, target=t) for t in ("TA", "TB", "TC")]
    calls = count_trainings(monkeypatch)
    records = UnitRunner(run_eagerly=CHEAP_EAGER).run_training(units, features)
    assert len(calls) == 2 and [r.unit.target for r in records] == ["TA", "TB", "TC"]
    assert [r.training["targets"] for r in records] == [["TA", "TC"], ["TB"], ["TA", "TC"]]
    assert records[1].labels == ("angry", "happy", "neutral") and records[1].probabilities.shape[1] == 3


class FakeRef:
    def __init__(self, value):
        self.value = value


def fake_ray_module(dispatched):
    """Just enough of Ray for run_ray in one process: actors run at once; only top-level refs are resolved, as Ray does."""
    import types

    ray = types.ModuleType("ray")
    exceptions = types.ModuleType("ray.exceptions")
    exceptions.RayActorError = type("RayActorError", (Exception,), {})
    exceptions.RayTaskError = type("RayTaskError", (Exception,), {})
    resolve = lambda args: [a.value if isinstance(a, FakeRef) else a for a in args]

    class Method:
        def __init__(self, bound):
            self.bound = bound

        def remote(self, *args):
            dispatched.append((self.bound.__name__, args))
            return FakeRef(self.bound(*resolve(args)))

    class Handle:
        def __init__(self, instance):
            self.instance = instance

        def __getattr__(self, name):
            return Method(getattr(self.instance, name))

    class ActorClass:
        def __init__(self, cls):
            self.cls = cls

        def options(self, **_):
            return self

        def remote(self, *args):
            return Handle(self.cls(*resolve(args)))

    ray.remote = ActorClass
    ray.is_initialized = lambda: True
    ray.nodes = lambda: [{"Alive": True, "Resources": {"CPU": 2}}]
    ray.put = FakeRef
    ray.get = lambda ref: ref.value
    ray.wait = lambda refs, num_returns=1: (refs[:num_returns], refs[num_returns:])
    ray.kill = lambda actor: None
    ray.get_runtime_context = lambda: types.SimpleNamespace(get_node_id=lambda: "fake-node")
    ray.exceptions = exceptions
    return ray, exceptions


@pytest.mark.slow
def test_the_ray_executor_sends_a_source_run_to_one_worker_and_gets_all_its_targets_back(monkeypatch):
    import sys

    from timnet_keras.paper.executors import run_ray
    from timnet_keras.paper.registry import Unit

    four = ("angry", "happy", "neutral", "sad")
    features = {name: corpus_as(four, seed) for seed, name in enumerate(("SRC", "TA", "TB"), start=1)}
    units = [Unit("cross", s, "timnet", 46, 1, target=t) for s in ("SRC", "TA") for t in features if t != s]
    dispatched, received = [], []
    ray, exceptions = fake_ray_module(dispatched)
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setitem(sys.modules, "ray.exceptions", exceptions)
    calls = count_trainings(monkeypatch)
    run_ray(units, features, received.append, workers=2, run_eagerly=CHEAP_EAGER, log=lambda *_: None)
    runs = [args for name, args in dispatched if name == "run"]
    assert len(runs) == len(calls) == 2 and [len(records) for records in received] == [2, 2]
    assert sorted(r.unit for records in received for r in records) == sorted(units)
    assert all(r.machine["ray_node"] == "fake-node" and r.training["targets"] == [u.target for u in runs[k][0]]
               for k, records in enumerate(received) for r in records)
