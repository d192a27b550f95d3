"""TimnetBackbone: size, causality of each branch, receptive field, variants, config. Also run with KERAS_BACKEND=jax."""
import keras
import numpy as np
import pytest

from timnet_keras.model.backbone import VARIANTS, TimnetBackbone, dilation_rates, receptive_field

pytestmark = pytest.mark.both_backends


@pytest.fixture(scope="module")
def backbone():
    return TimnetBackbone(frames=188)


def _block_outputs(backbone, name, x):
    return np.asarray(keras.Model(backbone.input, backbone.get_layer(name).output)(x, training=False))


def test_emodb_backbone_has_the_authors_parameters_less_the_head(backbone):
    assert backbone.count_params() == 106_992 - (39 * 7 + 7)
    assert backbone.output.shape == (None, 39)


def test_dilations_double_block_by_block_and_iemocap_depth_builds_ten_blocks():
    assert dilation_rates(8) == [1, 2, 4, 8, 16, 32, 64, 128]
    deep = TimnetBackbone(frames=300, num_blocks=10)
    assert sum(1 for l in deep.layers if l.name.startswith("forward_block_")) == 10


def test_forward_branch_never_sees_the_future(backbone, rng):
    x = rng.normal(size=(1, 188, 39)).astype("float32")
    changed = x.copy()
    changed[:, 100:] += 3.0
    for j in (1, 4, 8):
        a, b = _block_outputs(backbone, f"forward_block_{j}", x), _block_outputs(backbone, f"forward_block_{j}", changed)
        np.testing.assert_array_equal(a[:, :100], b[:, :100])


def test_backward_branch_sees_the_future(backbone, rng):
    # The backward branch runs on the reversed sequence: its step s is frame 187 - s,
    # and it summarises frames >= that frame. Changing frames < 100 must leave its
    # first 88 steps (frames 187..100) untouched: the mirror of the forward branch.
    x = rng.normal(size=(1, 188, 39)).astype("float32")
    changed = x.copy()
    changed[:, :100] += 3.0
    for j in (1, 4, 8):
        a, b = _block_outputs(backbone, f"backward_block_{j}", x), _block_outputs(backbone, f"backward_block_{j}", changed)
        np.testing.assert_array_equal(a[:, :88], b[:, :88])
        assert not np.allclose(a[:, 88:], b[:, 88:])


@pytest.mark.parametrize("num_blocks", [1, 3, 5])
def test_receptive_field_is_exactly_what_the_backbone_sees(num_blocks, rng):
    # tanh instead of ReLU, so no dead unit can hide the single path from the field's oldest frame.
    keras.utils.set_random_seed(0)
    backbone = TimnetBackbone(frames=188, num_blocks=num_blocks, activation="tanh")
    field = backbone.receptive_field
    assert field == receptive_field(num_blocks) == 1 + 2 * (2**num_blocks - 1)
    last = f"forward_block_{num_blocks}"
    x = rng.normal(size=(1, 188, 39)).astype("float32")
    t = 150
    inside, outside = x.copy(), x.copy()
    inside[:, t - field + 1] += 1.0
    outside[:, t - field] += 1.0
    a = _block_outputs(backbone, last, x)
    assert np.any(a[:, t] != _block_outputs(backbone, last, inside)[:, t])
    np.testing.assert_array_equal(a[:, t], _block_outputs(backbone, last, outside)[:, t])


def test_a_backbone_without_frames_takes_any_length(rng):
    backbone = TimnetBackbone(num_blocks=4)
    for frames in (17, 64, 301):
        assert backbone(rng.normal(size=(2, frames, 39)).astype("float32")).shape == (2, 39)


def test_backbone_rebuilds_from_its_config_with_the_same_weights(rng):
    backbone = TimnetBackbone(frames=50, num_blocks=3, filters=39, dropout_rate=0.2, variant="no_bd")
    clone = TimnetBackbone.from_config(backbone.get_config())
    clone.set_weights(backbone.get_weights())
    x = rng.normal(size=(2, 50, 39)).astype("float32")
    np.testing.assert_array_equal(np.asarray(backbone(x)), np.asarray(clone(x)))
    assert clone.get_config() == backbone.get_config()


@pytest.mark.parametrize("variant,params", [("timnet", 106_712), ("tcn", 53_352), ("no_bd", 53_360),
                                            ("no_ms", 106_704), ("no_df", 106_705)])
def test_each_ablation_has_its_parameter_count(variant, params):
    assert TimnetBackbone(frames=188, variant=variant).count_params() == params


def test_ablations_differ_where_they_should():
    layers = lambda v: {l.name: l for l in TimnetBackbone(frames=64, num_blocks=3, variant=v).layers}
    assert not any(n.startswith("backward") for n in layers("no_bd"))
    assert not any(n.startswith("backward") for n in layers("tcn"))
    assert [w.shape for w in layers("no_df")["fusion"].weights] == [()]  # one scalar on the mean, no per-scale weights
    assert not layers("no_ms")["fusion"].weights
    assert layers("timnet")["fusion"].weights
    assert set(VARIANTS) == {"timnet", "tcn", "no_bd", "no_ms", "no_df"}


def test_an_unknown_variant_is_refused_by_name():
    with pytest.raises(ValueError, match="choose one of timnet, tcn"):
        TimnetBackbone(variant="lstm")


@pytest.fixture(scope="module")
def first_epochs_of_every_variant():
    """Each variant trained 2 epochs on DEMO with the same seed and data: {variant: [epoch mean loss]}."""
    from timnet_keras.features.extract import demo_features
    from timnet_keras.runs.run_config import ModelConfig, TrainingConfig
    from timnet_keras.training.sequential import SequentialTrainer

    demo = demo_features(mean_signal_length=22050, n_utterances=32)
    losses = {}
    for variant in VARIANTS:
        config = ModelConfig(frames=demo.x.shape[1], num_classes=len(demo.labels), variant=variant)
        trainer = SequentialTrainer(config, TrainingConfig(epoch=2, batch_size=16), seed=46)
        history, _ = trainer.train_fold(1, demo.x, demo.y)
        losses[variant] = history["loss"]
    return losses


@pytest.mark.jax_pass
@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_trains_from_a_loss_near_timnets_and_the_loss_falls(first_epochs_of_every_variant, variant):
    # Raw MFCCs are in the hundreds: a variant that passes that scale to the softmax starts
    # at a loss of tens (the old tcn: 77 on Emo-DB, no_df: 16; TIM-Net 2.3; REPRODUCTION.md).
    losses = first_epochs_of_every_variant[variant]
    assert np.all(np.isfinite(losses))
    assert losses[0] <= 3 * first_epochs_of_every_variant["timnet"][0], losses
    assert losses[-1] < losses[0], losses
