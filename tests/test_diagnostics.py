"""Activation scales: the probe sees what a variant does to the raw MFCC scale."""
import keras
import numpy as np

from timnet_keras.model.backbone import TimnetBackbone
from timnet_keras.model.classifier import TimnetClassifier
from timnet_keras.runs.diagnostics import activation_scales


def test_the_gates_shrink_what_the_tcn_residual_stream_keeps(rng):
    x = (70 * rng.normal(size=(16, 64, 39))).astype(np.float32)  # raw-MFCC-like scale
    scales = {}
    for variant in ("timnet", "tcn"):
        keras.utils.set_random_seed(0)
        classifier = TimnetClassifier(TimnetBackbone(frames=64, num_blocks=6, variant=variant), 4)
        scales[variant] = dict(activation_scales(classifier, x))
    assert scales["timnet"]["forward_block_6"] < scales["timnet"]["forward_input_conv"] / 10  # six sigmoid gates
    assert scales["tcn"]["forward_block_6"] > scales["tcn"]["forward_input_conv"] / 2  # x + F(x) keeps the raw scale
    assert scales["tcn"]["skip_sum"] < 20  # but the normalised skip outputs, which the TCN pools, do not
    assert list(scales["timnet"])[0] == "input" and list(scales["timnet"])[-1] == "logits"
