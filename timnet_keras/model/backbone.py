"""`TimnetBackbone`: MFCC sequence in, TIM-Net's fused representation out.

The backbone is the learned representation (KerasHub's split): the input of
the classifier's Dense layer, what t-SNE plots and cross-corpus work look at.
It is a functional `keras.Model` subclass, so it saves, loads and nests like
any Keras model, and rebuilds from `get_config`.
"""
import keras

from timnet_keras.config import DEFAULT_NUM_BLOCKS, MODEL_VARIANTS, N_MFCC, TRAINING_DEFAULTS
from timnet_keras.model.layers import (
    PACKAGE,
    CausalConv1D,
    ResidualTCNBlock,
    ScaleAverage,
    TemporalAwareBlock,
    TimeReverse,
    WeightLayer,
)

# The paper's Table 3 ablations, by the names `--model` takes.
VARIANTS = MODEL_VARIANTS  # config.py: the one table of variants


def dilation_rates(num_blocks, stacks=1):
    """The authors' dilations: 1, 2, 4, ... 2**(num_blocks-1), repeated per stack.

    Example:
        >>> dilation_rates(4)
        [1, 2, 4, 8]
    """
    return [2**i for _ in range(stacks) for i in range(num_blocks)]


def receptive_field(num_blocks, kernel_size=2, stacks=1):
    """Frames one output step of the last block sees: two causal convs per block.

    Example:
        >>> receptive_field(8)  # TIM-Net on EMODB: more than its 188 frames
        511
    """
    return 1 + 2 * (kernel_size - 1) * sum(dilation_rates(num_blocks, stacks))


@keras.saving.register_keras_serializable(package=PACKAGE)
class TimnetBackbone(keras.Model):
    """TIM-Net's backbone: (frames, n_mfcc) MFCCs -> the fused representation (filters,).

    Each direction starts with a 1x1 causal convolution, then `num_blocks`
    Temporal-Aware Blocks at dilations 1, 2, 4, ...; after block j the two
    directions are added and averaged over time (scale j); a weight layer
    fuses the scales. `variant` names the paper's Table 3 ablations.

    Args:
        frames: input length in frames; None accepts any length.
        n_mfcc: coefficients per frame (39).
        num_blocks: Temporal-Aware Blocks per direction (8; 10 for IEMOCAP).
        filters: channels of every convolution (39, the authors').
        kernel_size: taps of the block convolutions (2).
        stacks: how many times the dilation sequence repeats (1).
        dropout_rate: SpatialDropout1D rate inside the blocks (0.1).
        activation: activation inside the blocks ("relu").
        variant: one of `VARIANTS`.

    Example:
        >>> backbone = TimnetBackbone(frames=188)
        >>> backbone.output.shape, backbone.count_params(), backbone.receptive_field
        ((None, 39), 106712, 511)
    """

    def __init__(
        self,
        frames=None,
        n_mfcc=N_MFCC,
        num_blocks=DEFAULT_NUM_BLOCKS,
        filters=TRAINING_DEFAULTS["filter_size"],
        kernel_size=TRAINING_DEFAULTS["kernel_size"],
        stacks=TRAINING_DEFAULTS["stack_size"],
        dropout_rate=TRAINING_DEFAULTS["dropout"],
        activation=TRAINING_DEFAULTS["activation"],
        variant="timnet",
        **kwargs,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        block_args = dict(filters=filters, kernel_size=kernel_size, dropout_rate=dropout_rate, activation=activation)
        inputs = keras.Input(shape=(frames, n_mfcc), name="mfcc")
        bidirectional = variant not in ("no_bd", "tcn")
        block_class = ResidualTCNBlock if variant == "tcn" else TemporalAwareBlock

        forward = CausalConv1D(filters, 1, name="forward_input_conv")(inputs)
        if bidirectional:
            backward = CausalConv1D(filters, 1, name="backward_input_conv")(TimeReverse(name="reverse")(inputs))
        scales, skips = [], []
        rates = dilation_rates(num_blocks, stacks)
        for j, rate in enumerate(rates, start=1):
            forward = block_class(rate, name=f"forward_block_{j}", **block_args)(forward)
            if variant == "tcn":  # keras-tcn: the stream feeds the next block, the skips are summed
                forward, skip = forward
                skips.append(skip)
                continue
            merged = forward
            if bidirectional:
                backward = block_class(rate, name=f"backward_block_{j}", **block_args)(backward)
                merged = keras.layers.Add(name=f"merge_{j}")([forward, backward])
            scales.append(keras.layers.GlobalAveragePooling1D(keepdims=True, name=f"scale_{j}")(merged))

        if variant == "tcn":
            summed = keras.layers.Add(name="skip_sum")(skips) if len(skips) > 1 else skips[0]
            scales.append(keras.layers.GlobalAveragePooling1D(keepdims=True, name=f"scale_{len(rates)}")(summed))
        if variant in ("tcn", "no_ms"):
            fused = keras.layers.Flatten(name="fusion")(scales[-1])
        else:
            stacked = keras.layers.Concatenate(axis=1, name="scales")(scales) if len(scales) > 1 else scales[0]
            fused = (ScaleAverage(name="fusion") if variant == "no_df" else WeightLayer(name="fusion"))(stacked)
        kwargs.setdefault("name", f"{variant}_backbone")
        super().__init__(inputs=inputs, outputs=fused, **kwargs)
        self.frames, self.n_mfcc, self.num_blocks, self.filters = frames, n_mfcc, num_blocks, filters
        self.kernel_size, self.stacks, self.dropout_rate = kernel_size, stacks, dropout_rate
        self.activation, self.variant = activation, variant

    @property
    def receptive_field(self):
        """Frames of input one step of the last block sees (keras-tcn's figure)."""
        return receptive_field(self.num_blocks, self.kernel_size, self.stacks)

    @property
    def bidirectional(self):
        return self.variant not in ("no_bd", "tcn")

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "frames": self.frames,
            "n_mfcc": self.n_mfcc,
            "num_blocks": self.num_blocks,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "stacks": self.stacks,
            "dropout_rate": self.dropout_rate,
            "activation": self.activation,
            "variant": self.variant,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)

    def weighted_layers_in_creation_order(self):
        """The weight-holding layers in the order the authors' code creates them.

        Forward 1x1 conv, backward 1x1 conv, then per dilation the forward
        block's (conv, BN, conv, BN) and the backward block's, then the fusion
        weights. Legacy HDF5 weights are matched on this.
        """
        names = {layer.name for layer in self.layers}
        ordered = [self.get_layer(n) for n in ("forward_input_conv", "backward_input_conv") if n in names]
        for j in range(1, len(dilation_rates(self.num_blocks, self.stacks)) + 1):
            for direction in ("forward", "backward"):
                if f"{direction}_block_{j}" in names:
                    block = self.get_layer(f"{direction}_block_{j}")
                    ordered += [block.conv_1, block.norm_1, block.conv_2, block.norm_2]
        ordered.append(self.get_layer("fusion"))
        return [layer for layer in ordered if layer.weights]
