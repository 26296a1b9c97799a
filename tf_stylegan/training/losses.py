"""GAN losses and gradient penalties of StyleGAN and ProGAN (NVlabs/stylegan ``training/loss.py``).

Every function returns **per-sample** values of shape [N], in float32 (float16 / bfloat16
inputs are cast first, as the official ``fp32``): the trainer sums them over its replica's
samples and divides by the global minibatch, so that replicas add up to the mean.

Scores are the discriminator's raw outputs, [N, 1] or [N]. Gradients (``real_grads``,
``mixed_grads``) are d(sum of scores) / d(images), any shape [N, ...].

Two loss classes own the input-gradient computations:

* :class:`LogisticR1` -- StyleGAN's FFHQ default: non-saturating logistic loss with the R1
  penalty on reals (``G_logistic_nonsaturating`` + ``D_logistic_simplegp``).
* :class:`WGANGP` -- ProGAN's / StyleGAN's CelebA-HQ loss: Wasserstein loss with gradient
  penalty and epsilon drift (``G_wgan`` + ``D_wgan_gp``).

Call ``discriminator_loss`` inside the trainer's ``tf.GradientTape`` over the
discriminator's variables: the input gradient is taken with an inner tape, so the outer tape
records it and the penalty's gradient with respect to the weights (a second-order gradient)
reaches the optimizer.

**Penalties during progressive growing.** At a level of resolution r below the full resolution R
the official loop nearest-upscales the r×r images to R×R before D (``process_reals``), and both
penalties are gradients with respect to that R×R tensor. D's first step at such a level is a 2×2
box downscale (repeated), so d(D)/d(upscaled) is d(D)/d(r×r images) spread over f² = (R/r)² pixels
at 1/f² each: its squared norm is the r×r one divided by f². The losses take the r×r images and
``upscale_factor`` f, and use the cheapest exact form: the r×r input gradient divided by f.
"""

import tensorflow as tf
from keras import ops

from tf_stylegan.nn.ops import in_float32, lerp


def _fp32(x):
    """``x`` as a tensor, float16 / bfloat16 cast to float32 (wider dtypes are kept)."""
    return in_float32(ops.convert_to_tensor(x))


def _per_sample(scores):
    """Discriminator scores [N, 1] or [N] -> [N] (float32 or wider)."""
    scores = _fp32(scores)
    if len(scores.shape) == 2 and scores.shape[-1] in (1, None):
        return ops.squeeze(scores, axis=-1)
    if len(scores.shape) == 1:
        return scores
    raise ValueError(f"Scores of shape {tuple(scores.shape)}: expected one score per sample, [N, 1] or [N].")


def _sum_squares_per_sample(grads):
    """Sum of squares over every axis but the first: [N, ...] -> [N]."""
    grads = _fp32(grads)
    if len(grads.shape) < 2:
        raise ValueError(f"Gradients of shape {tuple(grads.shape)}: expected [N, ...] with at least one "
                         "non-batch axis (images are [N, H, W, C]).")
    return ops.sum(ops.square(grads), axis=tuple(range(1, len(grads.shape))))


# ---------------------------------------------------------------- pure per-sample functions

def generator_logistic_ns(fake_scores):
    """Non-saturating logistic generator loss ``softplus(-D(G(z)))`` = ``-log(sigmoid(D(G(z))))``. -> [N]"""
    return ops.softplus(-_per_sample(fake_scores))


def discriminator_logistic(real_scores, fake_scores):
    """Logistic discriminator loss ``softplus(D(G(z))) + softplus(-D(x))``. -> [N]

    ``= -log(1 - sigmoid(D(G(z)))) - log(sigmoid(D(x)))``; reals and fakes are paired by index.
    """
    return ops.softplus(_per_sample(fake_scores)) + ops.softplus(-_per_sample(real_scores))


def r1_penalty(real_grads):
    """R1 penalty ``||dD(x)/dx||^2`` per sample (unscaled: the loss adds it times ``gamma / 2``). -> [N]

    ``real_grads`` is d(sum(D(x))) / dx, [N, H, W, C]; squares are summed over all non-batch axes.
    """
    return _sum_squares_per_sample(real_grads)


def generator_wgan(fake_scores):
    """Wasserstein generator loss ``-D(G(z))``. -> [N]"""
    return -_per_sample(fake_scores)


def discriminator_wgan(real_scores, fake_scores, epsilon=0.001):
    """Wasserstein discriminator loss with drift ``D(G(z)) - D(x) + epsilon * D(x)^2``. -> [N]

    The drift term (ProGAN's ``epsilon_drift``) keeps the real scores near 0.
    """
    real = _per_sample(real_scores)
    return _per_sample(fake_scores) - real + epsilon * ops.square(real)


def wgan_gradient_penalty(mixed_grads, target=1.0):
    """Gradient penalty ``(||dD(x_hat)/dx_hat||_2 - target)^2`` per sample. -> [N]

    Unscaled: :class:`WGANGP` multiplies it by ``lambda / target**2`` as the official code.
    Like the official code, the norm has no epsilon: its gradient is undefined at exactly 0.
    """
    return ops.square(ops.sqrt(_sum_squares_per_sample(mixed_grads)) - target)


def _scores_and_input_grads(discriminator, images, upscale_factor=1):
    """``(D(images), d(sum(D(images))) / d(upscaled images))`` through an inner tape on the images
    only: the gradient with respect to the images nearest-upscaled by ``upscale_factor`` (the
    official full-resolution tensor), whose norm is the r×r gradient's divided by the factor."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(images)
        scores = discriminator(images)
        total = ops.sum(_fp32(scores))
    grads = tape.gradient(total, images, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    if upscale_factor != 1:
        grads = grads * (1.0 / upscale_factor)
    return scores, grads


def _check_upscale_factor(upscale_factor):
    factor = int(upscale_factor)
    if factor != upscale_factor or factor < 1 or factor & (factor - 1):
        raise ValueError(f"upscale_factor={upscale_factor}: must be a power of two >= 1 (full resolution / "
                         "the level's resolution)")
    return factor


def _as_float_tensor(images):
    images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        raise ValueError(f"Images of dtype {images.dtype.name}: convert them to floats (the network's "
                         "dynamic range) before the loss, the penalties differentiate with respect to them.")
    return images


# ---------------------------------------------------------------- loss classes

class LogisticR1:
    """Non-saturating logistic loss with the R1 penalty on reals (StyleGAN, FFHQ default).

    D: ``softplus(D(G(z))) + softplus(-D(x)) + r1_gamma / 2 * ||dD(x)/dx||^2``;
    G: ``softplus(-D(G(z)))``. Official ``D_logistic_simplegp`` with ``r2_gamma = 0``.

    Lazy R1 (StyleGAN2, Karras et al. 2020, Section 3.1) with ``r1_interval`` k > 1: the D loss
    has no penalty, and every k-th minibatch a separate D update minimises
    ``r1_gamma / 2 * k * ||dD(x)/dx||^2`` (:meth:`regularization_loss`); the trainer then runs D's
    Adam with the learning rate times k / (k + 1) and both betas to the power k / (k + 1), as the
    official StyleGAN2 ``lazy_regularization``.
    """

    needs_mixing_factors = False

    def __init__(self,
                 r1_gamma=10.0,   # R1 weight gamma (10 for FFHQ); 0 skips the penalty
                 r1_interval=1):  # minibatches per R1 update (1: in every D loss, StyleGAN; 16: StyleGAN2)
        if r1_gamma < 0:
            raise ValueError(f"r1_gamma={r1_gamma}: must be >= 0")
        if isinstance(r1_interval, bool) or int(r1_interval) != r1_interval or r1_interval < 1:
            raise ValueError(f"r1_interval={r1_interval!r}: must be a whole number of minibatches >= 1")
        self.r1_gamma = float(r1_gamma)
        self.r1_interval = int(r1_interval)

    @property
    def regularization_interval(self):
        """Minibatches per separate regularization update of D (1: none, the penalty is in the D loss)."""
        return self.r1_interval if self.r1_gamma != 0.0 else 1

    def discriminator_loss(self, discriminator, reals, fakes, mixing_factors=None, upscale_factor=1):
        """Per-sample D loss [N] and metrics.

        Args:
          discriminator: callable images [N, H, W, C] -> scores [N, 1].
          reals, fakes: float image batches of the same shape.
          mixing_factors: ignored (accepted so that the trainer can call either loss alike).
          upscale_factor: full resolution / the images' resolution; R1 is taken with respect to
            the images nearest-upscaled by it, as official during progressive growing.
        Returns:
          ``(loss [N], {"D/real": scores, "D/fake": scores, "D/r1": unscaled R1 penalty})``, all [N];
          with lazy R1 (``r1_interval`` > 1) the loss has no penalty and the metrics no "D/r1".
        """
        del mixing_factors
        upscale_factor = _check_upscale_factor(upscale_factor)
        reals = _as_float_tensor(reals)
        if self.regularization_interval > 1 or self.r1_gamma == 0.0:
            real_scores = _per_sample(discriminator(reals))
            fake_scores = _per_sample(discriminator(fakes))
            metrics = {"D/real": real_scores, "D/fake": fake_scores}
            if self.r1_gamma == 0.0:
                metrics["D/r1"] = ops.zeros_like(real_scores)
            return discriminator_logistic(real_scores, fake_scores), metrics
        real_scores, real_grads = _scores_and_input_grads(discriminator, reals, upscale_factor)
        real_scores = _per_sample(real_scores)
        r1 = r1_penalty(real_grads)
        fake_scores = _per_sample(discriminator(fakes))
        loss = discriminator_logistic(real_scores, fake_scores) + r1 * (self.r1_gamma * 0.5)
        return loss, {"D/real": real_scores, "D/fake": fake_scores, "D/r1": r1}

    def regularization_loss(self, discriminator, reals, upscale_factor=1):
        """The lazy R1 update's per-sample loss ``r1_gamma / 2 * r1_interval * R1`` [N] and
        ``{"D/r1": unscaled R1 penalty [N]}`` (arguments as :meth:`discriminator_loss`)."""
        upscale_factor = _check_upscale_factor(upscale_factor)
        _, real_grads = _scores_and_input_grads(discriminator, _as_float_tensor(reals), upscale_factor)
        r1 = r1_penalty(real_grads)
        return r1 * (self.r1_gamma * 0.5 * self.r1_interval), {"D/r1": r1}

    def generator_loss(self, fake_scores):
        """Per-sample G loss [N] from D's scores on the generated images."""
        return generator_logistic_ns(fake_scores)

    def get_config(self):
        return {"r1_gamma": self.r1_gamma, "r1_interval": self.r1_interval}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"LogisticR1(r1_gamma={self.r1_gamma}, r1_interval={self.r1_interval})"


class WGANGP:
    """Wasserstein loss with gradient penalty and epsilon drift (ProGAN; StyleGAN on CelebA-HQ).

    D: ``D(G(z)) - D(x) + lambda / target^2 * (||dD(x_hat)/dx_hat|| - target)^2 + epsilon * D(x)^2``
    with ``x_hat = lerp(x, G(z), u)``, ``u ~ U[0, 1)`` per sample; G: ``-D(G(z))``. Official
    ``D_wgan_gp`` and ``G_wgan``.
    """

    needs_mixing_factors = True
    regularization_interval = 1  # the penalty is in every D loss

    def __init__(self,
                 wgan_lambda=10.0,    # weight of the gradient penalty
                 wgan_epsilon=0.001,  # weight of the drift term epsilon * D(x)^2
                 wgan_target=1.0):    # target gradient norm
        if wgan_lambda < 0 or wgan_epsilon < 0:
            raise ValueError(f"wgan_lambda={wgan_lambda}, wgan_epsilon={wgan_epsilon}: weights must be >= 0")
        if wgan_target <= 0:
            raise ValueError(f"wgan_target={wgan_target}: the target gradient norm must be > 0")
        self.wgan_lambda = float(wgan_lambda)
        self.wgan_epsilon = float(wgan_epsilon)
        self.wgan_target = float(wgan_target)

    def discriminator_loss(self, discriminator, reals, fakes, mixing_factors, upscale_factor=1):
        """Per-sample D loss [N] and metrics.

        Args:
          discriminator: callable images [N, H, W, C] -> scores [N, 1].
          reals, fakes: float image batches of the same shape.
          mixing_factors: [N, 1, 1, 1] uniform in [0, 1), drawn by the trainer; the penalty is
            taken at ``reals + (fakes - reals) * mixing_factors``.
          upscale_factor: full resolution / the images' resolution; the gradient norm is taken
            with respect to the mixed images nearest-upscaled by it, as official during growth.
        Returns:
          ``(loss [N], {"D/real", "D/fake", "D/mixed": scores, "D/grad_norm": ||dD/dx_hat||,
          "D/gp": unscaled penalty, "D/drift": D(x)^2})``, all [N].
        """
        if mixing_factors is None:
            raise ValueError("WGANGP needs mixing_factors: draw tf.random.uniform([N, 1, 1, 1]) "
                             "in the trainer.")
        upscale_factor = _check_upscale_factor(upscale_factor)
        reals = _as_float_tensor(reals)
        fakes = _as_float_tensor(fakes)
        real_scores = _per_sample(discriminator(reals))
        fake_scores = _per_sample(discriminator(fakes))
        mixed = lerp(ops.cast(reals, fakes.dtype), fakes, ops.cast(mixing_factors, fakes.dtype))
        mixed_scores, mixed_grads = _scores_and_input_grads(discriminator, mixed, upscale_factor)
        grad_norm = ops.sqrt(_sum_squares_per_sample(mixed_grads))
        gp = wgan_gradient_penalty(mixed_grads, self.wgan_target)
        loss = discriminator_wgan(real_scores, fake_scores, self.wgan_epsilon)
        loss = loss + gp * (self.wgan_lambda / self.wgan_target ** 2)
        return loss, {"D/real": real_scores, "D/fake": fake_scores, "D/mixed": _per_sample(mixed_scores),
                      "D/grad_norm": grad_norm, "D/gp": gp, "D/drift": ops.square(real_scores)}

    def generator_loss(self, fake_scores):
        """Per-sample G loss [N] from D's scores on the generated images."""
        return generator_wgan(fake_scores)

    def get_config(self):
        return {"wgan_lambda": self.wgan_lambda, "wgan_epsilon": self.wgan_epsilon,
                "wgan_target": self.wgan_target}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (f"WGANGP(wgan_lambda={self.wgan_lambda}, wgan_epsilon={self.wgan_epsilon}, "
                f"wgan_target={self.wgan_target})")
