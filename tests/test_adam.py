"""FusedAdam: Keras' Adam computed by TensorFlow's ResourceApplyAdam kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_stylegan.training.adam import FusedAdam


def _train(optimizer_class, strategy, steps=6):
    """Variables and moments after ``steps`` updates with gradients sin(k * variable)."""
    rng = np.random.default_rng(0)
    with strategy.scope():
        variables = [keras.Variable(rng.normal(size=shape).astype(np.float32), name=f"w{i}")
                     for i, shape in enumerate([(3, 3, 4, 5), (5,)])]
        optimizer = optimizer_class(learning_rate=0.01, beta_1=0.5, beta_2=0.99, epsilon=1e-8, name="opt")
        optimizer.build(variables)

    @tf.function
    def step(k):
        def replica_step():
            gradients = [tf.math.sin(variable.value * k) for variable in variables]
            optimizer.apply_gradients(zip(gradients, variables))
        strategy.run(replica_step)

    for k in range(1, steps + 1):
        step(tf.constant(float(k)))
    return optimizer, [np.asarray(v) for v in [*variables, *optimizer._momentums, *optimizer._velocities]]


STRATEGIES = {"default": tf.distribute.get_strategy,
              "mirrored": lambda: tf.distribute.MirroredStrategy(["/cpu:0"])}


@pytest.mark.parametrize("strategy", STRATEGIES.values(), ids=STRATEGIES.keys())
def test_fused_adam_matches_keras_adam(strategy):
    keras_adam, expected = _train(keras.optimizers.Adam, strategy())
    fused, actual = _train(FusedAdam, strategy())
    assert int(fused.iterations.numpy()) == int(keras_adam.iterations.numpy()) == 6
    for want, got in zip(expected, actual):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(actual[0], _train(keras.optimizers.Adam, strategy(), steps=5)[1][0])
    # The same state variables as Keras' Adam: checkpoints of either resume in the other.
    assert [v.path for v in fused.variables] == [v.path for v in keras_adam.variables]


def test_fused_adam_refuses_amsgrad():
    with pytest.raises(ValueError, match="amsgrad"):
        FusedAdam(amsgrad=True)
