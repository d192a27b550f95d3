"""Training: one fold from fresh seeded weights, and a whole cross-validated run into its folder.

The classifier is built and compiled once per run; each fold restores fresh
seeded initial weights and a zeroed optimizer, so only the first fold pays
for tracing and XLA compilation. Each finished fold leaves its weights (the
authors' HDF5 layout) and its record in the run folder (see run_store); a
killed run loses at most the fold in progress.
"""
import time

import keras
import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit

from . import run_store
from .checkpoints import save_legacy_weights
from .classifier import TimnetClassifier
from .folds import make_folds
from .run_store import FoldRecord

SELECTIONS = ("last", "best-val", "best-test")
VALIDATION_FRACTION = 0.1  # of the training part, for --select best-val


class RunError(ValueError):
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


def fresh_weights(model_config, seed):
    """The initial weights of a classifier built under `seed`: fold k uses the run's seed + k."""
    seed_everything(seed)
    return TimnetClassifier.from_model_config(model_config).get_weights()


class FoldTrainer:
    """Trains one compiled classifier fold after fold.

    Args:
        model_config: a `ModelConfig`.
        training: a `TrainingConfig`.
        seed: the run's seed; fold k initialises with seed + k.
        selection: "last", "best-val" or "best-test".
        jit_compile: XLA for the train step (same numbers, about twice as fast on CPU).
        run_eagerly: no graph at all: slow steps, but no tracing (short checks, debugging).
    """

    def __init__(self, model_config, training, seed, selection="last", jit_compile=True, run_eagerly=False):
        if selection not in SELECTIONS:
            raise RunError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
        self.model_config, self.training, self.seed, self.selection = model_config, training, seed, selection
        self.jit_compile, self.run_eagerly = jit_compile, run_eagerly
        self.model = None

    def compiled_model(self):
        if self.model is None:
            t = self.training
            seed_everything(self.seed)
            self.model = TimnetClassifier.from_model_config(self.model_config)
            self.model.compile(
                optimizer=keras.optimizers.Adam(t.lr, t.beta1, t.beta2, t.epsilon),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=t.label_smoothing),
                metrics=["accuracy"],
                jit_compile=self.jit_compile and not self.run_eagerly,
                run_eagerly=self.run_eagerly,
            )
        return self.model

    def warm_up(self, batch_sizes):
        """Compiles the train step for every batch shape a run will meet, up front.

        XLA compiles once per shape; folds of different sizes end their
        epochs with different partial batches, so without this a later
        fold would stop to compile. Weights are reset at each fold start.
        """
        model = self.compiled_model()
        shape = (self.model_config.frames, self.model_config.n_mfcc)
        classes = self.model_config.num_classes
        for size in sorted(set(batch_sizes)):
            model.train_on_batch(np.zeros((size, *shape), np.float32), np.full((size, classes), 1.0 / classes, np.float32))

    def train_fold(self, fold, x_train, y_train, x_test=None, y_test=None, desc="fold"):
        """Trains from fresh weights; returns (history, selected_epoch). The model keeps the selected weights."""
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
            x_train, y_train, validation = self._validation_split(x_train, y_train)
        y_train = np.asarray(y_train, np.float32)
        rng = np.random.default_rng(self.seed * 1000 + fold)
        history = {}
        best, best_weights, selected = -1.0, None, epochs
        # A plain epoch loop over train_on_batch: Keras' fit rebuilds a data
        # pipeline every epoch, which cost 30 % on top of the steps here.
        bar = tqdm(range(epochs), desc=desc, unit="epoch", leave=False, disable=None)
        for epoch in bar:
            epoch_start = time.perf_counter()
            order = rng.permutation(len(x_train))
            totals = {}
            for start in range(0, len(order), batch):
                index = order[start : start + batch]
                model.reset_metrics()
                batch_logs = model.train_on_batch(x_train[index], y_train[index], return_dict=True)
                for key, value in batch_logs.items():
                    totals[key] = totals.get(key, 0.0) + float(value) * len(index)
            logs = {key: total / len(order) for key, total in totals.items()}  # epoch means over samples
            if not np.isfinite(logs["loss"]):
                raise RunError(f"fold {fold}: the training loss became {logs['loss']} in epoch {epoch + 1}; nothing of this "
                               f"fold was saved. Lower --lr, or check the features for extreme values")
            if validation is not None:
                probabilities = model.predict(validation[0], batch_size=batch, verbose=0)
                logs["val_accuracy"] = float(np.mean(np.argmax(probabilities, 1) == np.argmax(validation[1], 1)))
                if logs["val_accuracy"] > best:  # first epoch of ties, as the authors' checkpoint
                    best, best_weights, selected = logs["val_accuracy"], model.get_weights(), epoch + 1
            bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()})
            logs["seconds"] = round(time.perf_counter() - epoch_start, 4)  # the epoch alone: benchmarks scale it
            for key, value in logs.items():
                history.setdefault(key, []).append(value)
        if best_weights is not None:
            model.set_weights(best_weights)
        return history, selected

    def _validation_split(self, x, y):
        classes = np.argmax(y, axis=1)
        try:
            splitter = StratifiedShuffleSplit(1, test_size=VALIDATION_FRACTION, random_state=self.seed)
            train, val = next(splitter.split(x, classes))
        except ValueError:  # a class too small to stratify
            order = np.random.default_rng(self.seed).permutation(len(x))
            cut = max(1, int(len(x) * VALIDATION_FRACTION))
            val, train = order[:cut], order[cut:]
        return x[train], y[train], (x[val], y[val])


def run_cross_validation(features, run_config, run_dir, log=print, run_eagerly=False):
    """Trains every unfinished fold of `run_config` (a RunConfig) in `run_dir`; returns the FoldRecords.

    `run_eagerly` trains without a graph (same numbers up to summation order; tests and debugging).
    """
    folds = make_folds(features, run_config.protocol, run_config.split_fold, run_config.seed)
    n_folds = len(folds)
    run_config.n_folds = n_folds
    run_store.write_run_config(run_dir, run_config)
    stale = run_store.remove_temporaries(run_dir)
    if stale:
        log(f"removed what an interrupted process left half-written: {', '.join(stale)}")
    done = set(run_store.finished_folds(run_dir, n_folds))
    if done:
        log(f"resuming {run_dir}: folds {sorted(done)} already finished")
    trainer = FoldTrainer(run_config.model, run_config.training, run_config.seed, run_config.selection, run_config.jit_compile,
                          run_eagerly)
    batch = run_config.training.batch_size
    todo = [train for fold, (train, _) in enumerate(folds, start=1) if fold not in done]
    trainer.warm_up([min(batch, len(t)) for t in todo] + [len(t) % batch for t in todo if len(t) % batch])
    for fold, (train, test) in enumerate(folds, start=1):
        if fold in done:
            continue
        record = train_and_score_fold(trainer, features, train, test, fold, n_folds)
        save_legacy_weights(trainer.model, run_store.fold_weights_path(run_dir, n_folds, fold), run_config.model.backbone_kwargs())
        run_store.write_fold_record(run_dir, record)
        accuracy = 100 * np.mean(np.argmax(record.probabilities, 1) == record.y_true)
        log(f"fold {fold}/{n_folds}: WAR {accuracy:.2f} % (epoch {record.selected_epoch}, {record.seconds} s)")
    return [run_store.read_fold_record(run_dir, fold) for fold in range(1, n_folds + 1)]


def train_and_score_fold(trainer, features, train, test, fold, n_folds):
    """One fold of a cross-validated run: trains on `train`, predicts `test`; returns its FoldRecord.

    The one place a fold is trained: the train mode and the reproduction grid both call it.
    """
    start = time.time()
    history, selected = trainer.train_fold(fold, features.x[train], features.y[train], features.x[test],
                                           features.y[test], desc=f"fold {fold}/{n_folds}")
    probabilities = trainer.model.predict(features.x[test], batch_size=trainer.training.batch_size, verbose=0)
    return FoldRecord(fold, test, features.classes[test], probabilities, history, selected, round(time.time() - start, 1))
