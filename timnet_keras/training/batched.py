"""The batched trainer (JAX backend): many folds trained as one compiled program.

The sequential trainer makes one Python call and one host sync per step;
for a model of 107 k parameters a GPU then waits on Python most of the time.
Here each fold's weights, BatchNormalization statistics, dropout streams and
Adam state are stacked on a leading axis; `jax.vmap` runs the folds side by
side and `jax.lax.scan` runs the steps and epochs inside the program, which
returns to Python once per chunk of epochs.

The mathematics are the sequential trainer's (tests/test_batched.py checks
it to 1e-4): the same fresh weights (seed + fold) and dropout streams, the
same epoch orders (`plan.epoch_orders`), the same padded batches with
their padding left out of the loss, the metrics and BatchNormalization's
statistics, the same label smoothing and Adam. A fold with fewer batches
than another runs steps of weight zero, which leave its state as it was.
"""
import dataclasses
import json
import os
import time

import keras
import numpy as np

from timnet_keras.model.classifier import TimnetClassifier
from timnet_keras.errors import RunError
from timnet_keras.training.jax_compiler import configure_jax_compiler
from timnet_keras.io import write_atomic
from timnet_keras.model.padding import padded_batches, real_rows, steps_per_epoch
from timnet_keras.training.plan import (CURVE_KEYS, FoldJob, build_loss, build_optimizer, check_selection, epoch_orders,
                                        fresh_weights, job_features, precision_policy, reset_dropout_streams, score_fold,
                                        seed_everything)

CHUNK_EPOCHS = 25  # epochs per call of the program: progress and checkpoints move this often


@dataclasses.dataclass
class FoldResult:
    """What a fold's training leaves: its history, selected epoch and the selected variables' values."""

    job: FoldJob
    history: dict
    selected_epoch: int
    trainable: list
    non_trainable: list

    def load_into(self, model):
        """Gives `model` (built as the trainer's) this fold's weights and statistics."""
        for variable, value in zip(model.trainable_variables, self.trainable):
            variable.assign(value)
        for variable, value in zip(model.non_trainable_variables, self.non_trainable):
            variable.assign(value)


class BatchedTrainer:
    """Trains any number of folds of one model shape together, on the JAX backend.

    Args:
        model_config: a `ModelConfig`.
        training: a `TrainingConfig` (its `precision` as the sequential trainer's).
        selection: "last", "best-val" or "best-test" (the jobs carry the selection rows).
        chunk_epochs: epochs per call of the compiled program.

    Example:
        >>> from timnet_keras.runs.run_config import ModelConfig, TrainingConfig
        >>> trainer = BatchedTrainer(ModelConfig(frames=20, num_classes=3, num_blocks=2), TrainingConfig(epoch=2))
        >>> x = np.random.default_rng(0).normal(size=(30, 20, 39)).astype("float32")
        >>> y = np.eye(3, dtype="float32")[np.arange(30) % 3]
        >>> results = trainer.train_jobs(x, y, [FoldJob(46, 1, np.arange(20)), FoldJob(46, 2, np.arange(10, 30))])
        >>> [len(r.history["loss"]) for r in results]
        [2, 2]
    """

    def __init__(self, model_config, training, selection="last", chunk_epochs=CHUNK_EPOCHS):
        _require_jax()
        configure_jax_compiler()  # a later run of the same cell shape loads the program instead of compiling it
        check_selection(selection)
        self.model_config, self.training, self.selection = model_config, training, selection
        self.chunk_epochs = max(1, min(int(chunk_epochs), training.epoch))
        t = training
        seed_everything(0)  # the model's own initial weights are never used: every fold gets its fresh ones
        with precision_policy(t.precision):
            self.model = TimnetClassifier.from_model_config(model_config)
        self.optimizer = build_optimizer(t)
        self.optimizer.build(self.model.trainable_variables)
        self.loss = build_loss(t)
        self._program = None

    # --- host side -----------------------------------------------------------------------

    def initial_state(self, job):
        """A fold's fresh state, exactly as the sequential trainer starts it: (trainable, non-trainable, optimizer)."""
        model = self.model
        model.set_weights(fresh_weights(self.model_config, job.seed + job.fold))
        reset_dropout_streams(model, job.seed + job.fold)
        optimizer = [np.full(v.shape, self.training.lr, v.dtype) if "learning_rate" in v.path else np.zeros(v.shape, v.dtype)
                     for v in self.optimizer.variables]
        return ([np.asarray(v.value) for v in model.trainable_variables],
                [np.asarray(v.value) for v in model.non_trainable_variables], optimizer)

    def batches(self, jobs, orders, first_epoch, epochs, steps):
        """Row indices and weights (folds, epochs, steps, batch) of epochs [first_epoch, first_epoch + epochs).

        `orders` holds each job's `epoch_orders`, drawn once per `train` call.
        """
        batch = self.training.batch_size
        index = np.zeros((len(jobs), epochs, steps, batch), np.int32)
        weight = np.zeros((len(jobs), epochs, steps, batch), np.float32)
        for f, (job, order) in enumerate(zip(jobs, orders)):
            for e in range(epochs):
                if first_epoch + e >= self.training.epoch:
                    break  # a padded epoch past the end: all weight zero, it changes nothing
                for s, (rows, weights) in enumerate(padded_batches(job.train[order[first_epoch + e]], batch)):
                    index[f, e, s], weight[f, e, s] = rows, weights
        return index, weight

    def train(self, features, jobs, on_fold=None, checkpoint=None, desc=None, log=None):
        """The `Trainer` contract: trains `jobs` (plan.FoldJobs over FeatureSet `features`) together.

        Each fold's FoldRecord goes to `on_fold(model, record)` once all are trained; returns the
        records in order. `features` may be a list with one FeatureSet per job (`plan.job_features`);
        folds whose views differ index their own block of stacked rows. `checkpoint`, a path, is written after every chunk of epochs and read
        back by a later call with the same jobs (--resume); it is removed when every fold is kept.
        """
        from timnet_keras.features.normalise import view_blocks

        start = time.time()
        jobs = list(jobs)
        if not jobs:
            return []
        views = job_features(features, jobs)
        x_all, y_all, offsets = view_blocks(views)
        trained = [shifted(job, offset) for job, offset in zip(jobs, offsets)]
        state = load_checkpoint(checkpoint, self, trained) if checkpoint else None
        if state is not None and log is not None:
            log(f"resuming the batched folds from epoch {state['epochs_done']} ({os.path.basename(checkpoint)})")
        save = (lambda chunk_state: save_checkpoint(checkpoint, self, trained, chunk_state)) if checkpoint else None
        results = self.train_jobs(x_all, y_all, trained, state=state, on_chunk=save,
                                  desc=desc or f"{len(jobs)} folds together")
        seconds = (time.time() - start) / len(jobs)  # the folds trained together: each gets its share
        records = []
        for job, result, features in zip(jobs, results, views):
            result.load_into(self.model)
            records.append(score_fold(self.model, job, features, result.history, result.selected_epoch, seconds,
                                      self.training.batch_size))
            if on_fold is not None:
                on_fold(self.model, records[-1])
        if checkpoint and os.path.exists(checkpoint):
            os.remove(checkpoint)
        return records

    def train_jobs(self, x, y, jobs, state=None, on_chunk=None, desc="folds"):
        """Trains `jobs` (FoldJobs over the rows of x, y) together; returns their FoldResults in order.

        `state` resumes from a `checkpoint` of an earlier call; `on_chunk(checkpoint)`
        is called after every chunk (the caller saves it for --resume).
        """
        import jax
        import jax.numpy as jnp
        from tqdm import tqdm

        jobs = list(jobs)
        epochs, chunk = self.training.epoch, self.chunk_epochs
        steps = max(steps_per_epoch(len(job.train), self.training.batch_size) for job in jobs)
        selecting = self.selection != "last"
        if selecting and any(job.select is None or not len(job.select) for job in jobs):
            raise RunError(f"--select {self.selection} needs selection rows for every fold")
        select_index, select_weight = _padded_rows([job.select if selecting else () for job in jobs])
        curve = all(job.test is not None and len(job.test) for job in jobs)
        test_index, test_weight = _padded_rows([job.test if curve else () for job in jobs])
        if state is None:
            state = self._fresh_checkpoint(jobs)
        stacked = jax.tree.map(jnp.asarray, state["variables"])
        best = jax.tree.map(jnp.asarray, state["best"])
        history = state["history"]
        x_all, y_all = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
        program = self._compiled_program(selecting, curve)
        orders = [epoch_orders(job.seed, job.fold, len(job.train), epochs) for job in jobs]
        bar = tqdm(total=epochs, initial=state["epochs_done"], desc=desc, unit="epoch", leave=False, disable=None)
        for first in range(state["epochs_done"], epochs, chunk):
            start = time.perf_counter()
            index, weight = self.batches(jobs, orders, first, chunk, steps)
            numbers = np.arange(first + 1, first + chunk + 1, dtype=np.int32)
            stacked, best, (loss, accuracy, select_accuracy, test_scores) = program(
                stacked, best, x_all, y_all, index, weight, numbers, select_index, select_weight, test_index, test_weight)
            loss, accuracy, select_accuracy, test_scores = (np.asarray(a, np.float64) for a in (
                loss, accuracy, select_accuracy, test_scores))
            real = min(chunk, epochs - first)
            seconds = (time.perf_counter() - start) / real
            for f, job in enumerate(jobs):
                bad = np.flatnonzero(~np.isfinite(loss[f, :real]))
                if len(bad):
                    raise RunError(f"fold {job.fold}: the training loss became {loss[f, bad[0]]} in epoch {first + bad[0] + 1}; "
                                   f"nothing of this run's unfinished folds was saved. Lower --lr, or check the features")
                record = history[f]
                record.setdefault("loss", []).extend(loss[f, :real].tolist())
                record.setdefault("accuracy", []).extend(accuracy[f, :real].tolist())
                if selecting:
                    record.setdefault("val_accuracy", []).extend(select_accuracy[f, :real].tolist())
                if curve:
                    for k, key in enumerate(CURVE_KEYS):
                        record.setdefault(key, []).extend(test_scores[f, :real, k].tolist())
                record.setdefault("seconds", []).extend([round(seconds, 4)] * real)
            state = {"variables": stacked, "best": best, "history": history, "epochs_done": first + real}
            bar.update(real)
            bar.set_postfix(loss=f"{float(np.mean(loss[:, real - 1])):.3f}")
            if on_chunk is not None:
                on_chunk(state)
        bar.close()
        return self._results(jobs, state, selecting)

    def _fresh_checkpoint(self, jobs):
        states = [self.initial_state(job) for job in jobs]
        variables = tuple([np.stack(parts) for parts in zip(*(s[k] for s in states))] for k in range(3))
        best = {"accuracy": np.full(len(jobs), -1.0, np.float32), "epoch": np.full(len(jobs), self.training.epoch, np.int32),
                "trainable": [a.copy() for a in variables[0]], "non_trainable": [a.copy() for a in variables[1]]}
        return {"variables": variables, "best": best, "history": [{} for _ in jobs], "epochs_done": 0}

    def _results(self, jobs, state, selecting):
        variables = [[np.asarray(a) for a in part] for part in state["variables"]]
        best = {k: ([np.asarray(a) for a in v] if isinstance(v, list) else np.asarray(v)) for k, v in state["best"].items()}
        results = []
        for f, job in enumerate(jobs):
            source = (best["trainable"], best["non_trainable"]) if selecting else variables[:2]
            selected = int(best["epoch"][f]) if selecting else self.training.epoch
            results.append(FoldResult(job, state["history"][f], selected, [a[f] for a in source[0]], [a[f] for a in source[1]]))
        return results

    # --- the program -----------------------------------------------------------------------

    def _compiled_program(self, selecting, curve):
        if self._program is None or self._program[0] != (selecting, curve):
            self._program = ((selecting, curve), self._build_program(selecting, curve))
        return self._program[1]

    def _build_program(self, selecting, curve):
        """jit(vmap over folds of scan over epochs of scan over steps)."""
        import jax
        import jax.numpy as jnp

        model, optimizer, loss_fn = self.model, self.optimizer, self.loss

        def keep_if(active, new, old):
            return jax.tree.map(lambda a, b: jnp.where(active, a, b), new, old)

        def train_step(state, x_all, y_all, index, weight):
            trainable, non_trainable, optimizer_variables = state
            xb, yb = x_all[index], y_all[index]

            def loss_and_outputs(trainable):
                with real_rows(weight > 0):
                    y_pred, updated = model.stateless_call(trainable, non_trainable, xb, training=True)
                return loss_fn(yb, y_pred, sample_weight=weight), (y_pred, updated)

            (loss, (y_pred, updated)), grads = jax.value_and_grad(loss_and_outputs, has_aux=True)(trainable)
            new_trainable, new_optimizer = optimizer.stateless_apply(optimizer_variables, grads, trainable)
            count = jnp.sum(weight)
            active = count > 0  # a step of padding only (a fold with fewer batches) changes nothing
            state = keep_if(active, (new_trainable, updated, new_optimizer), state)
            correct = jnp.sum(weight * (jnp.argmax(y_pred, -1) == jnp.argmax(yb, -1)))
            return state, (jnp.where(active, loss * count, 0.0), correct, count)

        def test_scores(state, x_all, y_all, test_index, test_weight):
            """(WAR, UAR, loss) of the test rows, as plan.curve_point computes them on the host."""
            trainable, non_trainable, _ = state
            y_pred, _ = model.stateless_call(trainable, non_trainable, x_all[test_index], training=False)
            truth = y_all[test_index]
            hits = test_weight * (jnp.argmax(y_pred, -1) == jnp.argmax(truth, -1))
            per_class = jnp.sum(truth * test_weight[:, None], 0)
            recalls = jnp.sum(truth * hits[:, None], 0) / jnp.maximum(per_class, 1.0)
            present = per_class > 0
            uar = jnp.sum(jnp.where(present, recalls, 0.0)) / jnp.maximum(jnp.sum(present), 1)
            p_true = jnp.clip(jnp.sum(truth * y_pred.astype("float32"), -1), 1e-7, 1.0)
            n = jnp.sum(test_weight)
            return jnp.stack([jnp.sum(hits) / n, uar, -jnp.sum(test_weight * jnp.log(p_true)) / n])

        def epoch(carry, inputs, x_all, y_all, select_index, select_weight, test_index, test_weight):
            state, best = carry
            index, weight, number = inputs
            state, (loss_sums, corrects, counts) = jax.lax.scan(
                lambda s, b: train_step(s, x_all, y_all, *b), state, (index, weight))
            n = jnp.maximum(jnp.sum(counts), 1.0)
            select_accuracy = jnp.float32(0.0)
            if selecting:
                trainable, non_trainable, _ = state
                y_pred, _ = model.stateless_call(trainable, non_trainable, x_all[select_index], training=False)
                hits = jnp.argmax(y_pred, -1) == jnp.argmax(y_all[select_index], -1)
                select_accuracy = jnp.sum(select_weight * hits) / jnp.sum(select_weight)
                better = (jnp.sum(counts) > 0) & (select_accuracy > best["accuracy"])  # first epoch of ties
                best = keep_if(better, {"accuracy": select_accuracy, "epoch": number, "trainable": trainable,
                                        "non_trainable": non_trainable}, best)
            scores = test_scores(state, x_all, y_all, test_index, test_weight) if curve else jnp.zeros(3, jnp.float32)
            return (state, best), (jnp.sum(loss_sums) / n, jnp.sum(corrects) / n, select_accuracy, scores)

        def chunk(state, best, x_all, y_all, index, weight, numbers, select_index, select_weight, test_index, test_weight):
            (state, best), logs = jax.lax.scan(
                lambda c, i: epoch(c, i, x_all, y_all, select_index, select_weight, test_index, test_weight),
                (state, best), (index, weight, numbers))
            return state, best, logs

        batched = jax.vmap(chunk, in_axes=(0, 0, None, None, 0, 0, None, 0, 0, 0, 0))
        return jax.jit(batched, donate_argnums=(0, 1))


def _padded_rows(row_lists):
    """(index, weight), (jobs, longest): each job's rows, padded with row 0 at weight 0."""
    longest = max([len(rows) for rows in row_lists] + [1])
    index, weight = np.zeros((len(row_lists), longest), np.int32), np.zeros((len(row_lists), longest), np.float32)
    for f, rows in enumerate(row_lists):
        index[f, : len(rows)], weight[f, : len(rows)] = rows, 1.0
    return index, weight


def _require_jax():
    if keras.backend.backend() != "jax":
        raise RunError("the batched trainer needs the JAX backend: add --backend jax, or use --trainer sequential")


# --- checkpoints for --resume ----------------------------------------------------------------

def _job_identity(jobs, training, chunk_epochs):
    return json.dumps({"jobs": [[job.seed, job.fold, len(job.train)] for job in jobs], "epoch": training.epoch,
                       "batch_size": training.batch_size, "chunk_epochs": chunk_epochs})


def save_checkpoint(path, trainer, jobs, state):
    """The state after a chunk, written atomically: --resume continues from it, losing at most one chunk."""
    arrays = {"identity": np.array(_job_identity(jobs, trainer.training, trainer.chunk_epochs)),
              "history": np.array(json.dumps(state["history"])), "epochs_done": np.array(state["epochs_done"])}
    for k, part in enumerate(state["variables"]):
        arrays.update({f"variables_{k}_{i}": np.asarray(a) for i, a in enumerate(part)})
    for key, value in state["best"].items():
        if isinstance(value, list):
            arrays.update({f"best_{key}_{i}": np.asarray(a) for i, a in enumerate(value)})
        else:
            arrays[f"best_{key}"] = np.asarray(value)
    write_atomic(path, lambda tmp: np.savez(tmp, **arrays))


def load_checkpoint(path, trainer, jobs):
    """The state saved by `save_checkpoint` for these same jobs and settings; None when there is none or it differs."""
    if not os.path.isfile(path):
        return None
    with np.load(path) as saved:
        if str(saved["identity"]) != _job_identity(jobs, trainer.training, trainer.chunk_epochs):
            return None
        listed = lambda prefix: [saved[f"{prefix}_{i}"] for i in range(sum(k.startswith(prefix + "_") for k in saved.files))]
        return {"variables": tuple(listed(f"variables_{k}") for k in range(3)),
                "best": {"accuracy": saved["best_accuracy"], "epoch": saved["best_epoch"],
                         "trainable": listed("best_trainable"), "non_trainable": listed("best_non_trainable")},
                "history": json.loads(str(saved["history"])), "epochs_done": int(saved["epochs_done"])}


def shifted(job, offset):
    """`job` over rows `offset` further on: its fold's block of stacked, normalised features (`normalise.view_blocks`)."""
    if not offset:
        return job
    move = lambda rows: None if rows is None else np.asarray(rows) + offset
    return dataclasses.replace(job, train=move(job.train), select=move(job.select), test=move(job.test))
