"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data"; NVlabs/stylegan2-ada ``training/augment.py``, its 'bgc' pipeline): every image D sees, real or
generated, is transformed with probability p per transform, differentiably, so that D cannot memorise a small
dataset and G does not learn the transforms (they are "non-leaking" at p < ~0.8).

* Pixel blitting: x-flip, 90-degree rotations, integer translation (up to 1/8 of the size).
* Geometric: isotropic scaling (lognormal, std 0.2 octaves), rotation (before and after the anisotropic
  scaling, each with probability 1 - sqrt(1 - p): either with p), anisotropic scaling, fractional translation.
* Colour: brightness, contrast, luma flip, hue rotation, saturation (a 4x4 colour matrix per image).

Blitting and geometric transforms compose into one inverse affine map per image, sampled bilinearly with
mirrored borders. Unlike the official pipeline there is no 2x wavelet up/down-sampling around the resampling
(a little more aliasing for fractional moves; identical for blits, which land on pixel centres).

Randomness is per sample from stateless keys (as the train step's other draws): one replica's slice of
a minibatch is augmented exactly as in the whole, and a resumed run repeats the uninterrupted one.
"""

import dataclasses
import math

import tensorflow as tf

# The per-image uniform and normal draws of one pipeline call, by name (their order is the layout).
UNIFORMS = ("xflip", "xflip_gate", "rotate90", "rotate90_gate", "xint_x", "xint_y", "xint_gate", "scale_gate",
            "rotate_pre", "rotate_pre_gate", "aniso_gate", "rotate_post", "rotate_post_gate", "xfrac_gate",
            "brightness_gate", "contrast_gate", "lumaflip", "lumaflip_gate", "hue", "hue_gate",
            "saturation_gate")
NORMALS = ("scale", "aniso", "xfrac_x", "xfrac_y", "brightness", "contrast", "saturation")


@dataclasses.dataclass(frozen=True)
class AugmentPipe:
    """The transforms' probability multipliers (0 disables one) and ranges; official 'bgc' defaults."""

    xflip: float = 1.0
    rotate90: float = 1.0
    xint: float = 1.0
    xint_max: float = 0.125  # largest integer translation, a fraction of the image size
    scale: float = 1.0
    rotate: float = 1.0
    aniso: float = 1.0
    xfrac: float = 1.0
    scale_std: float = 0.2  # log2 standard deviation of isotropic scaling
    rotate_max: float = 1.0  # largest rotation, a fraction of a half turn
    aniso_std: float = 0.2  # log2 standard deviation of anisotropic scaling
    xfrac_std: float = 0.125  # standard deviation of fractional translation, a fraction of the size
    brightness: float = 1.0
    contrast: float = 1.0
    lumaflip: float = 1.0
    hue: float = 1.0
    saturation: float = 1.0
    brightness_std: float = 0.2
    contrast_std: float = 0.5  # log2
    hue_max: float = 1.0  # largest hue rotation, a fraction of a half turn
    saturation_std: float = 1.0  # log2

    def __call__(self, images, p, uniform, normal):
        """Augmented ``images`` [N, H, W, C] (float, [-1, 1]) at probability ``p`` (a scalar), from the
        per-image draws ``uniform`` [N, len(UNIFORMS)] in [0, 1) and ``normal`` [N, len(NORMALS)]."""
        u = {name: uniform[:, i] for i, name in enumerate(UNIFORMS)}
        n = {name: normal[:, i] for i, name in enumerate(NORMALS)}
        dtype = images.dtype
        images = tf.cast(images, tf.float32)
        images = _resample(images, self._geometry(p, u, n, images.shape[2], images.shape[1]))
        images = _recolour(images, self._colour(p, u, n))
        return tf.cast(images, dtype)

    def _geometry(self, p, u, n, width, height):
        """Inverse 3x3 maps [N, 3, 3] from output to input pixel coordinates (origin at the centre)."""
        ones = tf.ones_like(u["xflip"])

        def gate(name, probability, value, otherwise):
            return tf.where(u[name + "_gate"] < probability, value, otherwise)

        flip = gate("xflip", self.xflip * p, tf.floor(u["xflip"] * 2), 0.0)
        g = _scale2d(1 - 2 * flip, ones)
        quarter = gate("rotate90", self.rotate90 * p, tf.floor(u["rotate90"] * 4), 0.0)
        g = g @ _quarter_turns(quarter)
        shift = [gate("xint", self.xint * p, (u[f"xint_{axis}"] * 2 - 1) * self.xint_max, 0.0)
                 for axis in "xy"]
        g = g @ _translate2d(-tf.round(shift[0] * width), -tf.round(shift[1] * height))
        scale = gate("scale", self.scale * p, _exp2(n["scale"] * self.scale_std), 1.0)
        g = g @ _scale2d(1 / scale, 1 / scale)
        p_rotate = 1 - tf.sqrt(tf.clip_by_value(1 - self.rotate * p, 0.0, 1.0))  # P(pre or post) = p
        for stage in ("rotate_pre", "rotate_post"):
            if stage == "rotate_post":
                aniso = gate("aniso", self.aniso * p, _exp2(n["aniso"] * self.aniso_std), 1.0)
                g = g @ _scale2d(1 / aniso, aniso)
            theta = gate(stage, p_rotate, (u[stage] * 2 - 1) * math.pi * self.rotate_max, 0.0)
            g = g @ _rotate2d(theta)
        fraction = [gate("xfrac", self.xfrac * p, n[f"xfrac_{axis}"] * self.xfrac_std, 0.0) for axis in "xy"]
        return g @ _translate2d(-fraction[0] * width, -fraction[1] * height)

    def _colour(self, p, u, n):
        """Colour matrices [N, 4, 4] acting on (r, g, b, 1)."""
        zeros = tf.zeros_like(u["hue"])

        def gate(name, probability, value, otherwise):
            return tf.where(u[name + "_gate"] < probability, value, otherwise)

        luma = tf.constant([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3)
        luma_outer = tf.tensordot(luma, luma, axes=0)  # [4, 4]
        identity = tf.eye(4)
        brightness = gate("brightness", self.brightness * p, n["brightness"] * self.brightness_std, 0.0)
        c = _translate3d(brightness)
        contrast = gate("contrast", self.contrast * p, _exp2(n["contrast"] * self.contrast_std), 1.0)
        c = _scale3d(contrast) @ c
        flip = gate("lumaflip", self.lumaflip * p, tf.floor(u["lumaflip"] * 2), 0.0)
        c = (identity - 2 * luma_outer * flip[:, None, None]) @ c
        hue = gate("hue", self.hue * p, (u["hue"] * 2 - 1) * math.pi * self.hue_max, zeros)
        c = _rotate_about_luma(hue) @ c
        saturation = gate("saturation", self.saturation * p,
                          _exp2(n["saturation"] * self.saturation_std), 1.0)
        # v v^T + (I - v v^T) s, written so that s = 1 gives the identity exactly
        return (identity + (identity - luma_outer) * (saturation[:, None, None] - 1)) @ c


def _exp2(x):
    return tf.pow(2.0, x)


def _matrices(rows):
    """[N, k, k] from k rows of k per-image [N] tensors (or floats)."""
    batch = next(value for row in rows for value in row if isinstance(value, tf.Tensor))
    return tf.stack([tf.stack([value + tf.zeros_like(batch) for value in row], -1) for row in rows], -2)


def _scale2d(sx, sy):
    return _matrices([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])


def _translate2d(tx, ty):
    return _matrices([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _rotate2d(theta):
    cos, sin = tf.cos(theta), tf.sin(theta)
    return _matrices([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])


def _quarter_turns(k):
    """Rotations by ``k`` [N] (0..3, float) quarter turns, with exact entries (cos(pi / 2) is not 0 in
    float32)."""
    index = tf.cast(k, tf.int32)
    cos, sin = tf.gather([1.0, 0.0, -1.0, 0.0], index), tf.gather([0.0, 1.0, 0.0, -1.0], index)
    return _matrices([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])


def _translate3d(t):
    return _matrices([[1.0, 0.0, 0.0, t], [0.0, 1.0, 0.0, t], [0.0, 0.0, 1.0, t], [0.0, 0.0, 0.0, 1.0]])


def _scale3d(s):
    return _matrices([[s, 0.0, 0.0, 0.0], [0.0, s, 0.0, 0.0], [0.0, 0.0, s, 0.0], [0.0, 0.0, 0.0, 1.0]])


def _rotate_about_luma(theta):
    """Rotations by ``theta`` [N] about the grey axis (1, 1, 1) / sqrt(3) (Rodrigues' formula)."""
    v = 1 / math.sqrt(3)
    cos, sin = tf.cos(theta), tf.sin(theta)
    diagonal, off = v * v * (1 - cos) + cos, v * v * (1 - cos)
    return _matrices([[diagonal, off - v * sin, off + v * sin, 0.0],
                      [off + v * sin, diagonal, off - v * sin, 0.0],
                      [off - v * sin, off + v * sin, diagonal, 0.0],
                      [0.0, 0.0, 0.0, 1.0]])


def _mirror(index, size):
    """Integer pixel indices folded into [0, size) by mirroring about the edge pixels (no repeat)."""
    period = 2 * (size - 1)
    index = tf.math.floormod(index, period)
    return tf.where(index >= size, period - index, index)


def _resample(images, inverse):
    """images [N, H, W, C] sampled bilinearly at inverse @ (x, y, 1) of each output pixel, borders
    mirrored."""
    batch, height, width, channels = images.shape
    batch = tf.shape(images)[0]
    xs = tf.range(width, dtype=tf.float32) - (width - 1) / 2
    ys = tf.range(height, dtype=tf.float32) - (height - 1) / 2
    grid_y, grid_x = tf.meshgrid(ys, xs, indexing="ij")
    # [3, HW]: the output pixels' centred coordinates, homogeneous
    points = tf.stack([tf.reshape(grid_x, [-1]), tf.reshape(grid_y, [-1]), tf.ones([height * width])])
    source = tf.einsum("nij,jp->nip", inverse, points)  # [N, 3, HW]
    x = source[:, 0] + (width - 1) / 2
    y = source[:, 1] + (height - 1) / 2
    x0, y0 = tf.floor(x), tf.floor(y)
    wx, wy = (x - x0)[..., None], (y - y0)[..., None]  # [N, HW, 1]
    flat = tf.reshape(images, [-1, channels])  # [N * H * W, C]
    base = tf.range(batch)[:, None] * (height * width)  # [N, 1]

    def taps(dy, dx):
        row = _mirror(tf.cast(y0, tf.int32) + dy, height)
        column = _mirror(tf.cast(x0, tf.int32) + dx, width)
        return tf.gather(flat, base + row * width + column)  # [N, HW, C]

    top = taps(0, 0) * (1 - wx) + taps(0, 1) * wx
    bottom = taps(1, 0) * (1 - wx) + taps(1, 1) * wx
    return tf.reshape(top * (1 - wy) + bottom * wy, [batch, height, width, channels])


def _recolour(images, colour):
    """images [N, H, W, C] through colour matrices [N, 4, 4]; one channel uses their mean over r, g, b."""
    if images.shape[-1] == 1:
        gain = tf.reduce_mean(tf.reduce_sum(colour[:, :3, :3], axis=2), axis=1)  # [N]
        offset = tf.reduce_mean(colour[:, :3, 3], axis=1)
        return images * gain[:, None, None, None] + offset[:, None, None, None]
    rgb = tf.einsum("nij,nhwj->nhwi", colour[:, :3, :3], images)
    return rgb + colour[:, None, None, :3, 3]


class Augmentation:
    """Augmentation of every image D sees at probability ``p``: fixed (``mode='fixed'``, p = ``p``), or
    adaptive (``'ada'``, from ``p``): every ``interval`` minibatches p moves by ±(images in them) /
    (``speed_kimg`` * 1000) toward the overfitting heuristic r_t = E[sign(D(augmented reals))] meeting
    ``target``, so p can go from 0 to 1 in ``speed_kimg`` kimg (official: target 0.6, interval 4, 500 kimg).

    Create it under the training strategy's scope: p and the interval's sums are variables, checkpointed
    with the run (an exact resume). ``pipe``: the transforms (:class:`AugmentPipe`, 'bgc' by default).
    """

    MODES = ("ada", "fixed")

    def __init__(self, mode="ada", p=0.0, target=0.6, speed_kimg=500.0, interval=4, pipe=None):
        if mode not in self.MODES:
            raise ValueError(f"augment={mode!r}: must be one of {', '.join(map(repr, self.MODES))} (or None: "
                             "no augmentation)")
        if not 0.0 <= p <= 1.0 or speed_kimg <= 0 or int(interval) < 1:
            raise ValueError(f"Augmentation p={p}, speed_kimg={speed_kimg}, interval={interval}: need "
                             "0 <= p <= 1, speed_kimg > 0 and interval >= 1")
        self.mode, self.target = mode, float(target)
        self.speed_kimg, self.interval = float(speed_kimg), int(interval)
        self.pipe = pipe or AugmentPipe()
        self.p = tf.Variable(float(p), trainable=False, name="augment_p")
        self.sign_sum = tf.Variable(0.0, trainable=False, name="augment_sign_sum")
        self.image_count = tf.Variable(0.0, trainable=False, name="augment_image_count")

    @property
    def variables(self):
        """{name: variable} of its state, for checkpoints."""
        return {"p": self.p, "sign_sum": self.sign_sum, "image_count": self.image_count}

    def __call__(self, images, uniform, normal):
        return self.pipe(images, tf.convert_to_tensor(self.p), uniform, normal)

    def adjust(self, real_sign_mean, global_batch, step):
        """After a D step (cross-replica context): counts the minibatch's mean sign of D's real scores;
        at the end of every ``interval`` minibatches (``step`` = index of this one) moves p (ADA only)."""
        if self.mode != "ada":
            return
        self.sign_sum.assign_add(tf.cast(real_sign_mean, tf.float32) * global_batch)
        self.image_count.assign_add(float(global_batch))
        due = tf.equal(tf.math.floormod(tf.cast(step, tf.int64) + 1, self.interval), 0)
        r_t = self.sign_sum / tf.maximum(self.image_count, 1.0)
        moved = self.p + tf.sign(r_t - self.target) * self.image_count / (self.speed_kimg * 1000)
        self.p.assign(tf.where(due, tf.clip_by_value(moved, 0.0, 1.0), self.p))
        for total in (self.sign_sum, self.image_count):
            total.assign(tf.where(due, 0.0, total))
