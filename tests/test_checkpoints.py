"""Fold weights in the authors' HDF5 layout: theirs load bit for bit, ours read back, misfits refused."""
import os

import h5py
import numpy as np
import pytest

from conftest import EMODB_46, needs_emodb_46
from timnet_keras.model.checkpoints import (
    WeightsMismatchError,
    load_legacy_weights,
    read_checkpoint_config,
    save_legacy_weights,
    weighted_layers_in_creation_order,
)
from timnet_keras.model.classifier import build_timnet
from timnet_keras.runs.store import fold_weights_name


@needs_emodb_46
@pytest.mark.shared
@pytest.mark.parametrize("fold", range(1, 11))
def test_every_array_of_each_emodb_46_fold_lands_bit_for_bit(fold):
    path = os.path.join(EMODB_46, fold_weights_name(10, fold))
    model = load_legacy_weights(build_timnet((188, 39), 7), path)
    with h5py.File(path, "r") as f:
        groups = {}
        for name in f.attrs["layer_names"]:
            name = name.decode()
            weight_names = [w.decode() for w in f[name].attrs["weight_names"]]
            if weight_names:
                prefix, number = name.rsplit("_", 1)
                groups.setdefault(prefix, []).append((int(number), [f[name][w][()] for w in weight_names]))
    in_file = {k: [arrays for _, arrays in sorted(v, key=lambda t: t[0])] for k, v in groups.items()}
    kinds = {"CausalConv1D": "conv1d", "BatchNormalization": "batch_normalization", "WeightLayer": "weight_layer", "Dense": "dense"}
    for layer in weighted_layers_in_creation_order(model):
        expected = in_file[kinds[type(layer).__name__]].pop(0)
        for ours, theirs in zip(layer.get_weights(), expected):
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), layer.name
    assert all(not remaining for remaining in in_file.values())


@needs_emodb_46
@pytest.mark.shared
def test_a_6_class_model_refuses_the_7_class_file_with_a_clear_message():
    with pytest.raises(WeightsMismatchError) as error:
        load_legacy_weights(build_timnet((188, 39), 6), os.path.join(EMODB_46, fold_weights_name(10, 1)))
    message = str(error.value)
    assert "holds 7 classes, 8 blocks per direction, 39 filters" in message
    assert "expects 6 classes" in message and "\n" not in message


@needs_emodb_46
@pytest.mark.shared
@pytest.mark.parametrize("kwargs,expects", [({"dilations": 10}, "10 blocks"), ({"filters": 32}, "32 filters")])
def test_other_block_or_filter_counts_are_refused(kwargs, expects):
    with pytest.raises(WeightsMismatchError, match=expects):
        load_legacy_weights(build_timnet((188, 39), 7, **kwargs), os.path.join(EMODB_46, fold_weights_name(10, 1)))


def test_our_fold_file_reads_back_identically_with_its_config(tmp_path, rng):
    model = build_timnet((50, 39), 4, dilations=3)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    path = str(tmp_path / fold_weights_name(10, 1))
    save_legacy_weights(model, path, {"variant": "timnet", "dilations": 3})
    clone = load_legacy_weights(build_timnet((50, 39), 4, dilations=3), path)
    for a, b in zip(model.get_weights(), clone.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert read_checkpoint_config(path) == {"variant": "timnet", "dilations": 3}
    assert not [p for p in os.listdir(tmp_path) if "tmp" in p]


@pytest.mark.parametrize("variant", ["timnet", "tcn", "no_bd", "no_ms", "no_df"])
def test_every_variants_fold_file_reads_back_identically(variant, tmp_path, rng):
    # no_df's ScaleAverage and the one-direction variants must fit the layout as TIM-Net does.
    model = build_timnet((30, 39), 4, dilations=2, variant=variant)
    model.set_weights([np.abs(rng.normal(size=w.shape)).astype("float32") for w in model.get_weights()])
    path = str(tmp_path / fold_weights_name(2, 1))
    save_legacy_weights(model, path, {"variant": variant})
    clone = load_legacy_weights(build_timnet((30, 39), 4, dilations=2, variant=variant), path)
    for a, b in zip(model.get_weights(), clone.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(WeightsMismatchError):  # another variant's layers do not fit
        load_legacy_weights(build_timnet((30, 39), 4, dilations=2, variant="no_df" if variant == "timnet" else "timnet"), path)


def test_our_files_list_layers_in_the_authors_topological_order(tmp_path):
    # TF-Keras 2's load_weights pairs weighted layers by this order, so the authors' code can read ours.
    path = str(tmp_path / "w.hdf5")
    save_legacy_weights(build_timnet((30, 39), 7, dilations=2), path)
    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        assert f.attrs["keras_version"] in (b"2.4.0", "2.4.0")
        assert f["conv1d_3"]["conv1d_3/kernel:0"].shape == (2, 39, 39)
    assert names[:10] == ["conv1d_1", "conv1d_2", "conv1d_3", "conv1d_5", "batch_normalization_1",
                          "batch_normalization_3", "conv1d_4", "conv1d_6", "batch_normalization_2", "batch_normalization_4"]
    assert names[-2:] == ["weight_layer_1", "dense_1"]


def test_a_file_that_is_not_keras_weights_is_refused(tmp_path):
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        f["a"] = np.zeros(3)
    with pytest.raises(WeightsMismatchError, match="not a TF-Keras HDF5 weights file"):
        load_legacy_weights(build_timnet((30, 39), 7, dilations=2), str(path))


def test_each_fold_file_fills_its_own_ensemble_member(tmp_path, rng):
    from timnet_keras.model.backbone import TimnetBackbone
    from timnet_keras.model.classifier import TimnetClassifier

    single = build_timnet((30, 39), 4, dilations=2)
    paths = []
    for k in range(2):
        single.set_weights([rng.normal(size=w.shape).astype("float32") for w in single.get_weights()])
        paths.append(str(tmp_path / fold_weights_name(2, k + 1)))
        save_legacy_weights(single, paths[-1])
    ensemble = TimnetClassifier(TimnetBackbone(frames=30, num_blocks=2), 4, ensemble_size=2)
    for k, path in enumerate(paths):
        load_legacy_weights(ensemble, path, member=k)
    x = rng.normal(size=(3, 30, 39)).astype("float32")
    expected = []
    for path in paths:
        load_legacy_weights(single, path)
        expected.append(np.asarray(single.predict(x, verbose=0)))
    np.testing.assert_allclose(ensemble.predict(x, verbose=0), np.mean(expected, axis=0), rtol=1e-5, atol=1e-6)
