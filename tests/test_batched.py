"""The batched trainer: all folds as one JAX program, the sequential trainer's mathematics. Runs in the JAX pass."""
import os

import keras
import numpy as np
import pytest

from timnet_keras.runs.run_config import ModelConfig, RunConfig, TrainingConfig
from timnet_keras.errors import RunError
from timnet_keras.training.plan import CURVE_KEYS

pytestmark = pytest.mark.both_backends

on_jax = pytest.mark.skipif(keras.backend.backend() != "jax", reason="the batched trainer is JAX's (make test runs a JAX pass)")


def _demo(n_utterances=60):
    from timnet_keras.features.extract import demo_features

    return demo_features(n_utterances=n_utterances)


def _run(features, tmp_path, trainer, selection="last", epochs=3, normalise="none"):
    from timnet_keras.model.classifier import TimnetClassifier
    from timnet_keras.runs.store import read_fold_record
    from timnet_keras.runs.modes import run_cross_validation

    model = ModelConfig(frames=int(features.x.shape[1]), num_classes=len(features.labels), num_blocks=3)
    config = RunConfig(data="DEMO", model=model, training=TrainingConfig(epoch=epochs, batch_size=16), selection=selection,
                       seed=46, split_fold=3, n_samples=len(features.x), labels=tuple(features.labels), trainer=trainer,
                       normalise=normalise)
    run_dir = os.path.join(tmp_path, f"{trainer}-{normalise}")
    os.makedirs(run_dir)
    run_cross_validation(features, config, run_dir, log=lambda *_: None)
    weights = [TimnetClassifier.from_run(run_dir, fold).get_weights() for fold in (1, 2, 3)]
    return [read_fold_record(run_dir, fold) for fold in (1, 2, 3)], weights


@on_jax
def test_batched_folds_equal_sequential_folds_in_weights_statistics_losses_and_predictions(tmp_path):
    features = _demo()  # 60 utterances, 3 folds: 40 training rows, batch 16, a partial last batch
    sequential, sequential_weights = _run(features, tmp_path, "sequential")
    batched, batched_weights = _run(features, tmp_path, "batched")
    for s, b, ws, wb in zip(sequential, batched, sequential_weights, batched_weights):
        assert len(b.history["loss"]) == 3
        np.testing.assert_allclose(b.history["loss"], s.history["loss"], atol=1e-4)
        np.testing.assert_allclose(b.history["accuracy"], s.history["accuracy"], atol=1e-4)
        # Every weight, BatchNormalization's moving statistics among them. Bit for bit on an AVX2 CPU; on
        # AVX-512 the batched program's products round differently, and Adam turns a round-off-sized
        # gradient of a weight whose gradient is ~0 into up to one learning rate per step. So 99 % of the
        # weights agree to 1e-5 and every one within a step (lr 1e-3); a real difference moves far more.
        differences = np.concatenate([np.abs(np.ravel(c) - np.ravel(a)) for a, c in zip(ws, wb)])
        assert np.quantile(differences, 0.99) < 1e-5 and differences.max() < 1e-3
        np.testing.assert_allclose(b.probabilities, s.probabilities, atol=1e-4)
        assert np.array_equal(b.test_indices, s.test_indices)
        # The test-fold curve: the same per-epoch WAR and UAR (a flip would move one by 1/20), loss to 1e-4.
        for key in CURVE_KEYS:
            assert len(b.history[key]) == len(s.history[key]) == 3
            np.testing.assert_allclose(b.history[key], s.history[key], atol=1e-4)


@on_jax
def test_with_best_val_both_trainers_select_the_same_epochs(tmp_path):
    features = _demo()
    sequential, _ = _run(features, tmp_path, "sequential", "best-val", epochs=4)
    batched, _ = _run(features, tmp_path, "batched", "best-val", epochs=4)
    assert [r.selected_epoch for r in batched] == [r.selected_epoch for r in sequential]
    for s, b in zip(sequential, batched):
        np.testing.assert_allclose(b.history["val_accuracy"], s.history["val_accuracy"], atol=1e-6)
        np.testing.assert_allclose(b.probabilities, s.probabilities, atol=1e-4)


@on_jax
def test_an_interrupted_batched_run_resumes_from_its_last_chunk_with_the_same_result(tmp_path):
    from timnet_keras.training.batched import BatchedTrainer, load_checkpoint, save_checkpoint
    from timnet_keras.training.plan import FoldJob

    rng = np.random.default_rng(0)
    x = rng.normal(0, 10, (30, 16, 39)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(30) % 3]
    config, training = ModelConfig(frames=16, num_classes=3, num_blocks=2), TrainingConfig(epoch=3, batch_size=8)
    jobs = [FoldJob(46, 1, np.arange(20)), FoldJob(46, 2, np.arange(5, 30))]
    whole = BatchedTrainer(config, training, chunk_epochs=1).train_jobs(x, y, jobs)

    path = str(tmp_path / "checkpoint.npz")
    trainer = BatchedTrainer(config, training, chunk_epochs=1)

    def save_then_stop(state):
        save_checkpoint(path, trainer, jobs, state)
        if state["epochs_done"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer.train_jobs(x, y, jobs, on_chunk=save_then_stop)
    state = load_checkpoint(path, trainer, jobs)
    assert state["epochs_done"] == 2 and load_checkpoint(path, trainer, jobs[:1]) is None  # other folds: not this state
    resumed = BatchedTrainer(config, training, chunk_epochs=1).train_jobs(x, y, jobs, state=state)
    for a, b in zip(whole, resumed):
        assert a.history["loss"] == pytest.approx(b.history["loss"], abs=1e-6)
        for u, v in zip(a.trainable, b.trainable):
            np.testing.assert_allclose(v, u, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="the refusal is the other backends'")
def test_the_batched_trainer_refuses_other_backends_and_says_what_to_do():
    from timnet_keras.training.batched import BatchedTrainer

    with pytest.raises(RunError, match="--backend jax"):
        BatchedTrainer(ModelConfig(frames=16, num_classes=3), TrainingConfig())


@on_jax
def test_the_grid_trains_a_cell_batched_into_the_same_records_one_per_fold(demo_mfcc, tmp_path):
    from conftest import tiny_grid_flags

    from timnet_keras.cli import reproduce_main
    from timnet_keras.paper.registry import read_records

    for trainer in ("sequential", "batched"):
        flags = tiny_grid_flags(demo_mfcc, str(tmp_path / trainer), epochs=1, eager=False) + ["--seeds", "1", "--trainer", trainer]
        assert reproduce_main(flags) == 0
    sequential = {r.unit.key: r for r in read_records(str(tmp_path / "sequential"))}
    batched = {r.unit.key: r for r in read_records(str(tmp_path / "batched"))}
    assert sorted(batched) == sorted(sequential) and len(batched) == 2  # two folds, a record each
    for key, record in batched.items():  # one program for both folds: another summation order
        np.testing.assert_allclose(record.probabilities, sequential[key].probabilities, atol=1e-3)
        assert record.history["loss"] == pytest.approx(sequential[key].history["loss"], abs=1e-4)


@on_jax
def test_batched_folds_train_on_their_own_speaker_normalised_features_as_the_sequential_trainer(tmp_path):
    """Under 10-fold a speaker's statistics are those of its rows in the fold's training part, so every fold has
    its own normalised features: the batched program indexes a block of rows per fold (`normalise.view_blocks`)."""
    features = _demo()
    sequential, _ = _run(features, tmp_path, "sequential", epochs=2, normalise="speaker")
    batched, _ = _run(features, tmp_path, "batched", epochs=2, normalise="speaker")
    raw, _ = _run(features, tmp_path, "batched", epochs=2)
    for s, b, r in zip(sequential, batched, raw):
        np.testing.assert_allclose(b.history["loss"], s.history["loss"], atol=1e-4)
        np.testing.assert_allclose(b.probabilities, s.probabilities, atol=1e-4)
        assert np.array_equal(b.test_indices, s.test_indices)
        assert not np.allclose(r.history["loss"], b.history["loss"], atol=1e-4)  # the features were not the raw ones
