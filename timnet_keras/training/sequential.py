"""The sequential trainer: folds one after another, each from fresh seeded weights.

The classifier is built and compiled once per trainer; each fold restores
fresh seeded initial weights and a zeroed optimizer, so only the first fold
pays for tracing and XLA compilation. Its sibling is the batched trainer
(`batched`); both follow the `Trainer` contract of `trainers`, and start
every fold as the fold plan (`plan`) says.
"""
import time

import numpy as np

from timnet_keras.model.classifier import TimnetClassifier
from timnet_keras.errors import RunError
from timnet_keras.training.jax_compiler import configure_jax_compiler
from timnet_keras.model.padding import padded_batches
from timnet_keras.training.plan import (_check_precision, build_loss, build_optimizer, check_selection, curve_point,
                                        epoch_orders, fresh_weights, job_features, precision_policy, predict_padded,
                                        reset_dropout_streams, score_fold, seed_everything)


class SequentialTrainer:
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
        jit_compile: XLA for the train step (the same training up to round-off; faster on CPU).
        run_eagerly: no graph at all: slow steps, but no tracing (short checks, debugging).
    """

    def __init__(self, model_config, training, seed, selection="last", jit_compile=True, run_eagerly=False):
        check_selection(selection)
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
                optimizer=build_optimizer(t),
                loss=build_loss(t),
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

    def train(self, features, jobs, on_fold=None, checkpoint=None, desc=None, log=None):
        """The `Trainer` contract: trains `jobs` (plan.FoldJobs over FeatureSet `features`) one after another.

        `features` may be a list with one FeatureSet per job (`plan.job_features`: a fold's normalisation).

        Each finished fold's FoldRecord is passed to `on_fold(model, record)` (the run folder saves it)
        before the next starts; returns the records in order. `checkpoint` is the batched trainer's
        (a fold here is its own checkpoint), `log` its resume message.
        """
        if self.model is None:
            self.warm_up()
        records = []
        for job, features in zip(jobs, job_features(features, jobs)):
            start = time.time()
            select = job.select if self.selection == "best-val" else None  # the plan's tenth of the training part
            history, selected = self._train_rows(job, features, select, desc or f"fold {job.fold}")
            records.append(score_fold(self.model, job, features, history, selected, time.time() - start,
                                      self.training.batch_size))
            if on_fold is not None:
                on_fold(self.model, records[-1])
        return records

    def _train_rows(self, job, features, select, desc):
        x_test = features.x[job.test] if job.test is not None else None
        y_test = features.y[job.test] if job.test is not None else None
        validation = (features.x[select], features.y[select]) if select is not None else None
        return self.train_fold(job.fold, features.x[job.train], features.y[job.train], x_test, y_test, desc=desc,
                               validation=validation, seed=job.seed)

    def train_fold(self, fold, x_train, y_train, x_test=None, y_test=None, desc="fold", validation=None, seed=None,
                   curves=None):
        """Trains from fresh weights; returns (history, selected_epoch). The model keeps the selected weights.

        With a test part, the history carries its curve (`CURVE_KEYS`, one forward pass per epoch):
        recorded for the paper's test-selected protocol, never used to select unless selection is best-test.
        `curves`, {name: (x, y)}, adds further test sets' curves as `name/test_accuracy` and so on: one
        cross-corpus training scores every target of its source (prediction changes no weight or stream).
        """
        from tqdm import tqdm

        model = self.compiled_model()
        seed = self.seed if seed is None else seed
        model.set_weights(fresh_weights(self.model_config, seed + fold))
        reset_dropout_streams(model, seed + fold)
        for variable in model.optimizer.variables:
            if "learning_rate" not in variable.path:
                variable.assign(np.zeros(variable.shape, variable.dtype))
        epochs, batch = self.training.epoch, self.training.batch_size
        if self.selection == "best-test":
            validation = (x_test, y_test)  # asked for by name: the results say test-selected
        elif self.selection == "best-val" and validation is None:
            raise RunError("--select best-val needs the fold's validation rows (plan.fold_job gives them)")
        y_train = np.asarray(y_train, np.float32)
        orders = epoch_orders(seed, fold, len(x_train), epochs)
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


