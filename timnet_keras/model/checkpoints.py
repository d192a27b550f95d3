"""Fold checkpoints in the authors' TF-Keras 2 HDF5 layout, read and written.

The authors' released `.hdf5` files name each layer automatically
(`conv1d_34`, `batch_normalization_32`, ...); the number grows in creation
order, and that order (REFERENCE.md) is what maps a file onto our layers.
We write our own fold weights in the same layout, numbered from 1 and listed
in the authors' topological order, so their TF-Keras `load_weights` reads
ours too, and one loader reads both.
"""
import io
import json
import os
import re

import h5py
import numpy as np

from timnet_keras.errors import TimnetError
from timnet_keras.io import write_atomic


# Our layer classes -> the automatic name prefix TF-Keras 2 gave the authors' layers.
# ScaleAverage (the no_df ablation) has no counterpart in the authors' code: its prefix is
# the one TF-Keras 2 would give a layer of that class name, so no_df folds save and load too.
_AUTHORS_PREFIX = {
    "CausalConv1D": "conv1d",
    "BatchNormalization": "batch_normalization",
    "WeightLayer": "weight_layer",
    "ScaleAverage": "scale_average",
    "Dense": "dense",
}
# Each prefix's variables, in the order get_weights lists them.
_VARIABLE_NAMES = {
    "conv1d": ["kernel", "bias"],
    "batch_normalization": ["gamma", "beta", "moving_mean", "moving_variance"],
    "weight_layer": ["kernel"],
    "scale_average": ["scale"],
    "dense": ["kernel", "bias"],
}
CONFIG_ATTRIBUTE = "timnet_keras_config"


class WeightsMismatchError(TimnetError):
    """A weights file that does not fit the model it is loaded into."""


class DamagedWeightsError(WeightsMismatchError):
    """A weights file that cannot be read at all (truncated, empty, not HDF5)."""


def _open(path):
    try:
        return h5py.File(path, "r")
    except OSError as error:
        reason = str(error).split("(")[-1].rstrip(")") if "(" in str(error) else str(error)
        raise DamagedWeightsError(f"{path}: not a readable weights file ({reason}); re-train that fold "
                                  f"(remove the file, then --resume its run) or restore the file") from None


def _decode(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _suffix_number(name):
    match = re.search(r"_(\d+)$", name)
    return int(match.group(1)) if match else 0


def read_legacy_weights(path):
    """Arrays of a TF-Keras 2 weights file, grouped by kind in creation order.

    Returns {prefix: [[array, ...] per layer, sorted by the name's number]}.
    """
    groups = {}
    with _open(path) as f:
        if "layer_names" not in f.attrs:
            raise WeightsMismatchError(
                f"{path} is not a TF-Keras HDF5 weights file (no layer_names attribute)"
            )
        for name in _decode(f.attrs["layer_names"]):
            weight_names = _decode(f[name].attrs.get("weight_names", []))
            if not weight_names:
                continue
            prefix = re.sub(r"_\d+$", "", name)
            arrays = [np.asarray(f[name][w]) for w in weight_names]
            groups.setdefault(prefix, []).append((_suffix_number(name), arrays))
    return {prefix: [arrays for _, arrays in sorted(items, key=lambda t: t[0])] for prefix, items in groups.items()}


def read_checkpoint_config(path):
    """The model configuration we store beside the weights, or None (authors' files)."""
    with _open(path) as f:
        raw = f.attrs.get(CONFIG_ATTRIBUTE)
    return None if raw is None else json.loads(raw)


def _describe_file(groups):
    convs = groups.get("conv1d", [])
    dense = groups.get("dense", [])
    blocks = max(len(convs) - 2, 0) // 4
    classes = dense[-1][0].shape[-1] if dense else "?"
    filters = convs[0][0].shape[-1] if convs else "?"
    return f"{classes} classes, {blocks} blocks per direction, {filters} filters"


def weighted_layers_in_creation_order(classifier, member=0):
    """One member's weight-holding layers in the authors' creation order: backbone, then head."""
    backbone, head = classifier.members[member]
    return backbone.weighted_layers_in_creation_order() + [head]


def _describe_model(classifier):
    backbone, head = classifier.members[0]
    return f"{head.units} classes, {backbone.num_blocks} blocks per direction, {backbone.filters} filters"


def load_legacy_weights(classifier, path, member=0):
    """Fill one member of a `TimnetClassifier` from a legacy HDF5 fold file: the authors' or ours.

    Raises WeightsMismatchError, naming what the file holds and what the model
    expects, when any layer count or array shape differs.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    groups = read_legacy_weights(path)
    layers = weighted_layers_in_creation_order(classifier, member)
    queues = {prefix: list(items) for prefix, items in groups.items()}
    wanted = {}
    for layer in layers:
        prefix = _AUTHORS_PREFIX[type(layer).__name__]
        wanted[prefix] = wanted.get(prefix, 0) + 1

    def mismatch(detail):
        return WeightsMismatchError(
            f"{os.path.basename(path)} holds {_describe_file(groups)}; the model expects "
            f"{_describe_model(classifier)} ({detail}). Build the model with the file's settings "
            f"(--data, --dilation_size, --filter_size) or pick the matching weights."
        )

    found = {prefix: len(items) for prefix, items in groups.items()}
    if found != wanted:
        raise mismatch(f"layers in file {found}, in model {wanted}")
    assignments = []
    for layer in layers:
        arrays = queues[_AUTHORS_PREFIX[type(layer).__name__]].pop(0)
        expected = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != expected:
            raise mismatch(f"layer {layer.name}: file shapes {[a.shape for a in arrays]}, model {expected}")
        assignments.append((layer, arrays))
    for layer, arrays in assignments:
        layer.set_weights(arrays)
    return classifier


load_authors_weights = load_legacy_weights  # the name of earlier releases


def _authors_topological_order(creation, directions):
    """Reorders creation-ordered layers the way TF-Keras 2 listed the authors' model.

    Within each dilation the authors' graph lists forward conv, backward
    conv, forward BN, backward BN for each sub-block; their loader pairs
    weighted layers by this order, so ours must follow it to be readable.
    """
    head, body = creation[:directions], creation[directions:]
    blocks = ("conv1d", "batch_normalization")
    tail = [item for item in body if item[1] not in blocks]  # the fusion's weights (if any), then the head
    body = [item for item in body if item[1] in blocks]
    ordered = list(head)
    per_dilation = 4 * directions
    for start in range(0, len(body), per_dilation):
        blocks = [body[i : i + 4] for i in range(start, start + per_dilation, 4)]
        for position in range(4):
            ordered += [block[position] for block in blocks]
    return ordered + tail


def save_legacy_weights(classifier, path, config=None, member=0):
    """Write one member's weights in the authors' HDF5 layout, atomically.

    `config` (a JSON-able dict, e.g. the model settings) is stored as a file
    attribute so `--mode test` can rebuild the right model; TF-Keras ignores it.
    """
    counters = {}
    creation = []
    for layer in weighted_layers_in_creation_order(classifier, member):
        prefix = _AUTHORS_PREFIX[type(layer).__name__]
        counters[prefix] = counters.get(prefix, 0) + 1
        creation.append((f"{prefix}_{counters[prefix]}", prefix, layer))
    directions = 2 if classifier.members[member][0].bidirectional else 1
    ordered = _authors_topological_order(creation, directions)

    # The file is built in memory and written with plain file I/O: HDF5 writing into a full disk
    # crashes the process (a segfault after 100+ tracebacks); a plain write raises one OSError.
    image = io.BytesIO()
    with h5py.File(image, "w") as f:
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.4.0"
        f.attrs["layer_names"] = np.array([name.encode() for name, _, _ in ordered])
        if config is not None:
            f.attrs[CONFIG_ATTRIBUTE] = json.dumps(config)
        for name, prefix, layer in ordered:
            group = f.create_group(name)
            weight_names = [f"{name}/{v}:0" for v in _VARIABLE_NAMES[prefix]]
            group.attrs["weight_names"] = np.array([w.encode() for w in weight_names])
            for weight_name, value in zip(weight_names, layer.get_weights()):
                group.create_dataset(weight_name, data=np.asarray(value, dtype=np.float32))

    def write(tmp):
        with open(tmp, "wb") as handle:
            handle.write(image.getvalue())

    write_atomic(path, write)


def is_readable_weights_file(path):
    try:
        with _open(path) as f:
            return "layer_names" in f.attrs
    except DamagedWeightsError:
        return False
