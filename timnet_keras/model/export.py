"""Export a classifier for use outside this package: a Keras file, a SavedModel, TFLite or ONNX.

Keras' own `model.export` does the converting (SavedModel, LiteRT/TFLite, and
ONNX through tf2onnx); this module adds what a consumer needs beside the
model: `timnet_export.json` with the preprocessing, the labels, the input
shape and where the weights came from. The input is a batch of MFCC matrices
(frames, n_mfcc), float32, or with `input="audio"` a batch of mono float32
waveforms at the preprocessor's sample rate, the MFCC recipe then running
inside the graph (`mfcc_graph`); the output is class probabilities (each fold
member's, temperature-scaled when the run was calibrated, averaged over the
members when several were exported). ONNX files carry the labels in their
metadata, SavedModels in a `metadata()` endpoint. An export folder is written
under a temporary name and renamed when complete.

Normalised runs (`normalise`). A run trained with `--normalise utterance`
exports with the normalisation inside the model (`layers.UtteranceNormalisation`
before the classifier), so its input stays the raw MFCC matrix of the recipe
in the manifest and a consumer needs no new step. A run trained with
`--normalise speaker` is refused: its features need the statistics of the
speaker's other recordings, which a model that sees one recording at a time
cannot hold; such a run predicts through this package (`--mode predict
--enrol DIR`, `TimnetClassifier.predict_files(..., enrol=...)`).
"""
import dataclasses
import os
import shutil
import tempfile

from timnet_keras.errors import TimnetError
from timnet_keras.config import EXPORT_INPUTS, HOP_LENGTH, N_FFT

FORMATS = {"keras": "model.keras", "saved_model": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
MANIFEST = "timnet_export.json"


class ExportError(TimnetError):
    """An export that cannot be made as asked; the message says what to do."""


@dataclasses.dataclass
class ExportManifest:
    """What `timnet_export.json` tells a consumer of an exported model."""

    format: str
    model_file: str
    input_name: str  # "mfcc" or "audio"
    input_shape: list  # mfcc: [None, frames, n_mfcc]; audio: [None, None] (batch, samples)
    labels: list
    ensemble_size: int
    preprocessing: dict  # the whole recipe; its "in_graph" says which steps the model does itself
    source: str = ""
    fold: int | None = None
    versions: dict = dataclasses.field(default_factory=dict)
    input: str = "mfcc"  # what the model takes: "mfcc" (the matrix) or "audio" (a waveform at preprocessing's rate)
    temperatures: list = dataclasses.field(default_factory=list)  # per fold member, applied in the graph (1: none)


def preprocessing_settings(preprocessor):
    """The feature recipe in words a consumer without this package can follow."""
    settings = {
        "sample_rate": preprocessor.sample_rate,
        "mean_signal_length": preprocessor.mean_signal_length,
        "length_rule": "centre pad with zeros (extra zero on the right) or centre crop to mean_signal_length samples",
        "features": "librosa.feature.mfcc(y, sr=sample_rate, n_mfcc=n_mfcc) defaults, transposed to (frames, n_mfcc)",
        "n_mfcc": preprocessor.n_mfcc,
        "n_fft": N_FFT,
        "hop_length": HOP_LENGTH,
        "frames": preprocessor.frames,
        "load": "librosa.load(path, sr=sample_rate) (mono, soxr_hq resampling)",
    }
    if preprocessor.normalise != "none":
        from timnet_keras.features.normalise import SILENCE_TOLERANCE

        settings["normalise"] = preprocessor.normalise
        settings["normalisation"] = (
            "inside the model (layer utterance_normalisation): give it the raw MFCC matrix. Each matrix is "
            "standardised per coefficient over its real frames: all but the runs of silent frames (every coefficient "
            f"after the first at most {SILENCE_TOLERANCE:g} times the first: the zero padding) at either end; the same "
            "mean and deviation are applied to every frame")
    return settings


def check_exportable(normalise):
    """Refuses a run's normalisation that a single-recording model cannot apply: `speaker`."""
    if normalise == "speaker":
        raise ExportError("this run was trained with --normalise speaker: its features need the statistics of the "
                          "speaker's other recordings, which an exported model that sees one recording at a time "
                          "cannot hold, so it is not exported; predict with --mode predict --enrol DIR (the speaker's "
                          "recordings), or train with --normalise utterance to export")


def exported_model(classifier):
    """The Keras model an export writes: the classifier, after `UtteranceNormalisation` for a `utterance` run."""
    if classifier.preprocessor is None or classifier.preprocessor.normalise == "none":
        return classifier
    import keras

    from timnet_keras.model.layers import UtteranceNormalisation

    frames, n_mfcc = classifier.input.shape[1:]
    inputs = keras.Input(shape=(frames, n_mfcc), name="mfcc")
    outputs = classifier(UtteranceNormalisation(name="utterance_normalisation")(inputs))
    return keras.Model(inputs, outputs, name=f"{classifier.name}_utterance_normalised")


def check_export_request(format, input="mfcc"):
    """Raises ExportError for a format or input we cannot export (before any model is loaded).

    Example:
        >>> check_export_request("onnx", "audio")
        >>> check_export_request("keras", "audio")
        Traceback (most recent call last):
        ...
        timnet_keras.model.export.ExportError: --input audio exports a graph with the MFCC inside (saved_model, tflite or onnx); a .keras file is this package's TimnetClassifier, whose predict_files and predict_signals already take audio: choose another --format, or --input mfcc
    """
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if input not in EXPORT_INPUTS:
        raise ExportError(f"unknown export input {input!r}; choose one of {', '.join(EXPORT_INPUTS)}")
    if input == "audio" and format == "keras":
        raise ExportError("--input audio exports a graph with the MFCC inside (saved_model, tflite or onnx); a .keras file "
                          "is this package's TimnetClassifier, whose predict_files and predict_signals already take audio: "
                          "choose another --format, or --input mfcc")


def export_classifier(classifier, output_dir, format="onnx", source="", fold=None, overwrite=False, input="mfcc"):
    """Writes `classifier` to `output_dir` in `format` with its manifest; returns the ExportManifest.

    `input` is "mfcc" (the model takes (batch, frames, n_mfcc) MFCC matrices) or "audio"
    (it takes (batch, samples) mono float32 waveforms at the preprocessor's sample rate,
    and crops or pads and computes the MFCCs itself: `mfcc_graph`).
    Refuses an existing `output_dir` unless `overwrite`, and even then replaces
    only an earlier export of ours (`refuse_to_replace`); nothing is left half-written.

    Example:
        >>> import tempfile, numpy as np
        >>> from timnet_keras import MfccPreprocessor, TimnetBackbone, TimnetClassifier
        >>> model = TimnetClassifier(TimnetBackbone(frames=44, num_blocks=2), 4, preprocessor=MfccPreprocessor(22050))
        >>> out = os.path.join(tempfile.mkdtemp(), "export")
        >>> export_classifier(model, out, "keras").model_file
        'model.keras'
    """
    check_export_request(format, input)
    if fold is not None and classifier.ensemble_size != 1:
        raise ExportError(f"fold {fold} was given, but the classifier averages {classifier.ensemble_size} folds; "
                          f"export TimnetClassifier.from_run(run, fold={fold}) to export one fold")
    if classifier.preprocessor is None:
        raise ExportError("the classifier has no preprocessor, so a consumer could not make its input; "
                          "export a run or weights folder, or set classifier.preprocessor")
    check_exportable(classifier.preprocessor.normalise)
    output_dir = os.path.normpath(output_dir)
    if os.path.lexists(output_dir):
        if not overwrite:
            raise ExportError(f"{output_dir} exists; choose another --output or add --overwrite")
        refuse_to_replace(output_dir)
    parent = os.path.dirname(os.path.abspath(output_dir))
    if not os.path.isdir(parent):
        raise ExportError(f"{parent} does not exist; create it first")
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.export-", dir=parent)
    try:
        manifest = _manifest(classifier, format, source, fold, input)
        _write_model(classifier, os.path.join(staging, FORMATS[format]), format, manifest)
        from timnet_keras.io import write_json_atomic

        write_json_atomic(os.path.join(staging, MANIFEST), dataclasses.asdict(manifest))
        _swap_in(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def refuse_to_replace(output_dir):
    """Raises ExportError unless `output_dir` is an earlier export of ours and nothing else.

    An export of ours holds its manifest and the model it names, and no other
    entry: a folder with anything more (a run's weights, a user's notes, other
    runs) is never replaced, nor is the working folder or a folder above it.
    """
    path = os.path.realpath(output_dir)
    here = os.path.realpath(os.getcwd())
    if path == here or here.startswith(path.rstrip(os.sep) + os.sep):
        raise ExportError(f"--overwrite will not replace {output_dir}: it is the working folder or holds it; "
                          "choose a new folder for --output")
    if os.path.islink(output_dir) or not os.path.isdir(path):
        raise ExportError(f"--overwrite will not replace {output_dir}: it is not a folder of an earlier export; "
                          "choose a new folder for --output")
    entries = set(os.listdir(path))
    model_file = None
    if MANIFEST in entries:
        try:
            from timnet_keras.io import read_json

            model_file = read_json(os.path.join(path, MANIFEST)).get("model_file")
        except (OSError, ValueError, AttributeError):
            model_file = None
    if model_file not in FORMATS.values() or not entries <= {MANIFEST, model_file}:
        raise ExportError(f"--overwrite will not replace {output_dir}: it is not an earlier export of ours (only a "
                          f"folder holding just {MANIFEST} and its model is replaced); choose a new folder for --output")


def _swap_in(staging, output_dir):
    """Renames the finished export into place; an earlier export there is moved aside first, then removed."""
    if not os.path.lexists(output_dir):
        os.replace(staging, output_dir)
        return
    aside = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.old-", dir=os.path.dirname(os.path.abspath(output_dir)))
    os.rmdir(aside)
    os.replace(output_dir, aside)
    try:
        os.replace(staging, output_dir)
    except OSError:
        os.replace(aside, output_dir)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _write_model(classifier, path, format, manifest):
    import keras

    network = exported_model(classifier)  # with a `utterance` run's normalisation in front
    if format == "keras":
        network.save(path)
        return
    if keras.backend.backend() != "tensorflow":
        raise ExportError(f"--format {format} converts through TensorFlow: run the export with KERAS_BACKEND=tensorflow "
                          "(the weights are the same on every backend)")
    if format == "onnx":
        import importlib.util

        if importlib.util.find_spec("tf2onnx") is None or importlib.util.find_spec("onnx") is None:
            raise ExportError("--format onnx converts with tf2onnx: pip install 'timnet-keras[export]'")
    if manifest.input == "audio":
        from timnet_keras.model.mfcc_graph import audio_classifier

        model = audio_classifier(classifier, network)
    else:
        model = network
    signature = [keras.InputSpec(shape=tuple(manifest.input_shape), dtype="float32", name=manifest.input_name)]
    if format == "saved_model":
        _write_saved_model(model, path, signature, manifest)
        return
    model.export(path, format={"tflite": "litert", "onnx": "onnx"}[format], verbose=False, input_signature=signature)
    if format == "onnx":
        _label_onnx(path, manifest)


def model_metadata(manifest):
    """What the model file itself says about its input and output (ONNX metadata_props, the SavedModel's metadata())."""
    p = manifest.preprocessing
    return {"labels": list(manifest.labels), "input": manifest.input, "sample_rate": int(p["sample_rate"]),
            "mean_signal_length": int(p["mean_signal_length"]), "n_mfcc": int(p["n_mfcc"])}


def _write_saved_model(model, path, signature, manifest):
    """`model.export(format="tf_saved_model")`'s `serve` endpoint, and a `metadata()` endpoint with the labels."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track_and_add_endpoint("serve", model, signature)
    values = model_metadata(manifest)

    @tf.function(input_signature=[])
    def metadata():
        return {key: tf.constant(value) for key, value in values.items()}

    archive.add_endpoint("metadata", metadata)
    archive.write_out(path, verbose=False)


def _label_onnx(path, manifest):
    """Writes the labels and the input's description into the ONNX file's metadata_props (onnxruntime:
    `session.get_modelmeta().custom_metadata_map`); values are JSON. The file is still in the staging folder."""
    import json

    import onnx

    model = onnx.load(path)
    for key, value in model_metadata(manifest).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(model, path)


def _manifest(classifier, format, source, fold, input):
    from timnet_keras.io import versions

    frames, n_mfcc = classifier.input.shape[1:]
    preprocessing = preprocessing_settings(classifier.preprocessor)
    if input == "audio":
        preprocessing["in_graph"] = ("all but loading: give float32 mono samples in [-1, 1] at sample_rate, "
                                     "(batch, samples), one length per batch; the model applies length_rule and features")
        shape = [None, None]
    else:
        preprocessing["in_graph"] = "none: give the MFCC matrices, (batch, frames, n_mfcc)"
        shape = [None, int(frames), int(n_mfcc)]
    return ExportManifest(
        format=format, model_file=FORMATS[format], input_name=input, input_shape=shape,
        labels=list(classifier.labels), ensemble_size=classifier.ensemble_size, preprocessing=preprocessing,
        source=source, fold=fold, versions=versions(), input=input, temperatures=list(classifier.temperatures))
