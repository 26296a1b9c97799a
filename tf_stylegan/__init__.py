"""tf_stylegan: StyleGAN (Karras et al., CVPR 2019) for TensorFlow 2 / Keras 3."""

import os

# TensorFlow's default CPU allocator returns large buffers to the OS after every op, so each
# new activation at high resolution pays first-touch page faults; the BFC pool reuses them.
# Measured on a 2-core CPU: generator inference at 1024x1024 goes from 0.93 to 1.39 images/s.
# Effective only if set before TensorFlow allocates; export TF_CPU_ALLOCATOR_USE_BFC=false to opt out.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
# TensorFlow leaves its oneDNN kernels and graph fusions off on some CPUs: on the AVX2 AMD EPYC of CI it
# runs Eigen's unless this is 1 (it turns them on by itself on newer AVX-512 CPUs). Measured there:
# generator inference at 256x256 2.7 -> 3.3 images/s, the emoji demo's 16 / 32 px training steps
# 67 -> 99 / 37 -> 51 images/s (README: Performance notes, with the one phase it slows).
# Effective only if set before TensorFlow is imported; export TF_ENABLE_ONEDNN_OPTS=0 to opt out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"


def load(path, batch_size=8):
    """A generator for inference (``generate``, ``mapping``, ``truncate``, ``synthesis``, ``mix``) from
    an exported SavedModel, a network snapshot, a training run directory or an official ``.pkl``.
    See :class:`tf_stylegan.deploy.inference.StyleGAN`."""
    from tf_stylegan.deploy.inference import load as load_generator

    return load_generator(path, batch_size=batch_size)
