"""The sequential trainer: folds one after another, each from fresh seeded weights.

The classifier is built and compiled once per run; each fold restores fresh
seeded initial weights and a zeroed optimizer, so only the first fold pays
for tracing and XLA compilation. The batched trainer (`batched`) builds on
this module; a whole run, with either trainer, is `runs.run_cross_validation`.
"""
import contextlib
import time

import keras
import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit

from .errors import TimnetError
from .classifier import TimnetClassifier
from .jax_compiler import configure_jax_compiler
from .padding import padded_batches
from .run_store import FoldRecord

SELECTIONS = ("last", "best-val", "best-test")
VALIDATION_FRACTION = 0.1  # of the training part, for --select best-val


class RunError(TimnetError):
    """A run that cannot go on; the message says what to do."""


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


PRECISIONS = ("float32", "bfloat16")


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
    from .evaluation import fold_scores

    scores = fold_scores(np.asarray(y_true), np.asarray(probabilities))
    return {"test_accuracy": scores["war"] / 100, "test_uar": scores["uar"] / 100, "test_loss": scores["loss"]}


class FoldTrainer:
    """Trains one compiled classifier fold after fold.

    Every step has the same shape: the last batch of an epoch is padded to
    the batch size with rows of weight 0, which change neither the loss,
    the metrics nor BatchNormalization's statistics (see `padding`). So a
    run compiles its train step once, whatever its fold sizes.

    Args:
        model_config: a `ModelConfig`.
        training: a `TrainingConfig`; its `precision` "bfloat16" trains in mixed precision (float32 variables).
        seed: the run's seed; fold k initialises with seed + k.
        selection: "last", "best-val" or "best-test".
        jit_compile: XLA for the train step (same numbers, about twice as fast on CPU).
        run_eagerly: no graph at all: slow steps, but no tracing (short checks, debugging).
    """

    def __init__(self, model_config, training, seed, selection="last", jit_compile=True, run_eagerly=False):
        if selection not in SELECTIONS:
            raise RunError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
        _check_precision(training.precision)  # at once, not when the model is first built
        self.model_config, self.training, self.seed, self.selection = model_config, training, seed, selection
        self.jit_compile, self.run_eagerly = jit_compile, run_eagerly
        self.model = None

    def compiled_model(self):
        if self.model is None:
            t = self.training
            configure_jax_compiler()  # JAX: a cached step for later runs of this shape, a memory-first schedule
            seed_everything(self.seed)
            with precision_policy(self.training.precision):
                self.model = TimnetClassifier.from_model_config(self.model_config)
            self.model.compile(
                optimizer=keras.optimizers.Adam(t.lr, t.beta1, t.beta2, t.epsilon),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=t.label_smoothing,
                                                          reduction="mean_with_sample_weight"),
                weighted_metrics=["accuracy"],  # weighted: the padding rows (weight 0) do not count
                jit_compile=self.jit_compile and not self.run_eagerly,
                run_eagerly=self.run_eagerly,
            )
        return self.model

    def warm_up(self):
        """Compiles the one train step up front (weights are reset at each fold start).

        The metrics, loss and optimizer variables are built first, as `fit` does:
        TensorFlow otherwise creates them inside the first trace of the step and
        traces it a second time (5 of the 16 s this took on a 2-core CPU).
        """
        model = self.compiled_model()
        batch, classes = self.training.batch_size, self.model_config.num_classes
        data = (np.zeros((batch, self.model_config.frames, self.model_config.n_mfcc), np.float32),
                np.full((batch, classes), 1.0 / classes, np.float32), np.ones(batch, np.float32))
        if not self.run_eagerly:
            model._symbolic_build(data_batch=data)  # Keras' own pre-trace build (fit, and train_on_batch on JAX)
            model.optimizer.build(model.trainable_variables)
        model.train_on_batch(data[0], data[1], sample_weight=data[2])

    def train_fold(self, fold, x_train, y_train, x_test=None, y_test=None, desc="fold", curves=None):
        """Trains from fresh weights; returns (history, selected_epoch). The model keeps the selected weights.

        With a test part, the history carries its curve (`CURVE_KEYS`, one forward pass per epoch):
        recorded for the paper's test-selected protocol, never used to select unless selection is best-test.
        `curves`, {name: (x, y)}, adds further test sets' curves as `name/test_accuracy` and so on: one
        cross-corpus training scores every target of its source (prediction changes no weight or stream).
        """
        from tqdm import tqdm

        model = self.compiled_model()
        model.set_weights(fresh_weights(self.model_config, self.seed + fold))
        reset_dropout_streams(model, self.seed + fold)
        for variable in model.optimizer.variables:
            if "learning_rate" not in variable.path:
                variable.assign(np.zeros(variable.shape, variable.dtype))
        epochs, batch = self.training.epoch, self.training.batch_size
        validation = None
        if self.selection == "best-test":
            validation = (x_test, y_test)
        elif self.selection == "best-val":
            train, val = validation_split(np.argmax(y_train, axis=1), self.seed)
            x_train, y_train, validation = x_train[train], y_train[train], (x_train[val], y_train[val])
        y_train = np.asarray(y_train, np.float32)
        orders = epoch_orders(self.seed, fold, len(x_train), epochs)
        history = {}
        best, best_weights, selected = -1.0, None, epochs
        # A plain epoch loop over train_on_batch: Keras' fit rebuilds a data
        # pipeline every epoch, which cost 30 % on top of the steps here.
        bar = tqdm(range(epochs), desc=desc, unit="epoch", leave=False, disable=None)
        for epoch in bar:
            epoch_start = time.perf_counter()
            totals = {}
            for index, weights in padded_batches(orders[epoch], batch):
                model.reset_metrics()
                batch_logs = model.train_on_batch(x_train[index], y_train[index], sample_weight=weights, return_dict=True)
                for key, value in batch_logs.items():
                    totals[key] = totals.get(key, 0.0) + float(value) * float(weights.sum())
            logs = {key: total / len(x_train) for key, total in totals.items()}  # epoch means over samples
            if not np.isfinite(logs["loss"]):
                raise RunError(f"fold {fold}: the training loss became {logs['loss']} in epoch {epoch + 1}; nothing of this "
                               f"fold was saved. Lower --lr, or check the features for extreme values")
            if x_test is not None and len(x_test):
                logs.update(curve_point(np.argmax(y_test, 1), predict_padded(model, x_test, batch)))
            for name, (x_curve, y_curve) in (curves or {}).items():
                point = curve_point(np.argmax(y_curve, 1), predict_padded(model, x_curve, batch))
                logs.update({f"{name}/{key}": value for key, value in point.items()})
            if validation is not None:
                probabilities = predict_padded(model, validation[0], batch)
                logs["val_accuracy"] = float(np.mean(np.argmax(probabilities, 1) == np.argmax(validation[1], 1)))
                if logs["val_accuracy"] > best:  # first epoch of ties, as the authors' checkpoint
                    best, best_weights, selected = logs["val_accuracy"], model.get_weights(), epoch + 1
            bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if "/" not in k})
            logs["seconds"] = round(time.perf_counter() - epoch_start, 4)  # the epoch alone: benchmarks scale it
            for key, value in logs.items():
                history.setdefault(key, []).append(value)
        if best_weights is not None:
            model.set_weights(best_weights)
        return history, selected


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
        >>> from timnet_keras.cache import FeatureSet, one_hot
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
    from .calibration import fit_calibration

    if not len(held):
        return None
    return fit_calibration(predict_padded(model, features.x[held], batch_size), features.classes[held], held)


def train_and_score_fold(trainer, features, train, test, fold, n_folds, calibrate=False):
    """One fold of a cross-validated run: trains on `train`, predicts `test`; returns its FoldRecord.

    The one place a fold is trained: the train mode and the reproduction grid both call it.
    With `calibrate`, a stratified tenth of `train` is held out (`calibration_split`) and the
    fold's temperature and abstain thresholds are fitted on it after training; never on `test`.
    """
    start = time.time()
    fit, held = calibration_split(features, train, trainer.seed, trainer.selection, calibrate)
    history, selected = trainer.train_fold(fold, features.x[fit], features.y[fit], features.x[test],
                                           features.y[test], desc=f"fold {fold}/{n_folds}")
    probabilities = predict_padded(trainer.model, features.x[test], trainer.training.batch_size)
    calibration = calibrate_fold(trainer.model, features, held, trainer.training.batch_size)
    return FoldRecord(fold, test, features.classes[test], probabilities, history, selected, round(time.time() - start, 1),
                      calibration)
