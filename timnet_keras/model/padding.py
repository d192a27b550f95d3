"""One batch shape per run: padded batches whose padding rows change nothing.

A fold whose training set is not a multiple of the batch size ends every
epoch with a smaller batch, and under XLA every new shape is a new
compilation (seconds each, and memory that stays). Padding that batch to the
batch size keeps one shape. The padding rows carry sample weight 0, so the
loss ("mean_with_sample_weight") and the metrics leave them out; the one
thing a sample weight does not reach is BatchNormalization's batch
statistics, which `real_rows` does: while it is active, the Temporal-Aware
Blocks pass BatchNormalization a mask of the real rows.

Example:
    >>> import numpy as np
    >>> [(i.tolist(), w.tolist()) for i, w in padded_batches(np.array([4, 2, 0, 1, 3]), 2)][-1]
    ([3, 4], [1.0, 0.0])
"""
import contextlib
import threading

import numpy as np
from keras import ops

_state = threading.local()


@contextlib.contextmanager
def real_rows(mask):
    """BatchNormalization inside TIM-Net's blocks takes batch statistics over the rows where `mask` (batch,) holds.

    `None` means every row. A training step sets it while it traces its
    forward pass; outside a training step BatchNormalization uses its moving
    statistics and the mask plays no part.
    """
    previous = getattr(_state, "mask", None)
    _state.mask = mask
    try:
        yield
    finally:
        _state.mask = previous


def time_mask_like(x):
    """The active row mask broadcast over x's (batch, time), as BatchNormalization's `mask` takes it; or None."""
    mask = getattr(_state, "mask", None)
    if mask is None:
        return None
    return ops.broadcast_to(ops.expand_dims(ops.cast(mask, "bool"), 1), ops.shape(x)[:2])


def padded_batches(order, batch_size):
    """Yields (indices, weights) of one epoch: every batch `batch_size` rows, the last padded with weight 0.

    The padding repeats the epoch's first rows: real data, so nothing
    unusual flows through the network, and weight 0 keeps it out of the
    step's numbers. A set smaller than one batch is one padded batch.
    """
    order = np.asarray(order)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        weights = np.ones(batch_size, np.float32)
        missing = batch_size - len(index)
        if missing:
            index = np.concatenate([index, np.resize(order, missing)])
            weights[batch_size - missing :] = 0.0
        yield index, weights


def steps_per_epoch(n_rows, batch_size):
    """Batches one epoch of `n_rows` takes, the last one padded."""
    return -(-n_rows // batch_size)
