"""TIM-Net's layers, written on keras.ops so they run on TensorFlow and JAX.

Every layer is a registered, serializable `keras.layers.Layer` with
`get_config`, so models holding them save and load as `.keras` files.
"""
import keras
from keras import ops

from timnet_keras.model.padding import time_mask_like

PACKAGE = "timnet_keras"


@keras.saving.register_keras_serializable(package=PACKAGE)
class CausalConv1D(keras.layers.Layer):
    """Dilated causal 1-D convolution: output[t] sees input[<= t] only.

    Holds the same variables as `keras.layers.Conv1D(padding="causal")`
    (kernel (kernel_size, in, filters), bias (filters,)), so the authors'
    weights drop in unchanged. It computes the convolution as one matrix
    product over the stacked, shifted taps instead of a dilated convolution
    kernel, which is what makes a CPU training step fast.

    Args:
        filters: number of output channels.
        kernel_size: taps; tap k looks (kernel_size - 1 - k) * dilation_rate frames back.
        dilation_rate: spacing of the taps in frames.

    Example:
        >>> import numpy as np
        >>> conv = CausalConv1D(39, kernel_size=2, dilation_rate=4)
        >>> tuple(conv(np.zeros((8, 188, 39), "float32")).shape)
        (8, 188, 39)
    """

    def __init__(self, filters, kernel_size=1, dilation_rate=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, channels, self.filters),
            initializer="glorot_uniform",
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, x):
        k, d = self.kernel_size, self.dilation_rate
        if k == 1:
            return ops.matmul(x, self.kernel[0]) + self.bias
        steps = ops.shape(x)[1]
        padded = ops.pad(x, [[0, 0], [(k - 1) * d, 0], [0, 0]])
        taps = [padded[:, i * d : i * d + steps, :] for i in range(k)]
        stacked = ops.concatenate(taps, axis=-1)
        kernel = ops.reshape(self.kernel, (k * self.kernel.shape[1], self.filters))
        return ops.matmul(stacked, kernel) + self.bias

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, kernel_size=self.kernel_size, dilation_rate=self.dilation_rate
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class TemporalAwareBlock(keras.layers.Layer):
    """TIM-Net's Temporal-Aware Block: a sigmoid gate over the block's input.

    Two sub-blocks (causal dilated conv -> BatchNorm -> activation ->
    SpatialDropout1D); the output is input * sigmoid(second sub-block), so
    the block re-weights frames instead of adding a residual.

    Args:
        dilation_rate: the block's dilation (1, 2, 4, ... in TIM-Net).
        filters: channels of both convolutions; the input must have as many.
        kernel_size: taps of both convolutions.
        dropout_rate: SpatialDropout1D rate (whole channels are dropped).
        activation: activation after each BatchNorm.

    Example:
        >>> import numpy as np
        >>> block = TemporalAwareBlock(dilation_rate=2)
        >>> tuple(block(np.zeros((4, 188, 39), "float32")).shape)
        (4, 188, 39)
    """

    def __init__(
        self, dilation_rate, filters=39, kernel_size=2, dropout_rate=0.1, activation="relu", **kwargs
    ):
        super().__init__(**kwargs)
        self.dilation_rate = int(dilation_rate)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dropout_rate = float(dropout_rate)
        self.activation = activation
        # Creation order conv, BN, conv, BN is the authors' (weights are matched on it).
        self.conv_1 = CausalConv1D(filters, kernel_size, dilation_rate, name="conv_1")
        self.norm_1 = keras.layers.BatchNormalization(name="norm_1")
        self.conv_2 = CausalConv1D(filters, kernel_size, dilation_rate, name="conv_2")
        self.norm_2 = keras.layers.BatchNormalization(name="norm_2")
        self.drop_1 = keras.layers.SpatialDropout1D(dropout_rate)
        self.drop_2 = keras.layers.SpatialDropout1D(dropout_rate)
        self._activation = keras.activations.get(activation)

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise ValueError(
                f"TemporalAwareBlock with {self.filters} filters needs {self.filters} input "
                f"channels, got {input_shape[-1]}"
            )
        self.conv_1.build(input_shape)
        self.norm_1.build(input_shape)
        self.conv_2.build(input_shape)
        self.norm_2.build(input_shape)

    def transform(self, x, training=None):
        """The two sub-blocks: what the gate (or a residual) is made of.

        In a training step over a padded batch, BatchNormalization's batch
        statistics leave the padding rows out (`padding.real_rows`).
        """
        h = self.conv_1(x)
        h = self.drop_1(self._activation(self._normalize(self.norm_1, h, training)), training=training)
        h = self.conv_2(h)
        return self.drop_2(self._activation(self._normalize(self.norm_2, h, training)), training=training)

    @staticmethod
    def _normalize(norm, h, training):
        mask = time_mask_like(h) if training else None
        return norm(h, training=training) if mask is None else norm(h, training=training, mask=mask)

    def call(self, x, training=None):
        return x * ops.sigmoid(self.transform(x, training=training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            dilation_rate=self.dilation_rate,
            filters=self.filters,
            kernel_size=self.kernel_size,
            dropout_rate=self.dropout_rate,
            activation=self.activation,
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualTCNBlock(TemporalAwareBlock):
    """A standard TCN residual block, the `tcn` ablation: returns [activation(x + F(x)), F(x)].

    Definition: Bai et al. (2018) as keras-tcn implements it. F is the same
    two sub-blocks as a Temporal-Aware Block (dilated causal conv, BatchNorm,
    activation, SpatialDropout1D); the activation follows the sum, which
    feeds the next block; F(x) is the block's skip output, and keras-tcn's
    TCN (use_skip_connections=True, its default) outputs the sum of the
    blocks' skip outputs. The skip path of the sum is the identity: the
    input already has `filters` channels (the backbone's 1x1 input
    convolution stands where keras-tcn puts its shape-matching 1x1 conv).
    Source: the paper's Section 3.3, "a TCN that also utilizes DC Conv".
    """

    def call(self, x, training=None):
        skip = self.transform(x, training=training)
        return [self._activation(x + skip), skip]

    def compute_output_shape(self, input_shape):
        return [input_shape, input_shape]


@keras.saving.register_keras_serializable(package=PACKAGE)
class WeightLayer(keras.layers.Layer):
    """Dynamic receptive-field fusion: g = sum_j w_j g_j over the n scales.

    Learns one weight per scale (kernel (n, 1), initializer "uniform" as the
    authors'), so the network chooses which receptive fields matter.
    Input (batch, n, channels) -> output (batch, channels).

    Example:
        >>> import numpy as np
        >>> tuple(WeightLayer()(np.ones((2, 8, 39), "float32")).shape)
        (2, 39)
    """

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[1], 1), initializer="uniform"
        )

    def call(self, x):
        return ops.squeeze(ops.matmul(ops.transpose(x, (0, 2, 1)), self.kernel), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package=PACKAGE)
class TimeReverse(keras.layers.Layer):
    """Reverses the time axis: the backward branch's view of the sequence."""

    def call(self, x):
        return ops.flip(x, axis=1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaleAverage(keras.layers.Layer):
    """Average fusion of the scales, the `no_df` ablation: g = s * mean_j g_j.

    Definition: the paper's Section 3.3, w/o DF uses "the average fusion"
    of the same scales instead of the learned per-scale weights. The one
    scalar s adds nothing the model can express (the Dense layer after it
    absorbs any scale); it starts the representation at TIM-Net's scale
    instead of the raw MFCC scale, with which a plain mean begins at a loss
    7 times TIM-Net's (REPRODUCTION.md, notes on Table 3). s starts at 0.05,
    the bound of WeightLayer's uniform weights, and not at a draw from them:
    one draw near zero (0.0017 for seed 47 on JAX) starts the representation
    at zero and the loss stays at ln(classes) for epochs.
    (batch, n, c) -> (batch, c).
    """

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer=keras.initializers.Constant(0.05))

    def call(self, x):
        return self.scale * ops.mean(x, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package=PACKAGE)
class UtteranceNormalisation(keras.layers.Layer):
    """`normalise.utterance_normalised` inside a graph: each MFCC matrix standardised over its own real frames.

    What an exported model of a run trained with `--normalise utterance` puts before the classifier,
    so its input stays the raw MFCC matrix. Real frames are all but the runs of silent frames (every
    coefficient after the first at most `normalise.SILENCE_TOLERANCE` of the first: the padding) at
    either end, found with cumulative sums (which TFLite and ONNX both have); the same affine map is
    applied to every frame. It computes in float32 where the library computes in float64: the two
    agree to round-off (tests/test_normalise.py).

    Example:
        >>> import numpy as np
        >>> x = np.array([[[-800.0, 0, 0], [-300.0, 10.0, 2.0], [-100.0, 30.0, 2.0]]], "float32")
        >>> np.asarray(UtteranceNormalisation()(x))[0].round(2).tolist()
        [[-6.0, -2.0, -2.0], [-1.0, -1.0, 0.0], [1.0, 1.0, 0.0]]
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, x):
        from timnet_keras.features.normalise import MIN_STD, SILENCE_TOLERANCE

        x = ops.cast(x, "float32")
        silent = ops.max(ops.abs(x[..., 1:]), axis=-1) <= SILENCE_TOLERANCE * ops.abs(x[..., 0])
        sounding = 1.0 - ops.cast(silent, "float32")  # (batch, frames)
        before = ops.cumsum(sounding, axis=1)  # sounding frames up to and including each frame
        after = ops.sum(sounding, axis=1, keepdims=True) - before + sounding  # ... from each frame on
        real = ops.cast(before > 0, "float32") * ops.cast(after > 0, "float32")
        none_real = ops.cast(ops.sum(real, axis=1, keepdims=True) == 0, "float32")
        mask = ops.expand_dims(ops.maximum(real, none_real), -1)  # a silent matrix counts all its frames
        count = ops.sum(mask, axis=1, keepdims=True)
        mean = ops.sum(x * mask, axis=1, keepdims=True) / count
        std = ops.sqrt(ops.sum(ops.square(x - mean) * mask, axis=1, keepdims=True) / count)
        return (x - mean) / ops.where(std > MIN_STD, std, ops.ones_like(std))

    def compute_output_shape(self, input_shape):
        return input_shape
