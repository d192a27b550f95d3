"""The TIM-Net model: backbone (learned representation) and classifier (task).

The backbone maps MFCCs (frames, 39) to the fused representation g, the
input of the final Dense layer; t-SNE plots and cross-corpus work use it.
The classifier is the backbone plus Dense(softmax), as one flat functional
graph, so `model.get_layer("fusion")` and `.keras` files stay simple.
"""
import keras

from .config import TRAINING_DEFAULTS
from .layers import (
    CausalConv1D,
    ResidualTCNBlock,
    ScaleAverage,
    TemporalAwareBlock,
    TimeReverse,
    WeightLayer,
)

# The paper's Table 3 ablations, by the names `--model` takes.
VARIANTS = {
    "timnet": "TIM-Net: bidirectional, multi-scale, dynamic fusion",
    "tcn": "plain dilated causal TCN (residual blocks), last block pooled",
    "no_bd": "forward branch only (no bidirectional modelling)",
    "no_ms": "last scale only (no multi-scale fusion)",
    "no_df": "plain mean of the scales (no dynamic fusion weights)",
}


def dilation_rates(dilations, stacks=1):
    """The authors' dilations: 1, 2, 4, ... 2**(dilations-1), repeated per stack."""
    return [2**i for _ in range(stacks) for i in range(dilations)]


def build_backbone(
    input_shape,
    filters=TRAINING_DEFAULTS["filter_size"],
    kernel_size=TRAINING_DEFAULTS["kernel_size"],
    dilations=TRAINING_DEFAULTS["dilation_size"],
    stacks=TRAINING_DEFAULTS["stack_size"],
    dropout_rate=TRAINING_DEFAULTS["dropout"],
    activation=TRAINING_DEFAULTS["activation"],
    variant="timnet",
):
    """TIM-Net's backbone: MFCC sequence -> fused representation (filters,).

    Args:
        input_shape: (frames, coefficients); frames may be None for any length.
        filters: channels of every convolution (the authors use 39).
        kernel_size: taps of the block convolutions.
        dilations: number of Temporal-Aware Blocks per direction (8; 10 for IEMOCAP).
        stacks: how many times the dilation sequence repeats.
        dropout_rate: SpatialDropout1D rate inside the blocks.
        activation: activation inside the blocks.
        variant: one of `VARIANTS` (the paper's ablations).

    Example:
        >>> backbone = build_backbone((188, 39))
        >>> backbone.output.shape
        (None, 39)
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    block_args = dict(
        filters=filters, kernel_size=kernel_size, dropout_rate=dropout_rate, activation=activation
    )
    inputs = keras.Input(shape=tuple(input_shape), name="mfcc")
    bidirectional = variant not in ("no_bd", "tcn")
    block_class = ResidualTCNBlock if variant == "tcn" else TemporalAwareBlock

    forward = CausalConv1D(filters, 1, name="forward_input_conv")(inputs)
    if bidirectional:
        backward = CausalConv1D(filters, 1, name="backward_input_conv")(TimeReverse(name="reverse")(inputs))

    scales = []
    for j, rate in enumerate(dilation_rates(dilations, stacks), start=1):
        forward = block_class(rate, name=f"forward_block_{j}", **block_args)(forward)
        merged = forward
        if bidirectional:
            backward = block_class(rate, name=f"backward_block_{j}", **block_args)(backward)
            merged = keras.layers.Add(name=f"merge_{j}")([forward, backward])
        scales.append(keras.layers.GlobalAveragePooling1D(keepdims=True, name=f"scale_{j}")(merged))

    if variant in ("tcn", "no_ms"):
        fused = keras.layers.Flatten(name="fusion")(scales[-1])
    else:
        stacked = keras.layers.Concatenate(axis=1, name="scales")(scales) if len(scales) > 1 else scales[0]
        fusion = ScaleAverage(name="fusion") if variant == "no_df" else WeightLayer(name="fusion")
        fused = fusion(stacked)
    return keras.Model(inputs, fused, name=f"{variant}_backbone")


def build_timnet(input_shape, num_classes, **backbone_args):
    """TIM-Net classifier: backbone + Dense(num_classes, softmax).

    Args:
        input_shape: (frames, coefficients).
        num_classes: number of emotions.
        **backbone_args: see `build_backbone`.

    Example:
        >>> model = build_timnet((188, 39), 7)
        >>> model.count_params()
        106992
    """
    backbone = build_backbone(input_shape, **backbone_args)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(backbone.output)
    variant = backbone_args.get("variant", "timnet")
    return keras.Model(backbone.input, outputs, name=variant)


def backbone_of(model):
    """The representation part of a classifier: its input -> the Dense layer's input."""
    return keras.Model(model.input, model.get_layer("fusion").output, name=f"{model.name}_backbone")


def weighted_layers_in_creation_order(model):
    """The classifier's weight-holding layers in the order the authors' code makes them.

    Forward 1x1 conv, backward 1x1 conv, then per dilation the forward
    block's (conv, BN, conv, BN) and the backward block's, then the fusion
    weights and the Dense layer. Legacy HDF5 weights are matched on this.
    """
    names = [layer.name for layer in model.layers]
    ordered = [model.get_layer(n) for n in ("forward_input_conv", "backward_input_conv") if n in names]
    j = 1
    while f"forward_block_{j}" in names:
        for direction in ("forward", "backward"):
            name = f"{direction}_block_{j}"
            if name in names:
                block = model.get_layer(name)
                ordered += [block.conv_1, block.norm_1, block.conv_2, block.norm_2]
        j += 1
    ordered += [model.get_layer(n) for n in ("fusion", "classifier") if n in names]
    return [layer for layer in ordered if layer.weights]
