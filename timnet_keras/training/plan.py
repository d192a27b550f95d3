"""The fold plan: what every trainer shares, built in one place.

A fold is a `FoldJob` (its seed, number and rows); `fold_job` makes one
for any selection and calibration, and both trainers (the
sequential one, `training.sequential`, and `training.batched`) start a fold from the same fresh weights,
dropout streams, epoch orders, optimizer and loss defined here. That is why
the two give the same curves (tests/test_batched.py states the tolerance).
"""
import contextlib
import dataclasses

import keras
import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit

from timnet_keras.model.classifier import TimnetClassifier
from timnet_keras.config import PRECISIONS, SELECTIONS
from timnet_keras.errors import RunError

VALIDATION_FRACTION = 0.1  # of the training part, for --select best-val and the calibration rows


@dataclasses.dataclass(frozen=True)
class FoldJob:
    """One fold to train: its seed and number, and rows of the corpus.

    `train` are the rows it trains on; `select` the rows scored after every
    epoch for `--select best-val` (a tenth of the training part) or
    `best-test` (the test fold, by name only); None for "last". `test` are the
    test rows whose curve (`CURVE_KEYS`) is recorded after every epoch and
    never selects anything; `held` the rows kept out for calibration.
    """

    seed: int
    fold: int
    train: np.ndarray
    select: np.ndarray | None = None
    test: np.ndarray | None = None
    held: np.ndarray | None = None


def fold_job(features, train, test, fold, seed, selection="last", calibrate=False):
    """The FoldJob of a fold of FeatureSet `features`: its training rows and, for a selection, the rows it selects on.

    With `calibrate` the calibration rows (`calibration_split`) are held out of training.

    Example:
        >>> from timnet_keras.features.cache import FeatureSet, one_hot
        >>> toy = FeatureSet(np.zeros((40, 2, 39)), one_hot(np.arange(40) % 4, 4), tuple("abcd"))
        >>> job = fold_job(toy, np.arange(30), np.arange(30, 40), 1, 46, "best-val")
        >>> len(job.train), len(job.select), len(job.test), len(job.held)
        (27, 3, 10, 0)
    """
    check_selection(selection)
    test = np.asarray(test)
    train, held = calibration_split(features, train, seed, selection, calibrate)
    train = np.asarray(train)
    if selection == "best-test":
        return FoldJob(seed, fold, train, test, test, held)
    if selection == "best-val":
        kept, val = validation_split(features.classes[train], seed)
        return FoldJob(seed, fold, train[kept], train[val], test, held)
    return FoldJob(seed, fold, train, test=test, held=held)


def job_features(features, jobs):
    """The FeatureSet each job trains and tests on: `features` for all, or a list with one per job.

    A list comes from `normalise.fold_views`: under speaker normalisation each fold sees its own copy.
    """
    if isinstance(features, (list, tuple)):
        if len(features) != len(jobs):
            raise RunError(f"{len(features)} feature views for {len(jobs)} fold jobs")
        return list(features)
    return [features] * len(jobs)


def check_selection(selection):
    if selection not in SELECTIONS:
        raise RunError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")


def build_optimizer(training):
    """Adam with the run's settings: the one optimizer of both trainers."""
    return keras.optimizers.Adam(training.lr, training.beta1, training.beta2, training.epsilon)


def build_loss(training):
    """Label-smoothed cross-entropy whose padding rows (weight 0) count for nothing (see `padding`)."""
    return keras.losses.CategoricalCrossentropy(label_smoothing=training.label_smoothing,
                                                reduction="mean_with_sample_weight")


def seed_everything(seed):
    """Seeds Python, NumPy and Keras' own generator; TensorFlow only when it is the backend.

    `keras.utils.set_random_seed` imports TensorFlow whenever it is installed,
    which on the JAX backend would add its 700 MB to every training run. So
    on JAX the global seed is set through Keras' private state: the one place
    this package touches a private Keras API (tests/test_training.py fails
    loudly if Keras changes under it).
    """
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    import random

    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)


def _all_layers(layer):
    """The layer and every layer inside it, depth first, in a stable order."""
    yield layer
    children = layer.layers if isinstance(layer, keras.Model) else [
        value for value in vars(layer).values() if isinstance(value, keras.layers.Layer)]
    for child in children:
        yield from _all_layers(child)


def reset_dropout_streams(model, seed):
    """Restarts every dropout layer's random stream from `seed`, each layer its own.

    Keras draws a dropout layer's seed when the layer is built and advances
    it each step; resetting it per fold makes a fold's masks depend on the
    run's seed and the fold only, so a resumed fold trains as it would have.
    """
    generators = [layer.seed_generator for layer in _all_layers(model) if getattr(layer, "seed_generator", None)]
    states = np.random.default_rng(seed).integers(0, 2**31 - 1, size=(len(generators), 2))
    states[:, 1] = 0
    for generator, state in zip(generators, states):
        generator.state.assign(state.astype(generator.state.dtype))


def epoch_orders(seed, fold, n_rows, epochs):
    """The sample order of every epoch of a fold, (epochs, n_rows): one seeded stream per (seed, fold).

    Both trainers draw from it, so the sequential and the batched trainer see the same batches.
    """
    rng = np.random.default_rng(seed * 1000 + fold)
    return np.stack([rng.permutation(n_rows) for _ in range(epochs)]) if epochs else np.zeros((0, n_rows), int)


def fresh_weights(model_config, seed):
    """The initial weights of a classifier built under `seed`: fold k uses the run's seed + k."""
    seed_everything(seed)
    return TimnetClassifier.from_model_config(model_config).get_weights()


def _check_precision(precision):
    if precision not in PRECISIONS:
        raise RunError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")


@contextlib.contextmanager
def precision_policy(precision):
    """Layers built inside compute in `precision`: "bfloat16" is Keras' mixed policy (float32 variables)."""
    _check_precision(precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def predict_padded(model, x, batch_size):
    """The model's probabilities in full batches only (the tail padded, then cut): one compiled shape for every fold.

    `predict_on_batch` runs Keras' own compiled predict step, as `predict` does, without building a
    data pipeline per call: the test-fold curve calls this once per epoch.
    """
    n = len(x)
    padded = np.concatenate([x, np.resize(x, (-n % batch_size, *x.shape[1:]))]) if n % batch_size else x
    if not n:
        return np.zeros((0, *model.output.shape[1:]), np.float32)
    return np.concatenate([np.asarray(model.predict_on_batch(padded[start:start + batch_size]))
                           for start in range(0, len(padded), batch_size)])[:n]


CURVE_KEYS = ("test_accuracy", "test_uar", "test_loss")  # the test-fold curve a fold's history carries, per epoch


def curve_point(y_true, probabilities):
    """One epoch of the test-fold curve: {test_accuracy (WAR), test_uar, test_loss}, accuracies as fractions.

    Example:
        >>> curve_point(np.array([0, 0, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]))["test_uar"]
        0.75
    """
    from timnet_keras.training.evaluation import fold_scores

    scores = fold_scores(np.asarray(y_true), np.asarray(probabilities))
    return {"test_accuracy": scores["war"] / 100, "test_uar": scores["uar"] / 100, "test_loss": scores["loss"]}


def validation_split(classes, seed):
    """Positions (train, validation) of a training part for --select best-val: a stratified tenth, seeded.

    Example:
        >>> train, val = validation_split(np.arange(40) % 4, 46)
        >>> len(train), len(val), sorted((np.arange(40)[val] % 4).tolist())
        (36, 4, [0, 1, 2, 3])
    """
    try:
        splitter = StratifiedShuffleSplit(1, test_size=VALIDATION_FRACTION, random_state=seed)
        return next(splitter.split(np.zeros(len(classes)), classes))
    except ValueError:  # a class too small to stratify
        order = np.random.default_rng(seed).permutation(len(classes))
        cut = max(1, int(len(classes) * VALIDATION_FRACTION))
        return order[cut:], order[:cut]


def calibration_split(features, train, seed, selection, calibrate):
    """(rows to train on, rows held out for calibration) of a fold's training part `train` (corpus rows).

    Without `calibrate` nothing is held out. With it the held-out rows are `validation_split`'s
    stratified tenth of the training part: taken out of training for --select last and best-test;
    for best-val they are its validation rows already (the trainer splits the same tenth off
    itself), so the training rows are returned whole. The test fold is never among them.

    Example:
        >>> from timnet_keras.features.cache import FeatureSet, one_hot
        >>> toy = FeatureSet(np.zeros((40, 2, 39)), one_hot(np.arange(40) % 4, 4), tuple("abcd"))
        >>> fit, held = calibration_split(toy, np.arange(40), 46, "last", True)
        >>> len(fit), len(held), set(fit) & set(held)
        (36, 4, set())
        >>> len(calibration_split(toy, np.arange(40), 46, "best-val", True)[0])
        40
    """
    train = np.asarray(train)
    if not calibrate:
        return train, train[:0]
    kept, held = validation_split(features.classes[train], seed)
    return (train if selection == "best-val" else train[kept]), train[held]


def calibrate_fold(model, features, held, batch_size):
    """The fold's calibration record, fitted on its held-out rows `held` (None when there are none)."""
    from timnet_keras.training.calibration import fit_calibration

    if not len(held):
        return None
    return fit_calibration(predict_padded(model, features.x[held], batch_size), features.classes[held], held)


def score_fold(model, job, features, history, selected_epoch, seconds, batch_size):
    """A trained fold's FoldRecord: `model` on its test rows, calibrated on its held-out rows (both trainers)."""
    from timnet_keras.training.record import FoldRecord

    test = np.asarray(job.test if job.test is not None else [], dtype=int)
    probabilities = predict_padded(model, features.x[test], batch_size)
    held = job.held if job.held is not None else test[:0]
    calibration = calibrate_fold(model, features, held, batch_size)
    return FoldRecord(job.fold, test, features.classes[test], probabilities, history, selected_epoch, round(seconds, 1),
                      calibration, labels=tuple(features.labels))
