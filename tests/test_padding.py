"""One batch shape per run: a padded batch trains exactly as the unpadded one. Also run with KERAS_BACKEND=jax."""
import keras
import numpy as np
import pytest

from timnet_keras.model.classifier import TimnetClassifier
from timnet_keras.model.padding import padded_batches, steps_per_epoch
from timnet_keras.runs.run_config import ModelConfig, TrainingConfig
from timnet_keras.training.plan import fresh_weights, seed_everything
from timnet_keras.training.sequential import SequentialTrainer

pytestmark = pytest.mark.both_backends

SMALL = ModelConfig(frames=24, num_classes=4, num_blocks=2)


def test_every_row_is_used_once_and_the_padding_has_weight_zero():
    order = np.random.default_rng(0).permutation(21)
    batches = list(padded_batches(order, 8))
    assert len(batches) == steps_per_epoch(21, 8) == 3
    assert all(len(index) == len(weights) == 8 for index, weights in batches)
    real = np.concatenate([index[weights > 0] for index, weights in batches])
    assert np.array_equal(real, order)
    assert batches[-1][1].tolist() == [1] * 5 + [0] * 3


def test_a_set_smaller_than_one_batch_is_one_padded_batch():
    [(index, weights)] = padded_batches(np.array([2, 0, 1]), 8)
    assert index.tolist() == [2, 0, 1, 2, 0, 1, 2, 0] and weights.sum() == 3


def _one_sgd_step(x, y, sample_weight=None):
    """Weights and logs after one plain-SGD step of rate 1 from fixed weights: new weights = old - gradient."""
    seed_everything(46)
    model = TimnetClassifier.from_model_config(SMALL)
    model.set_weights(fresh_weights(SMALL, 47))
    model.compile(optimizer=keras.optimizers.SGD(1.0), weighted_metrics=["accuracy"],
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1, reduction="mean_with_sample_weight"))
    logs = model.train_on_batch(x, y, sample_weight=sample_weight, return_dict=True)
    moving = [v.numpy() if hasattr(v, "numpy") else np.asarray(v) for v in model.non_trainable_variables if "moving" in v.path]
    return logs, model.get_weights(), moving


def test_a_padded_batch_gives_the_unpadded_loss_gradients_and_batchnorm_statistics(rng):
    x = rng.normal(0, 20, (13, 24, 39)).astype(np.float32)  # the authors' MFCC scale: BN matters
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 13)]
    pad = np.arange(3)
    x_padded, y_padded = np.concatenate([x, x[pad] * 5]), np.concatenate([y, y[pad]])
    weights = np.r_[np.ones(13), np.zeros(3)].astype(np.float32)

    plain_logs, plain_weights, plain_moving = _one_sgd_step(x, y)
    padded_logs, padded_weights, padded_moving = _one_sgd_step(x_padded, y_padded, weights)
    unmasked_logs, _, unmasked_moving = _one_sgd_step(x_padded, y_padded)

    assert padded_logs["loss"] == pytest.approx(plain_logs["loss"], rel=1e-5)
    assert padded_logs["accuracy"] == pytest.approx(plain_logs["accuracy"])
    for plain, padded in zip(plain_weights, padded_weights):  # SGD(1): the weights differ by the gradients
        np.testing.assert_allclose(padded, plain, rtol=1e-4, atol=1e-5)
    for plain, padded in zip(plain_moving, padded_moving):
        np.testing.assert_allclose(padded, plain, rtol=1e-5, atol=1e-5)
    # Without the mask the padding rows would move BatchNormalization's statistics: the test can fail.
    assert max(np.max(np.abs(a - b)) for a, b in zip(plain_moving, unmasked_moving)) > 1e-2


def test_a_run_with_three_training_sizes_traces_and_compiles_its_train_step_once(rng, monkeypatch):
    traces = []
    original = TimnetClassifier.train_step

    def counted(self, *args):
        traces.append(1)  # the Python body runs once per trace of a compiled step
        return original(self, *args)

    monkeypatch.setattr(TimnetClassifier, "train_step", counted)
    trainer = SequentialTrainer(SMALL, TrainingConfig(epoch=2, batch_size=8), seed=46)
    trainer.warm_up()
    after_warm_up = len(traces)
    for fold, size in enumerate((13, 18, 21), start=1):
        x = rng.normal(size=(size, 24, 39)).astype(np.float32)
        y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size)]
        history, _ = trainer.train_fold(fold, x, y)
        assert np.isfinite(history["loss"]).all()
    assert after_warm_up == 1, "the step was traced more than once before the first fold"
    assert len(traces) == after_warm_up
