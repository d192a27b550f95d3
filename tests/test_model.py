"""The TIM-Net model: size, causality of each branch, variants, saving. Also run with KERAS_BACKEND=jax."""
import keras
import numpy as np
import pytest

from timnet_keras.model import VARIANTS, backbone_of, build_backbone, build_timnet, dilation_rates


@pytest.fixture(scope="module")
def timnet():
    return build_timnet((188, 39), 7)


def test_emodb_model_has_exactly_106992_parameters(timnet):
    assert timnet.count_params() == 106_992


def test_dilations_double_block_by_block_and_iemocap_gets_ten():
    assert dilation_rates(8) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert len(dilation_rates(10)) == 10
    assert sum(1 for l in build_timnet((300, 39), 4, dilations=10).layers if l.name.startswith("forward_block_")) == 10


def _branch_outputs(model, name, x):
    return np.asarray(keras.Model(model.input, model.get_layer(name).output)(x, training=False))


def test_forward_branch_never_sees_the_future(timnet, rng):
    x = rng.normal(size=(1, 188, 39)).astype("float32")
    changed = x.copy()
    changed[:, 100:] += 3.0
    for j in (1, 4, 8):
        a, b = _branch_outputs(timnet, f"forward_block_{j}", x), _branch_outputs(timnet, f"forward_block_{j}", changed)
        np.testing.assert_array_equal(a[:, :100], b[:, :100])


def test_backward_branch_sees_the_future(timnet, rng):
    # The backward branch runs on the reversed sequence: its step s is frame 187 - s,
    # and it summarises frames >= that frame. Changing frames < 100 must leave its
    # first 88 steps (frames 187..100) untouched: the mirror of the forward branch.
    x = rng.normal(size=(1, 188, 39)).astype("float32")
    changed = x.copy()
    changed[:, :100] += 3.0
    for j in (1, 4, 8):
        a, b = _branch_outputs(timnet, f"backward_block_{j}", x), _branch_outputs(timnet, f"backward_block_{j}", changed)
        np.testing.assert_array_equal(a[:, :88], b[:, :88])
        assert not np.allclose(a[:, 88:], b[:, 88:])


@pytest.mark.parametrize("j", [1, 3, 5])
def test_receptive_field_of_block_j_is_what_the_dilations_give(j, rng):
    # Block j stacks two kernel-2 convs per block at dilations 1..2**(j-1):
    # it sees 1 + 2 * (2**j - 1) frames back to front. tanh instead of ReLU, so no
    # dead unit can hide the single path from the field's oldest frame.
    keras.utils.set_random_seed(0)
    timnet = build_timnet((188, 39), 7, activation="tanh")
    field = 1 + 2 * sum(dilation_rates(j))
    x = rng.normal(size=(1, 188, 39)).astype("float32")
    t = 150
    changed = x.copy()
    changed[:, t - field + 1] += 1.0
    a, b = _branch_outputs(timnet, f"forward_block_{j}", x), _branch_outputs(timnet, f"forward_block_{j}", changed)
    assert np.any(a[:, t] != b[:, t])
    further = x.copy()
    further[:, t - field] += 1.0
    np.testing.assert_array_equal(a[:, t], _branch_outputs(timnet, f"forward_block_{j}", further)[:, t])


def test_model_builds_for_any_length_and_class_count(rng):
    model = build_timnet((None, 39), 5, dilations=4)
    for frames in (17, 64, 301):
        assert model(rng.normal(size=(2, frames, 39)).astype("float32")).shape == (2, 5)


def test_backbone_outputs_the_fused_representation(timnet):
    assert backbone_of(timnet).output.shape == (None, 39)
    assert build_backbone((188, 39)).count_params() == 106_992 - (39 * 7 + 7)


def test_keras_file_round_trip_gives_identical_predictions(timnet, tmp_path, rng):
    x = rng.normal(size=(4, 188, 39)).astype("float32")
    path = tmp_path / "timnet.keras"
    timnet.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(timnet(x)), np.asarray(loaded(x)))


@pytest.mark.parametrize("variant,params", [("timnet", 106_992), ("tcn", 53_632), ("no_bd", 53_640),
                                            ("no_ms", 106_984), ("no_df", 106_984)])
def test_each_ablation_has_its_parameter_count(variant, params):
    assert build_timnet((188, 39), 7, variant=variant).count_params() == params


def test_ablations_differ_where_they_should():
    names = lambda v: {l.name for l in build_timnet((64, 39), 4, variant=v).layers}
    assert not any(n.startswith("backward") for n in names("no_bd"))
    assert "fusion" in names("no_df") and not build_timnet((64, 39), 4, variant="no_df").get_layer("fusion").weights
    assert not build_timnet((64, 39), 4, variant="no_ms").get_layer("fusion").weights
    assert type(build_timnet((64, 39), 4, variant="tcn").get_layer("forward_block_1")).__name__ == "ResidualTCNBlock"
    assert set(VARIANTS) == {"timnet", "tcn", "no_bd", "no_ms", "no_df"}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_trains_a_step(variant, rng):
    model = build_timnet((32, 39), 3, dilations=3, variant=variant)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = rng.normal(size=(8, 32, 39)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 8)]
    before = [np.asarray(w).copy() for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.array_equal(b, np.asarray(w)) for b, w in zip(before, model.trainable_weights))
