"""`TimnetClassifier`: audio or MFCCs in, emotion probabilities out.

The task model of KerasHub's split: a `TimnetBackbone`, a Dense softmax head,
the `MfccPreprocessor` that turns audio into the backbone's input, and the
label names. A classifier made from a cross-validated run holds one member
(backbone + head) per fold and averages their probabilities, as the
authors' predict does; it saves to one `.keras` file with all of it.
"""
import os

import keras
import numpy as np

from timnet_keras.model.backbone import TimnetBackbone
from timnet_keras.errors import InputError
from timnet_keras.model.layers import PACKAGE
from timnet_keras.model.padding import real_rows
from timnet_keras.features.preprocessor import MfccPreprocessor

keras.saving.register_keras_serializable(package=PACKAGE)(MfccPreprocessor)


@keras.saving.register_keras_serializable(package=PACKAGE)
class TemperatureScaling(keras.layers.Layer):
    """softmax(ln p / T) of probabilities p: a fold member's fitted temperature (see `calibration`); no weights."""

    def __init__(self, temperature, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.temperature = float(temperature)

    def call(self, probabilities):
        logits = keras.ops.log(keras.ops.clip(probabilities, 1e-12, 1.0)) / self.temperature
        return keras.ops.softmax(logits, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TimnetClassifier(keras.Model):
    """TIM-Net's classifier: `ensemble_size` members of backbone + Dense(softmax), averaged.

    Args:
        backbone: a `TimnetBackbone` (member 1; further members are fresh copies of its config).
        num_classes: number of emotions.
        labels: class names in output order (default class_0, class_1, ...).
        preprocessor: the `MfccPreprocessor` for `predict_files` / `predict_signals`.
        ensemble_size: fold members whose probabilities are averaged (1 for one model).
        temperatures: one per member (default all 1): each member's probabilities are temperature-scaled
            before the average (`calibration`); a member of temperature 1 has no scaling layer.
        abstain_thresholds: {min_confidence, max_entropy} for `abstain` (None: no model-based abstention).

    Example:
        >>> classifier = TimnetClassifier(TimnetBackbone(frames=188), num_classes=7)
        >>> classifier.count_params()
        106992
        >>> classifier.predict(np.zeros((2, 188, 39), "float32"), verbose=0).shape
        (2, 7)
    """

    def __init__(self, backbone, num_classes, labels=None, preprocessor=None, ensemble_size=1, temperatures=None,
                 abstain_thresholds=None, **kwargs):
        frames, n_mfcc = backbone.input.shape[1:]
        inputs = keras.Input(shape=(frames, n_mfcc), name="mfcc")
        backbones = [backbone] + [
            TimnetBackbone.from_config(dict(backbone.get_config(), name=f"{backbone.name}_{k}"))
            for k in range(2, ensemble_size + 1)
        ]
        # float32 heads: under mixed precision the probabilities (and the loss) stay float32
        heads = [keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                    name="classifier" if k == 1 else f"classifier_{k}")
                 for k in range(1, ensemble_size + 1)]
        temperatures = tuple(float(t) for t in temperatures) if temperatures is not None else (1.0,) * ensemble_size
        if len(temperatures) != ensemble_size:
            raise ValueError(f"{len(temperatures)} temperatures for {ensemble_size} members")
        if not all(t > 0 for t in temperatures):
            raise ValueError(f"temperatures must be positive, got {temperatures}")
        outputs = [head(member(inputs)) for member, head in zip(backbones, heads)]
        outputs = [output if t == 1.0 else TemperatureScaling(t, name="temperature" if k == 1 else f"temperature_{k}")(output)
                   for k, (output, t) in enumerate(zip(outputs, temperatures), start=1)]
        output = outputs[0] if ensemble_size == 1 else keras.layers.Average(name="fold_mean")(outputs)
        kwargs.setdefault("name", f"{backbone.variant}_classifier")
        super().__init__(inputs=inputs, outputs=output, **kwargs)
        self.backbone = backbone
        self.member_backbones = backbones
        self.member_heads = heads
        self.num_classes = int(num_classes)
        self.labels = tuple(labels) if labels else tuple(f"class_{i}" for i in range(num_classes))
        self.preprocessor = preprocessor
        self.ensemble_size = int(ensemble_size)
        self.temperatures = temperatures
        self.abstain_thresholds = dict(abstain_thresholds) if abstain_thresholds else None
        object.__setattr__(self, "last_normalisation", "")  # what the last predict_files/_signals normalised with
        if len(self.labels) != self.num_classes:
            raise ValueError(f"{len(self.labels)} labels for {num_classes} classes")

    @property
    def members(self):
        """[(backbone, head)] per fold member."""
        return list(zip(self.member_backbones, self.member_heads))

    # --- building -----------------------------------------------------------------------

    @classmethod
    def from_model_config(cls, model_config, labels=None, preprocessor=None, ensemble_size=1, temperatures=None,
                          abstain_thresholds=None):
        """A fresh classifier of a `ModelConfig` (the form run folders store)."""
        try:
            backbone = TimnetBackbone(**model_config.backbone_kwargs())
        except ValueError as error:  # settings a hand edit broke (an activation Keras does not know, ...)
            raise InputError(f"the model settings do not build a model ({error}); restore the run's run_config.json") from None
        return cls(backbone, model_config.num_classes, labels, preprocessor, ensemble_size, temperatures, abstain_thresholds)

    @classmethod
    def from_run(cls, run_dir, fold=None):
        """Our run folder (`Models/<run>/`): every fold as an ensemble member, or one `fold`.

        A fold trained with calibration rows (`--calibrate`) brings its temperature (the ensemble
        averages the calibrated member probabilities) and its abstain thresholds; others temperature 1.
        """
        from timnet_keras.runs import store as run_store

        return cls._from_fold_files(*run_store.read_saved_run(run_dir), fold)

    @classmethod
    def from_preset(cls, name, presets_dir=None, fold=None):
        """A preset by name: a finished honest run packed with its model card (`runs.presets`); no network.

        Presets ship in the package (`timnet_keras/presets/<name>/`), or `presets_dir` holds your own
        (`Code/build_preset.py RUN --name NAME`).
        """
        from timnet_keras.runs import presets

        return cls.from_run(presets.preset_path(name, presets_dir or presets.PRESETS_DIR), fold)

    @classmethod
    def from_weights(cls, folder, corpus, fold=None):
        """The authors' released weights folder (e.g. `EMODB_46/`) of a known `corpus`."""
        from timnet_keras.runs import store as run_store

        return cls._from_fold_files(*run_store.read_saved_run(folder, corpus=corpus), fold)

    @classmethod
    def _from_fold_files(cls, run_config, files, fold):
        from timnet_keras.model.checkpoints import load_legacy_weights

        from timnet_keras.training.calibration import ensemble_thresholds
        from timnet_keras.runs.store import fold_calibrations

        calibrations = fold_calibrations(files)
        if fold is not None:
            if not 1 <= fold <= len(files):
                raise InputError(f"fold {fold} of a {len(files)}-fold run does not exist; choose 1..{len(files)}")
            files, calibrations = [files[fold - 1]], [calibrations[fold - 1]]
        preprocessor = MfccPreprocessor.from_settings(run_config.features, run_config.normalise) if run_config.features else None
        classifier = cls.from_model_config(run_config.model, run_config.labels or None, preprocessor, len(files),
                                           [c["temperature"] if c else 1.0 for c in calibrations],
                                           ensemble_thresholds(calibrations))
        for member, path in enumerate(files):
            load_legacy_weights(classifier, path, member=member)
        return classifier

    # --- training -------------------------------------------------------------------------

    def train_step(self, *args):
        """Keras' train step (any backend), in which rows of sample weight 0 are padding.

        The loss and metrics leave them out through their sample weights;
        this also leaves them out of BatchNormalization's batch statistics,
        so a padded batch trains as the unpadded one (see `padding`).
        """
        _, _, sample_weight = keras.utils.unpack_x_y_sample_weight(args[-1])
        mask = None if sample_weight is None else keras.ops.greater(sample_weight, 0)
        with real_rows(mask):
            return super().train_step(*args)

    # --- predicting -----------------------------------------------------------------------

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Keras' predict; an ensemble's members run one after another through one compiled member.

        The averaged graph of ten members is ten times the ops for TensorFlow to trace and
        dispatch (a 10-minute timeline took a minute); one member's graph, traced once and
        given each member's weights in turn, gives the same mean in a fraction of the time.
        """
        if self.ensemble_size == 1 or not isinstance(x, np.ndarray) or steps is not None or callbacks:
            return super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)
        from timnet_keras.training.calibration import apply_temperature

        runner = self._member_runner()
        total = None
        for (backbone, head), temperature in zip(self.members, self.temperatures):
            runner.backbone.set_weights(backbone.get_weights())
            runner.member_heads[0].set_weights(head.get_weights())
            probabilities = apply_temperature(runner.predict(x, batch_size=batch_size, verbose=0), temperature)
            total = probabilities if total is None else total + probabilities
        return (total / self.ensemble_size).astype(np.float32)

    def _member_runner(self):
        runner = self.__dict__.get("_member_runner_model")
        if runner is None:
            backbone = TimnetBackbone.from_config(dict(self.backbone.get_config(), name="member_runner_backbone"))
            runner = TimnetClassifier(backbone, self.num_classes, self.labels, name="member_runner")
            runner.compile(jit_compile=False)  # XLA would compile for seconds; a traced graph is enough here
            # Untracked on purpose: the runner's weights are scratch space, not part of this model's weights.
            object.__setattr__(self, "_member_runner_model", runner)
        return runner

    def _needs_preprocessor(self):
        if self.preprocessor is None:
            raise ValueError("this classifier has no preprocessor; give one (MfccPreprocessor) or call predict on MFCCs")
        return self.preprocessor

    def predict_files(self, paths, batch_size=64, enrol=None):
        """Probabilities (n, classes) of audio files (one centre window each, as the authors).

        A classifier of a run with normalised features (`preprocessor.normalise`) normalises them
        its way. `speaker` takes the speaker's statistics from `enrol` (a folder of the speaker's
        recordings, a list of files, or a `normalise.Statistics`) or, without it, from the files of
        this call taken together as one speaker; `last_normalisation` then says which, in words.
        """
        if isinstance(paths, (str, os.PathLike)) or not len(paths):
            raise InputError("predict_files takes a non-empty list of audio file paths")
        return self._predict_raw(self._needs_preprocessor().raw(paths), enrol, batch_size)

    def _predict_raw(self, x, enrol, batch_size):
        """Probabilities of raw MFCC matrices x, normalised the run's way (see `predict_files`)."""
        from timnet_keras.features.normalise import Statistics, frame_statistics
        from timnet_keras.runs.prediction import check_enrolment, enrolment_statistics, normalisation_note
        from timnet_keras.features.preprocessor import BadAudioError

        preprocessor = self.preprocessor
        check_enrolment(preprocessor, enrol)
        statistics = enrol if isinstance(enrol, Statistics) else None
        if enrol is not None and statistics is None:
            statistics, errors = enrolment_statistics(preprocessor, enrol)
            if errors:
                raise BadAudioError(f"enrolment: {errors[0]}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
        elif preprocessor.normalise == "speaker" and statistics is None:
            statistics = frame_statistics(x, f"the {len(x)} recording{'s' if len(x) != 1 else ''} given together "
                                             f"(taken to be one speaker)")
        object.__setattr__(self, "last_normalisation", normalisation_note(preprocessor, statistics))
        return self.predict(preprocessor.normalised(x, statistics), batch_size=batch_size, verbose=0)

    def predict_signals(self, signals, sample_rate, batch_size=64, enrol=None):
        """Probabilities (n, classes) of signals sampled at `sample_rate` (a list of arrays, or one 2-D batch).

        Integer PCM is scaled as soundfile reads it and (samples, channels) is averaged to mono
        (`inputs.audio_array`); an empty signal, a rate that is not positive or NaN are refused.
        Normalised runs: as `predict_files` (`enrol`: the speaker's recordings or statistics).
        """
        if isinstance(signals, np.ndarray) and (signals.ndim == 1 or (signals.ndim == 2 and signals.shape[1] <= 8)):
            raise InputError(f"predict_signals got one array of shape {signals.shape}: pass a list of recordings, "
                             f"[signal] for one (a (samples, channels) recording is averaged to mono)")
        if not len(signals):
            raise InputError("predict_signals takes a non-empty list of signals")
        return self._predict_raw(self._needs_preprocessor().raw(signals, sample_rate=sample_rate), enrol, batch_size)

    def predicted_labels(self, probabilities):
        return [self.labels[i] for i in np.argmax(probabilities, axis=1)]

    # --- saving -------------------------------------------------------------------------

    def export_bundle(self, output_dir, format="onnx", overwrite=False, source="", fold=None, input="mfcc"):
        """The model in `format` (keras, saved_model, tflite, onnx) and its `timnet_export.json`, for
        consumers without this package; see `timnet_keras.model.export`. `input="audio"`: the model takes
        waveforms at the preprocessor's rate and computes the MFCCs itself. Returns the `ExportManifest`."""
        from timnet_keras.model.export import export_classifier

        return export_classifier(self, output_dir, format, source=source, fold=fold, overwrite=overwrite, input=input)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "labels": list(self.labels),
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor) if self.preprocessor else None,
            "ensemble_size": self.ensemble_size,
            "temperatures": list(self.temperatures),
            "abstain_thresholds": self.abstain_thresholds,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"], custom_objects=custom_objects)
        if config.get("preprocessor"):
            config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"], custom_objects=custom_objects)
        return cls(**config)

    @classmethod
    def load(cls, path):
        """A classifier saved with `save(path)` (a `.keras` file)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no saved classifier at {path}")
        model = keras.saving.load_model(path)
        if not isinstance(model, cls):
            raise ValueError(f"{path} holds a {type(model).__name__}, not a TimnetClassifier")
        return model


def build_timnet(input_shape, num_classes, dilations=None, **backbone_args):
    """One TIM-Net network (backbone + head) from the old keyword names; see `TimnetClassifier`.

    Example:
        >>> build_timnet((188, 39), 7).count_params()
        106992
    """
    frames, n_mfcc = input_shape
    if dilations is not None:
        backbone_args["num_blocks"] = dilations
    return TimnetClassifier(TimnetBackbone(frames, n_mfcc, **backbone_args), num_classes)
