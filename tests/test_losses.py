"""tf_stylegan.training.losses against hand-computed numbers and NumPy.

Toy discriminators with analytic input gradients:
  linear     D(x) = <w, x> + b      dD/dx = w           ||dD/dx||^2 = ||w||^2
  quadratic  D(x) = a * ||x||^2     dD/dx = 2 a x       ||dD/dx||^2 = 4 a^2 ||x||^2
softplus values used below: sp(0) = ln 2 = 0.693147, sp(-3) = 0.048587, sp(-0.5) = 0.474077,
sp(2) = 2.126928, sp(-2) = 0.126928, sp(-1) = 0.313262, sp(0.5) = 0.974077, sp(3) = 3.048587,
sp(-4) = 0.018150; sigmoid(-3) = 0.047426, sigmoid(-0.5) = 0.377541.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_stylegan.training import losses

FAKE = np.array([[-2.0], [0.0], [3.0]], np.float32)   # [N, 1] as D returns
REAL = np.array([[1.0], [-0.5], [4.0]], np.float32)


def np_softplus(x):
    return np.logaddexp(0.0, x)


def close(actual, expected, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=atol)


class Linear:
    """D(x) = sum(w * x) + b, per sample; w [H, W, C]."""

    def __init__(self, w, b=0.0):
        self.w = tf.Variable(np.asarray(w, np.float32))
        self.b = tf.Variable(np.float32(b))

    def __call__(self, x):
        return tf.reduce_sum(x * self.w, axis=[1, 2, 3])[:, None] + self.b


class Quadratic:
    """D(x) = a * sum(x^2), per sample."""

    def __init__(self, a):
        self.a = tf.Variable(np.float32(a))

    def __call__(self, x):
        return self.a * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])[:, None]


def images(*rows):
    """Samples given as 4 pixel values each -> [N, 2, 2, 1]."""
    return np.asarray(rows, np.float32).reshape(len(rows), 2, 2, 1)


# ---------------------------------------------------------------- pure functions

def test_generator_logistic_ns():
    # softplus(-fake) = [sp(2), sp(0), sp(-3)]
    out = losses.generator_logistic_ns(FAKE)
    assert tuple(out.shape) == (3,)
    close(out, [2.126928, 0.693147, 0.048587])
    close(out, np_softplus(-FAKE[:, 0]))


def test_discriminator_logistic():
    # softplus(fake) + softplus(-real) = [sp(-2) + sp(-1), sp(0) + sp(0.5), sp(3) + sp(-4)]
    out = losses.discriminator_logistic(REAL, FAKE)
    assert tuple(out.shape) == (3,)
    close(out, [0.126928 + 0.313262, 0.693147 + 0.974077, 3.048587 + 0.018150])
    close(out, np_softplus(FAKE[:, 0]) + np_softplus(-REAL[:, 0]))


def test_logistic_losses_are_stable_for_large_scores():
    # softplus(100) = 100 (no overflow), softplus(-100) = 3.7e-44 ~ 0
    close(losses.discriminator_logistic([[-100.0]], [[100.0]]), [200.0])
    close(losses.generator_logistic_ns([[100.0], [-100.0]]), [0.0, 100.0])


def test_wgan_losses():
    # generator: -fake; discriminator: fake - real + 0.001 real^2
    close(losses.generator_wgan(FAKE), [2.0, 0.0, -3.0])
    # [-2 - 1 + 0.001, 0 + 0.5 + 0.00025, 3 - 4 + 0.016]
    close(losses.discriminator_wgan(REAL, FAKE), [-2.999, 0.50025, -0.984])
    close(losses.discriminator_wgan(REAL, FAKE, epsilon=0.0), [-3.0, 0.5, -1.0])
    close(losses.discriminator_wgan(REAL[:, 0], FAKE[:, 0], epsilon=0.1),
          FAKE[:, 0] - REAL[:, 0] + 0.1 * REAL[:, 0] ** 2)


def test_r1_penalty_sums_squares_over_non_batch_axes():
    grads = images([1, 1, 1, 1], [1, 2, 3, 4])  # 4 * 1 = 4; 1 + 4 + 9 + 16 = 30
    close(losses.r1_penalty(grads), [4.0, 30.0])
    grads2 = np.array([[3.0, -1.0], [0.0, 0.5]], np.float32)  # rank 2 works too: 10, 0.25
    close(losses.r1_penalty(grads2), [10.0, 0.25])


def test_wgan_gradient_penalty():
    grads = images([3, 4, 0, 0], [0.6, 0, 0, 0.8], [0, 0, 0, 0])  # norms 5, 1, 0
    close(losses.wgan_gradient_penalty(grads), [16.0, 0.0, 1.0])           # (5-1)^2, (1-1)^2, (0-1)^2
    close(losses.wgan_gradient_penalty(grads, target=2.0), [9.0, 1.0, 4.0])  # (5-2)^2, (1-2)^2, (0-2)^2


def test_half_precision_is_computed_in_float32():
    out = losses.generator_logistic_ns(tf.constant(FAKE, tf.float16))
    assert out.dtype == tf.float32
    grads = tf.constant(images([300, 0, 0, 0]), tf.float16)  # 300^2 = 90000 overflows float16 (max 65504)
    close(losses.r1_penalty(grads), [90000.0])


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="one score per sample"):
        losses.generator_wgan(np.zeros([3, 2], np.float32))
    with pytest.raises(ValueError, match="non-batch axis"):
        losses.r1_penalty(np.zeros([3], np.float32))


# ---------------------------------------------------------------- LogisticR1

def test_r1_with_linear_discriminator():
    # w = [1, -2, 0.5, 3]: every sample's input gradient is w, ||w||^2 = 1 + 4 + 0.25 + 9 = 14.25
    d = Linear(np.reshape([1.0, -2.0, 0.5, 3.0], [2, 2, 1]))
    reals = images([1, 0, 0, 0], [0, 1, 1, 0])   # D = 1, -1.5
    fakes = images([0, 0, 0, 0], [0, 0, 0, 1])   # D = 0, 3
    loss, metrics = losses.LogisticR1(r1_gamma=10.0).discriminator_loss(d, reals, fakes)
    close(metrics["D/r1"], [14.25, 14.25])
    close(metrics["D/real"], [1.0, -1.5])
    close(metrics["D/fake"], [0.0, 3.0])
    # sp(0) + sp(-1) + 5 * 14.25;  sp(3) + sp(1.5) + 71.25   (sp(1.5) = 1.701413)
    close(loss, [0.693147 + 0.313262 + 71.25, 3.048587 + 1.701413 + 71.25])


def test_r1_with_quadratic_discriminator():
    # a = 0.5: reals with ||x||^2 = 6 and 1 -> D = 3, 0.5; R1 = 4 a^2 ||x||^2 = 6, 1; fakes 0 -> D = 0
    d = Quadratic(0.5)
    reals = images([1, 2, 0, -1], [0.5, 0.5, 0.5, 0.5])
    fakes = np.zeros_like(reals)
    loss, metrics = losses.LogisticR1(r1_gamma=10.0).discriminator_loss(d, reals, fakes)
    close(metrics["D/r1"], [6.0, 1.0])
    close(metrics["D/real"], [3.0, 0.5])
    # sp(0) + sp(-3) + 5 * 6 = 30.741735;  sp(0) + sp(-0.5) + 5 * 1 = 6.167224
    close(loss, [30.741735, 6.167224])


def test_r1_second_order_gradient_reaches_the_weights():
    # Quadratic, a = 0.5, ||x||^2 = 6 and 1.  d(R1)/da = 8 a ||x||^2 = 24 and 4 -> 28 in sum.
    # d(sum loss)/da = 5 * 28 + d/da[sp(-6a) + sp(-a)] (fakes are 0: sp(0) does not depend on a)
    #               = 140 - 6 sigmoid(-3) - 1 sigmoid(-0.5) = 140 - 0.284555 - 0.377541 = 139.337904
    d = Quadratic(0.5)
    reals = tf.constant(images([1, 2, 0, -1], [0.5, 0.5, 0.5, 0.5]))
    fakes = tf.zeros_like(reals)
    loss_fn = losses.LogisticR1(r1_gamma=10.0)
    with tf.GradientTape(persistent=True) as tape:
        loss, metrics = loss_fn.discriminator_loss(d, reals, fakes)
        r1_total = tf.reduce_sum(metrics["D/r1"])
        loss_total = tf.reduce_sum(loss)
    close(tape.gradient(r1_total, d.a), 28.0)
    close(tape.gradient(loss_total, d.a), 139.337904)

    # Linear, w = [1, -2, 0.5, 3]: R1 = ||w||^2 for each of 2 samples -> d(sum R1)/dw = 2 * 2w; b has no say.
    lin = Linear(np.reshape([1.0, -2.0, 0.5, 3.0], [2, 2, 1]), b=0.3)
    with tf.GradientTape() as tape:
        _, metrics = loss_fn.discriminator_loss(lin, reals, fakes)
        r1_total = tf.reduce_sum(metrics["D/r1"])
    grad_w, grad_b = tape.gradient(r1_total, [lin.w, lin.b], unconnected_gradients="zero")
    close(np.ravel(grad_w), [4.0, -8.0, 2.0, 12.0])
    close(grad_b, 0.0)


def test_r1_second_order_gradient_in_a_tf_function_with_a_keras_discriminator():
    # Keras Dense D(x) = <k, flatten(x)>: R1 = ||k||^2 = 1 + 4 + 4 + 0 = 9 per sample; d(sum R1)/dk = 3 * 2k.
    disc = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(1, use_bias=False)])
    disc.layers[-1].kernel.assign(np.array([[1.0], [2.0], [-2.0], [0.0]], np.float32))
    loss_fn = losses.LogisticR1()
    reals = tf.constant(np.random.default_rng(0).standard_normal([3, 2, 2, 1]), tf.float32)

    @tf.function
    def step(reals):
        with tf.GradientTape() as tape:
            _, metrics = loss_fn.discriminator_loss(disc, reals, reals * 0.5)
            r1_total = tf.reduce_sum(metrics["D/r1"])
        return metrics["D/r1"], tape.gradient(r1_total, disc.trainable_variables)

    r1, (grad,) = step(reals)
    close(r1, [9.0, 9.0, 9.0])
    close(np.ravel(grad), [6.0, 12.0, -12.0, 0.0])


def test_r1_gamma_zero_is_the_plain_logistic_loss():
    d = Quadratic(0.5)
    reals = images([1, 2, 0, -1], [0.5, 0.5, 0.5, 0.5])
    loss, metrics = losses.LogisticR1(r1_gamma=0.0).discriminator_loss(d, reals, np.zeros_like(reals))
    close(metrics["D/r1"], [0.0, 0.0])
    close(loss, [0.693147 + 0.048587, 0.693147 + 0.474077])  # sp(0) + sp(-3), sp(0) + sp(-0.5)


def test_lazy_r1_moves_the_penalty_times_the_interval_into_a_separate_loss():
    # Quadratic, a = 0.5: R1 = 6 and 1 (as above). With r1_interval 4 the D loss is the plain logistic
    # one and the regularization loss gamma / 2 * 4 * R1 = 20 * R1 = 120 and 20.
    d = Quadratic(0.5)
    reals = images([1, 2, 0, -1], [0.5, 0.5, 0.5, 0.5])
    lazy = losses.LogisticR1(r1_gamma=10.0, r1_interval=4)
    assert lazy.regularization_interval == 4
    loss, metrics = lazy.discriminator_loss(d, reals, np.zeros_like(reals))
    close(loss, [0.693147 + 0.048587, 0.693147 + 0.474077])
    assert set(metrics) == {"D/real", "D/fake"}  # no penalty is computed in the D loss
    reg, reg_metrics = lazy.regularization_loss(d, reals)
    close(reg_metrics["D/r1"], [6.0, 1.0])
    close(reg, [120.0, 20.0])
    # Its upscale factor divides R1 by f^2, as in the D loss (loss_ref's convention).
    _, upscaled = lazy.regularization_loss(d, reals, upscale_factor=2)
    close(upscaled["D/r1"], [1.5, 0.25])
    # Its weight gradient: d(sum reg)/da = 20 * 8 a ||x||^2 summed = 20 * 28 = 560.
    reals = tf.constant(reals)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(lazy.regularization_loss(d, reals)[0])
    close(tape.gradient(total, d.a), 560.0)


def test_r1_interval_is_validated_and_meaningless_without_a_penalty():
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="r1_interval"):
            losses.LogisticR1(r1_interval=bad)
    assert losses.LogisticR1(r1_gamma=0.0, r1_interval=16).regularization_interval == 1
    assert losses.LogisticR1().regularization_interval == 1
    assert losses.WGANGP().regularization_interval == 1
    config = losses.LogisticR1(2.0, r1_interval=16).get_config()
    assert config == {"r1_gamma": 2.0, "r1_interval": 16}
    assert losses.LogisticR1.from_config(config).r1_interval == 16


def test_logistic_r1_generator_loss_and_config():
    loss_fn = losses.LogisticR1(r1_gamma=5.0)
    close(loss_fn.generator_loss(FAKE), [2.126928, 0.693147, 0.048587])
    assert loss_fn.get_config() == {"r1_gamma": 5.0, "r1_interval": 1}
    assert losses.LogisticR1.from_config(loss_fn.get_config()).r1_gamma == 5.0
    assert losses.LogisticR1().r1_gamma == 10.0
    with pytest.raises(ValueError):
        losses.LogisticR1(r1_gamma=-1.0)
    with pytest.raises(ValueError, match="dtype"):
        loss_fn.discriminator_loss(Quadratic(1.0), np.zeros([1, 2, 2, 1], np.uint8), np.zeros([1, 2, 2, 1]))


# ---------------------------------------------------------------- WGANGP

def _wgan_case():
    # Quadratic a = 0.5; mixed x_hat = real + (fake - real) * u:
    #   sample 0: real [3,4,0,0], fake 0, u 0.5   -> x_hat [1.5,2,0,0], ||x_hat|| 2.5, grad norm 2a*2.5 = 2.5
    #   sample 1: real [1,1,1,1], fake [3,3,3,3], u 0.25 -> x_hat 1.5 each, ||x_hat|| 3,  grad norm 3
    reals = images([3, 4, 0, 0], [1, 1, 1, 1])
    fakes = images([0, 0, 0, 0], [3, 3, 3, 3])
    u = np.array([0.5, 0.25], np.float32).reshape(2, 1, 1, 1)
    return Quadratic(0.5), reals, fakes, u


def test_wgan_gp_on_quadratic_discriminator():
    d, reals, fakes, u = _wgan_case()
    loss, metrics = losses.WGANGP().discriminator_loss(d, reals, fakes, u)
    close(metrics["D/grad_norm"], [2.5, 3.0])
    close(metrics["D/gp"], [2.25, 4.0])       # (2.5 - 1)^2, (3 - 1)^2
    close(metrics["D/real"], [12.5, 2.0])     # 0.5 * 25, 0.5 * 4
    close(metrics["D/fake"], [0.0, 18.0])     # 0, 0.5 * 36
    # fake - real + 0.001 real^2 + 10 gp: -12.5 + 0.15625 + 22.5 = 10.15625;  16 + 0.004 + 40 = 56.004
    close(loss, [10.15625, 56.004])


def test_wgan_gp_target_scaling():
    # target 2, lambda 10: gp (2.5-2)^2 = 0.25, (3-2)^2 = 1, weight lambda / target^2 = 2.5; epsilon 0
    d, reals, fakes, u = _wgan_case()
    loss, metrics = losses.WGANGP(wgan_lambda=10.0, wgan_epsilon=0.0, wgan_target=2.0).discriminator_loss(
        d, reals, fakes, u)
    close(metrics["D/gp"], [0.25, 1.0])
    close(loss, [-12.5 + 0.625, 16.0 + 2.5])


def test_wgan_gp_on_linear_discriminator():
    # w = [1, 2, 2, 0]: gradient norm 3 wherever x_hat is; gp = (3 - 1)^2 = 4, times 10 = 40
    d = Linear(np.reshape([1.0, 2.0, 2.0, 0.0], [2, 2, 1]))
    reals = images([1, 0, 0, 0], [0, 0, 1, 0])    # D = 1, 2
    fakes = images([0, 1, 0, 0], [0, 0, 0, 5])    # D = 2, 0
    u = np.array([0.1, 0.9], np.float32).reshape(2, 1, 1, 1)
    loss, metrics = losses.WGANGP().discriminator_loss(d, reals, fakes, u)
    close(metrics["D/gp"], [4.0, 4.0])
    close(loss, [2 - 1 + 0.001 + 40, 0 - 2 + 0.004 + 40])


def test_wgan_gp_second_order_gradient_reaches_the_weights():
    # gp_i = (2 a ||x_hat_i|| - 1)^2 -> d gp_i / da = 2 (2 a ||x_hat_i|| - 1) * 2 ||x_hat_i||
    #   sample 0: 2 * 1.5 * 5 = 15;  sample 1: 2 * 2 * 6 = 24  -> 39
    d, reals, fakes, u = _wgan_case()
    with tf.GradientTape() as tape:
        _, metrics = losses.WGANGP().discriminator_loss(d, reals, fakes, u)
        gp_total = tf.reduce_sum(metrics["D/gp"])
    close(tape.gradient(gp_total, d.a), 39.0)


def test_wgangp_generator_loss_config_and_errors():
    loss_fn = losses.WGANGP(wgan_lambda=5.0, wgan_epsilon=0.01, wgan_target=750.0)
    close(loss_fn.generator_loss(FAKE), [2.0, 0.0, -3.0])
    config = loss_fn.get_config()
    assert config == {"wgan_lambda": 5.0, "wgan_epsilon": 0.01, "wgan_target": 750.0}
    assert losses.WGANGP.from_config(config).get_config() == config
    assert losses.WGANGP().get_config() == {"wgan_lambda": 10.0, "wgan_epsilon": 0.001, "wgan_target": 1.0}
    d, reals, fakes, _ = _wgan_case()
    with pytest.raises(ValueError, match="mixing_factors"):
        loss_fn.discriminator_loss(d, reals, fakes, None)
    with pytest.raises(ValueError):
        losses.WGANGP(wgan_target=0.0)
