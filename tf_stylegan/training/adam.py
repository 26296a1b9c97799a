"""Adam as TensorFlow's fused ``ResourceApplyAdam`` kernel."""

import keras
import tensorflow as tf
from keras import ops


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable (inside a distributed update: this replica's)."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam whose update of each variable is one ``ResourceApplyAdam`` kernel, the update of the
    official code's ``tf.train.AdamOptimizer``: the same formula as Keras' (``alpha = lr * sqrt(1 - b2^t) /
    (1 - b1^t)``, ``var -= alpha * m / (sqrt(v) + epsilon)``) in one pass over the variable and its
    moments instead of about a dozen elementwise ops with their intermediates. The variables, and so the
    checkpoints, are Keras'. Not for ``amsgrad``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("FusedAdam has no amsgrad variant (ResourceApplyAdam has none)")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        local_step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[index]), v=_handle(self._velocities[index]),
            beta1_power=ops.power(beta_1, local_step), beta2_power=ops.power(beta_2, local_step),
            lr=ops.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=ops.cast(self.epsilon, dtype), grad=ops.cast(gradient, dtype))
