"""Training: seeded fresh weights (the one private Keras API), the loss, and fold records. Also run with KERAS_BACKEND=jax."""
import keras
import numpy as np
import pytest

from conftest import CHEAP_EAGER
from timnet_keras.runs.run_config import ModelConfig, TrainingConfig
from timnet_keras.errors import RunError
from timnet_keras.training.plan import fresh_weights
from timnet_keras.training.sequential import SequentialTrainer

pytestmark = pytest.mark.both_backends

SMALL = ModelConfig(frames=20, num_classes=3, num_blocks=2)


def test_same_seed_gives_the_same_fresh_weights_and_the_next_fold_other_ones():
    """Guards the private Keras seeding on JAX: if Keras moves its global seed, this fails loudly."""
    first, again, second = fresh_weights(SMALL, 47), fresh_weights(SMALL, 47), fresh_weights(SMALL, 48)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    kernels = [i for i, w in enumerate(first) if w.ndim >= 2]
    assert all(not np.array_equal(first[i], second[i]) for i in kernels)


def test_keras_label_smoothing_is_the_authors_hand_smoothing(rng):
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 16)]
    p = rng.dirichlet(np.ones(4), 16).astype(np.float32)
    ours = float(keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(y, p))
    authors = float(np.mean(-np.sum((y * 0.9 + 0.1 / 4) * np.log(p), axis=1)))
    assert ours == pytest.approx(authors, rel=1e-5)


def test_a_fold_trains_from_its_seed_and_the_loss_falls(rng):
    x = rng.normal(size=(24, 20, 39)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(24) % 3]
    x += 3 * y.argmax(1)[:, None, None]  # separable
    trainer = SequentialTrainer(SMALL, TrainingConfig(epoch=4, batch_size=8), seed=46, run_eagerly=CHEAP_EAGER)
    history, selected = trainer.train_fold(1, x, y)
    assert selected == 4 and len(history["loss"]) == 4 and history["loss"][-1] < history["loss"][0]
    again, _ = SequentialTrainer(SMALL, TrainingConfig(epoch=4, batch_size=8), seed=46, run_eagerly=CHEAP_EAGER).train_fold(1, x, y)
    assert again["loss"] == pytest.approx(history["loss"], rel=1e-4)


def test_an_unknown_selection_is_refused():
    with pytest.raises(RunError, match="best-val"):
        SequentialTrainer(SMALL, TrainingConfig(), 46, selection="best")


def test_bfloat16_computes_in_bfloat16_but_keeps_float32_weights_and_probabilities(rng):
    x = rng.normal(0, 20, size=(16, 20, 39)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(16) % 3]
    trainer = SequentialTrainer(SMALL, TrainingConfig(epoch=2, batch_size=8, precision="bfloat16"), seed=46, run_eagerly=CHEAP_EAGER)
    history, _ = trainer.train_fold(1, x, y)
    model = trainer.model
    assert np.isfinite(history["loss"]).all()
    assert model.backbone.get_layer("forward_block_1").compute_dtype == "bfloat16"
    assert {w.dtype for w in model.get_weights()} == {np.dtype("float32")}
    assert model.predict(x, verbose=0).dtype == np.float32
    assert keras.config.dtype_policy().name == "float32"  # the policy does not leak into later models


def test_an_unknown_precision_is_refused():
    with pytest.raises(RunError, match="bfloat16"):
        SequentialTrainer(SMALL, TrainingConfig(precision="float16"), 46)


def test_every_epoch_records_the_test_folds_curve_and_its_last_point_is_the_final_model(rng):
    from timnet_keras.training.plan import CURVE_KEYS, curve_point, predict_padded

    x = rng.normal(size=(30, 20, 39)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(30) % 3]
    x += 3 * y.argmax(1)[:, None, None]
    trainer = SequentialTrainer(SMALL, TrainingConfig(epoch=3, batch_size=8), seed=46)
    history, selected = trainer.train_fold(1, x[:20], y[:20], x[20:], y[20:])
    assert selected == 3 and all(len(history[key]) == 3 for key in CURVE_KEYS)  # "last": the curve selects nothing
    final = curve_point(y[20:].argmax(1), predict_padded(trainer.model, x[20:], 8))
    assert {key: history[key][-1] for key in CURVE_KEYS} == pytest.approx(final, abs=1e-6)
    assert all(0 <= a <= 1 for a in history["test_accuracy"] + history["test_uar"])


def test_predict_padded_gives_what_keras_predict_gives(rng):
    from timnet_keras.model.classifier import TimnetClassifier
    from timnet_keras.training.plan import predict_padded

    model = TimnetClassifier.from_model_config(SMALL)
    x = rng.normal(size=(21, 20, 39)).astype(np.float32)
    np.testing.assert_array_equal(predict_padded(model, x, 8), model.predict(np.concatenate([x, x[:3]]), batch_size=8,
                                                                              verbose=0)[:21])


def test_no_xla_and_run_eagerly_train_close_to_xla_but_are_not_promised_equal(rng):
    """What README says of --no-xla and --run-eagerly: the same training up to round-off (1e-3 relative here)."""
    x = rng.normal(size=(16, 20, 39)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(16) % 3]
    losses = {}
    for name, options in {"xla": {}, "no-xla": {"jit_compile": False}, "eager": {"run_eagerly": True}}.items():
        trainer = SequentialTrainer(SMALL, TrainingConfig(epoch=2, batch_size=8), seed=46, **options)
        losses[name], _ = trainer.train_fold(1, x, y)
    for name in ("no-xla", "eager"):
        np.testing.assert_allclose(losses[name]["loss"], losses["xla"]["loss"], rtol=1e-3)
