"""The layers: the authors' maths, causality, serialisation. Also run with KERAS_BACKEND=jax."""
import keras
import numpy as np
import pytest

from timnet_keras.model.layers import CausalConv1D, TemporalAwareBlock, TimeReverse, WeightLayer

pytestmark = pytest.mark.both_backends


@pytest.mark.parametrize("kernel_size,dilation", [(1, 1), (2, 1), (2, 4), (3, 2)])
def test_causal_conv_equals_keras_causal_conv1d(rng, kernel_size, dilation):
    x = rng.normal(size=(3, 20, 5)).astype("float32")
    ours = CausalConv1D(4, kernel_size, dilation)
    reference = keras.layers.Conv1D(4, kernel_size, dilation_rate=dilation, padding="causal")
    ours.build(x.shape)
    reference.build(x.shape)
    reference.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), reference(x), rtol=1e-5, atol=1e-5)


def test_causal_conv_output_never_sees_later_frames(rng):
    conv = CausalConv1D(3, 2, 4)
    x = rng.normal(size=(1, 30, 3)).astype("float32")
    changed = x.copy()
    changed[:, 12:] += 5.0
    np.testing.assert_array_equal(np.asarray(conv(x))[:, :12], np.asarray(conv(changed))[:, :12])


def test_temporal_aware_block_gates_its_input_with_a_sigmoid(rng):
    block = TemporalAwareBlock(2, filters=6, dropout_rate=0.0)
    x = rng.normal(size=(2, 16, 6)).astype("float32")
    out = np.asarray(block(x, training=False))
    gate = 1 / (1 + np.exp(-np.asarray(block.transform(x, training=False))))
    np.testing.assert_allclose(out, x * gate, rtol=1e-5, atol=1e-6)


def test_temporal_aware_block_is_causal_and_keeps_shape(rng):
    block = TemporalAwareBlock(4, filters=6)
    x = rng.normal(size=(2, 40, 6)).astype("float32")
    changed = x.copy()
    changed[:, 25:] = 0
    a, b = np.asarray(block(x)), np.asarray(block(changed))
    assert a.shape == x.shape
    np.testing.assert_array_equal(a[:, :25], b[:, :25])
    assert not np.allclose(a[:, 25:], b[:, 25:])


def test_temporal_aware_block_refuses_other_channel_counts():
    with pytest.raises(ValueError, match="needs 39 input channels"):
        TemporalAwareBlock(1)(np.zeros((1, 10, 20), "float32"))


def test_block_has_the_authors_parameter_count():
    block = TemporalAwareBlock(1)
    block.build((None, 188, 39))
    # two convs of 2*39*39 + 39 and two BatchNorms of 4*39
    assert block.count_params() == 2 * (2 * 39 * 39 + 39) + 2 * 4 * 39


def test_weight_layer_is_a_weighted_sum_over_scales(rng):
    layer = WeightLayer()
    x = rng.normal(size=(2, 8, 5)).astype("float32")
    layer.build(x.shape)
    w = rng.normal(size=(8, 1)).astype("float32")
    layer.set_weights([w])
    np.testing.assert_allclose(layer(x), np.einsum("bnc,n->bc", x, w[:, 0]), rtol=1e-5, atol=1e-5)


def test_weight_layer_starts_uniform_in_the_authors_range():
    layer = WeightLayer()
    layer.build((None, 8, 39))
    kernel = np.asarray(layer.kernel)
    assert kernel.shape == (8, 1) and (np.abs(kernel) <= 0.05).all()


def test_time_reverse_flips_time_only(rng):
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    np.testing.assert_array_equal(TimeReverse()(x), x[:, ::-1])


@pytest.mark.parametrize("layer", [
    CausalConv1D(7, 2, 8), TemporalAwareBlock(16, filters=12, kernel_size=3, dropout_rate=0.2, activation="elu"),
    WeightLayer(), TimeReverse(),
])
def test_layers_round_trip_through_their_config(layer):
    config = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()
