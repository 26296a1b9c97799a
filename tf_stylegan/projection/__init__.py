"""Projection of real images into the latent space: the StyleGAN2 paper's projector (Karras et al. 2020,
Section 5; the official ``projector.py``), on this library's generators.

For each target image it optimises a w (one for all layers, "W", or one per layer, "W+") and every
layer's noise map with Adam, starting at the average w of 10,000 mapped latents. The learning rate ramps
up over the first 5 % of the steps and down (cosine) over the last 25 %; Gaussian noise added to w, scaled
by the spread of W, decays to zero over the first 75 %; the noise maps are kept free of spatial structure by
a penalty on their autocorrelation at every scale of a pyramid (weight 1e5) and renormalised to zero mean
and unit variance after each step. The distance to the target is pluggable (:func:`lpips_distance`,
:func:`pixel_distance`, :func:`emoji_distance`, :func:`random_feature_distance`).

Many targets are projected at once; each target's randomness comes from its own stateless seed
(``seed + index``), so a target's result does not depend on the others in its batch.
"""

from tf_stylegan.projection.distances import (
    FeatureTargetDistance,
    PixelDistance,
    emoji_distance,
    lpips_distance,
    pixel_distance,
    random_feature_distance,
)
from tf_stylegan.projection.errors import ProjectionError
from tf_stylegan.projection.files import (
    PROJECTION_FILE,
    SavedProjection,
    load_projection,
    load_target,
    load_targets,
    save_projection,
)
from tf_stylegan.projection.projector import (
    NOISE_WEIGHT,
    W_SAMPLES,
    Projection,
    Projector,
    Schedule,
    flatten_noise,
    noise_regularization,
    normalized,
    psnr,
    w_statistics,
)

__all__ = [
    "NOISE_WEIGHT", "PROJECTION_FILE", "W_SAMPLES", "FeatureTargetDistance", "PixelDistance", "Projection",
    "ProjectionError", "Projector", "SavedProjection", "Schedule", "emoji_distance", "flatten_noise",
    "load_projection", "load_target", "load_targets", "lpips_distance", "noise_regularization", "normalized",
    "pixel_distance", "psnr", "random_feature_distance", "save_projection", "w_statistics",
]
