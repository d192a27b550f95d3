"""Where a network's activations grow or shrink: the scale at every stage of a classifier.

The authors feed raw MFCCs (the 0th coefficient is in the hundreds); what a
variant does to that scale on its way to the softmax decides whether it can
train. `activation_scales` measures it on a batch, stage by stage.
"""
import keras
import numpy as np


def _stage_names(backbone):
    names = [layer.name for layer in backbone.layers]
    stages = ["forward_input_conv"]
    stages += [n for n in names if n.startswith("forward_block_")]
    stages += [n for n in names if n == "skip_sum" or n.startswith("scale_")]
    return stages + ["fusion"]


def activation_scales(classifier, x, training=True):
    """[(stage, root-mean-square)] from the input to the logits, as a training step sees them.

    In training mode BatchNormalization uses the batch's statistics, as the
    first steps of training do; at initialisation its moving statistics are
    the identity, so inference mode would show unnormalised scales.

    Stages: the input, the forward 1x1 convolution, each forward block (a
    TCN block's residual stream), the TCN's summed skip outputs, each pooled
    scale, the fused representation, and the head's logits.

    Example:
        >>> from timnet_keras.model.classifier import build_timnet
        >>> scales = activation_scales(build_timnet((32, 39), 4, dilations=2), np.ones((2, 32, 39), "float32"))
        >>> [stage for stage, _ in scales][:3], scales[-1][0]
        (['input', 'forward_input_conv', 'forward_block_1'], 'logits')
    """
    backbone, head = classifier.members[0]
    stages = _stage_names(backbone)
    first = lambda output: output[0] if isinstance(output, (list, tuple)) else output  # a TCN block: [stream, skip]
    probe = keras.Model(backbone.input, [first(backbone.get_layer(name).output) for name in stages])
    outputs = [np.asarray(o) for o in probe(x, training=training)]
    kernel, bias = (np.asarray(w) for w in head.weights)
    logits = outputs[-1] @ kernel + bias
    rms = lambda a: float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))
    return [("input", rms(x))] + [(name, rms(o)) for name, o in zip(stages, outputs)] + [("logits", rms(logits))]
