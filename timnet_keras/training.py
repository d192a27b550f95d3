"""Cross-validated training with honest selection, fold checkpoints and resume.

The model is built and compiled once per run; each fold starts from fresh,
seeded initial weights and a zeroed optimizer, so only the first fold pays
for tracing and XLA compilation. Each finished fold leaves its weights (the
authors' HDF5 layout) and a small JSON of its test predictions in the run
folder; a killed run loses at most the fold in progress.
"""
import datetime
import json
import os
import platform
import time

import keras
import numpy as np
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, StratifiedKFold, StratifiedShuffleSplit

from .checkpoints import fold_weights_name, save_legacy_weights
from .evaluation import write_text_atomic
from .model import build_timnet

PROTOCOLS = ("kfold", "stratified", "speaker")
SELECTIONS = ("last", "best-val", "best-test")
RUN_CONFIG = "run_config.json"
VALIDATION_FRACTION = 0.1  # of the training part, for --select best-val


class RunError(ValueError):
    """A run that cannot go on; the message says what to do."""


def make_folds(features, protocol="kfold", split_fold=10, seed=46):
    """[(train_indices, test_indices)] of a protocol.

    kfold: the authors' shuffled KFold over the sample order. stratified:
    class-balanced folds. speaker: no speaker in both parts of a fold;
    leave-one-speaker-out when there are at most `split_fold` speakers,
    otherwise `split_fold` folds grouped by speaker.
    """
    n = len(features.x)
    if protocol == "kfold":
        splits = KFold(split_fold, shuffle=True, random_state=seed).split(np.zeros(n))
    elif protocol == "stratified":
        splits = StratifiedKFold(split_fold, shuffle=True, random_state=seed).split(np.zeros(n), features.classes)
    elif protocol == "speaker":
        speakers = np.asarray(features.speakers)
        if len(speakers) != n or (speakers == "").any():
            raise RunError("--protocol speaker needs a speaker for every file; re-extract with --speaker_regex")
        groups = np.unique(speakers)
        splitter = LeaveOneGroupOut() if len(groups) <= split_fold else GroupKFold(split_fold)
        splits = splitter.split(np.zeros(n), groups=speakers)
    else:
        raise RunError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return [(np.asarray(tr), np.asarray(te)) for tr, te in splits]


def smooth_labels(y, factor):
    """The authors' label smoothing, on training labels only."""
    return y * (1 - factor) + factor / y.shape[1]


def versions():
    import sklearn

    from . import __version__

    return {
        "timnet_keras": __version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }


def write_json_atomic(path, data):
    write_text_atomic(path, json.dumps(data, indent=1))


def new_run_dir(model_path, data_name, seed):
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    path = os.path.join(model_path, f"{data_name}_{seed}_{stamp}")
    os.makedirs(path, exist_ok=False)
    return path


def seed_everything(seed):
    """Seeds Python, NumPy and Keras; TensorFlow only when it is the backend.

    `keras.utils.set_random_seed` imports TensorFlow whenever it is installed,
    which on the JAX backend would add its 700 MB to every training run.
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


class FoldTrainer:
    """Trains one compiled model fold after fold.

    Args:
        model_config: `build_timnet` keyword arguments (input_shape, num_classes, ...).
        training: lr, beta1, beta2, epsilon, batch_size, epoch, label_smoothing.
        seed: the run's seed; fold k initialises with seed + k.
        selection: "last", "best-val" or "best-test".
        jit_compile: XLA for the train step (same numbers, about twice as fast on CPU).
    """

    def __init__(self, model_config, training, seed, selection="last", jit_compile=True):
        if selection not in SELECTIONS:
            raise RunError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
        self.model_config, self.training, self.seed, self.selection = model_config, training, seed, selection
        self.jit_compile = jit_compile
        self.model = None

    def _fresh_weights(self, fold):
        seed_everything(self.seed + fold)
        return build_timnet(**self.model_config).get_weights()

    def _compiled_model(self):
        if self.model is None:
            self.model = build_timnet(**self.model_config)
            t = self.training
            self.model.compile(
                optimizer=keras.optimizers.Adam(t["lr"], t["beta1"], t["beta2"], t["epsilon"]),
                loss="categorical_crossentropy",
                metrics=["accuracy"],
                jit_compile=self.jit_compile,
            )
        return self.model

    def warm_up(self, batch_sizes):
        """Compiles the train step for every batch shape a run will meet, up front.

        XLA compiles once per shape; folds of different sizes end their
        epochs with different partial batches, so without this a later
        fold would stop to compile. Weights are reset at each fold start.
        """
        model = self._compiled_model()
        shape = tuple(self.model_config["input_shape"])
        classes = self.model_config["num_classes"]
        for size in sorted(set(batch_sizes)):
            model.train_on_batch(np.zeros((size, *shape), np.float32), np.full((size, classes), 1.0 / classes, np.float32))

    def train_fold(self, fold, x_train, y_train, x_test=None, y_test=None, desc="fold"):
        """Trains from fresh weights; returns (history, selected_epoch). The model keeps the selected weights."""
        from tqdm import tqdm

        model = self._compiled_model()
        model.set_weights(self._fresh_weights(fold))
        for variable in model.optimizer.variables:
            if "learning_rate" not in variable.path:
                variable.assign(np.zeros(variable.shape, variable.dtype))
        epochs, batch = self.training["epoch"], self.training["batch_size"]
        validation = None
        if self.selection == "best-test":
            validation = (x_test, y_test)
        elif self.selection == "best-val":
            x_train, y_train, validation = self._validation_split(x_train, y_train)
        y_smooth = smooth_labels(y_train, self.training["label_smoothing"]).astype(np.float32)
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
                batch_logs = model.train_on_batch(x_train[index], y_smooth[index], return_dict=True)
                for key, value in batch_logs.items():
                    totals[key] = totals.get(key, 0.0) + float(value) * len(index)
            logs = {key: total / len(order) for key, total in totals.items()}  # epoch means over samples
            if validation is not None:
                probabilities = model.predict(validation[0], batch_size=batch, verbose=0)
                logs["val_accuracy"] = float(np.mean(np.argmax(probabilities, 1) == np.argmax(validation[1], 1)))
                if logs["val_accuracy"] > best:  # first epoch of ties, as the authors' checkpoint
                    best, best_weights, selected = logs["val_accuracy"], model.get_weights(), epoch + 1
            bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()})
            logs["seconds"] = round(time.perf_counter() - epoch_start, 4)  # the epoch alone: benchmarks scale it, not per-fold costs
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


def fold_record_path(run_dir, fold):
    return os.path.join(run_dir, f"fold_{fold}.json")


def finished_folds(run_dir, n_folds):
    """Folds whose weights and record are both on disk."""
    done = []
    for fold in range(1, n_folds + 1):
        if os.path.isfile(fold_record_path(run_dir, fold)) and os.path.isfile(os.path.join(run_dir, fold_weights_name(n_folds, fold))):
            done.append(fold)
    return done


def run_cross_validation(features, run_config, run_dir, log=print):
    """Trains every unfinished fold of `run_config` in `run_dir`; returns the fold records.

    `run_config` (see `main`): model, training, protocol, selection, seed, split_fold.
    """
    folds = make_folds(features, run_config["protocol"], run_config["split_fold"], run_config["seed"])
    n_folds = len(folds)
    run_config["n_folds"] = n_folds
    write_json_atomic(os.path.join(run_dir, RUN_CONFIG), run_config)
    done = set(finished_folds(run_dir, n_folds))
    if done:
        log(f"resuming {run_dir}: folds {sorted(done)} already finished")
    trainer = FoldTrainer(run_config["model"], run_config["training"], run_config["seed"], run_config["selection"],
                          run_config.get("jit_compile", True))
    batch = run_config["training"]["batch_size"]
    todo = [train for fold, (train, _) in enumerate(folds, start=1) if fold not in done]
    trainer.warm_up([min(batch, len(t)) for t in todo] + [len(t) % batch for t in todo if len(t) % batch])
    y_all = features.y
    for fold, (train, test) in enumerate(folds, start=1):
        if fold in done:
            continue
        start = time.time()
        history, selected = trainer.train_fold(fold, features.x[train], y_all[train], features.x[test], y_all[test],
                                               desc=f"fold {fold}/{n_folds}")
        probabilities = trainer.model.predict(features.x[test], batch_size=run_config["training"]["batch_size"], verbose=0)
        save_legacy_weights(trainer.model, os.path.join(run_dir, fold_weights_name(n_folds, fold)), run_config["model"])
        record = {
            "fold": fold,
            "test_indices": test.tolist(),
            "y_true": np.argmax(y_all[test], axis=1).tolist(),
            "probabilities": probabilities.round(6).tolist(),
            "history": history,
            "selected_epoch": selected,
            "seconds": round(time.time() - start, 1),
        }
        write_json_atomic(fold_record_path(run_dir, fold), record)
        accuracy = 100 * np.mean(np.argmax(probabilities, 1) == record["y_true"])
        log(f"fold {fold}/{n_folds}: WAR {accuracy:.2f} % (epoch {selected}, {record['seconds']} s)")
    return [load_fold_record(run_dir, fold) for fold in range(1, n_folds + 1)]


def load_fold_record(run_dir, fold):
    with open(fold_record_path(run_dir, fold), encoding="utf-8") as handle:
        record = json.load(handle)
    record["y_true"] = np.asarray(record["y_true"], dtype=int)
    record["probabilities"] = np.asarray(record["probabilities"], dtype=np.float32)
    return record
