"""Mixed precision: Keras dtype policies for the trained networks and dynamic loss scaling.

``train.mixed_precision = 'float16'`` or ``'bfloat16'`` builds G and D with the Keras policy
``mixed_float16`` / ``mixed_bfloat16``: variables and optimizer state stay float32, the layers
compute in the narrow type. What needs the range or precision of float32 stays there: the mapping
network (W space and ``w_avg``), the statistics of instance norm, pixel norm and minibatch stddev,
the losses and penalties, and the moving-average generator Gs. float16 needs loss scaling, as the
official NVlabs optimizer's (``dnnlib/tflib/optimizer.py``): a per-optimizer scale 2**v, v starting
at 6, +0.0005 after each finite update, -1 after an update skipped for non-finite gradients.
"""

import contextlib

import keras
import tensorflow as tf

MIXED_PRECISION_POLICIES = {None: "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def policy_name(mixed_precision):
    """The Keras dtype policy of ``mixed_precision`` (None, 'float16' or 'bfloat16')."""
    if mixed_precision not in MIXED_PRECISION_POLICIES:
        raise ValueError(f"mixed_precision={mixed_precision!r}: use None, 'float16' or 'bfloat16'")
    return MIXED_PRECISION_POLICIES[mixed_precision]


@contextlib.contextmanager
def dtype_policy(name):
    """Layers created inside use the Keras dtype policy ``name``; the previous global policy is
    restored on exit."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class DynamicLossScale:
    """The loss scale 2**v of one optimizer, as the official optimizer's loss scaling.

    ``scale(loss)`` before the gradient, ``unscale(gradients)`` after it, ``update(skipped)`` once the
    update was applied or skipped. ``v`` is a variable (checkpointed); in a replica context every
    replica assigns the same value, so the first replica's assignment is kept.
    """

    def __init__(self, name, initial_log2=6.0, increment=0.0005, decrement=1.0):
        self.increment = float(increment)
        self.decrement = float(decrement)
        self.log2_scale = tf.Variable(float(initial_log2), trainable=False, name=f"{name}_loss_scale_log2",
                                      aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def scale(self, loss):
        return loss * tf.pow(2.0, self.log2_scale)

    def unscale(self, gradients):
        inverse = tf.pow(2.0, -self.log2_scale)
        return [None if g is None else g * tf.cast(inverse, g.dtype) for g in gradients]

    def update(self, skipped):
        """``skipped``: 1.0 when the update was skipped for non-finite gradients, else 0.0."""
        self.log2_scale.assign_add(self.increment - skipped * (self.increment + self.decrement))
