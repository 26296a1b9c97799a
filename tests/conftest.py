"""Shared fixtures: the official reference folder and small network configurations."""

import os
import pathlib

import numpy as np
import pytest

import tf_stylegan  # noqa: F401  (sets the allocator before TensorFlow starts)

OFFICIAL_REF = pathlib.Path(__file__).resolve().parents[2] / "shared" / "official_ref"

# Small widths for fast tests: every stage gets min(256 / 2**stage, 32) feature maps.
SMALL_WIDTHS = dict(fmap_base=256, fmap_max=32)


def official_ref_path(name):
    """Path of a file in ../shared/official_ref, or a skip naming why it is absent."""
    path = OFFICIAL_REF / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must run with ../shared beside the checkout")
        pytest.skip(f"official reference vectors not found at {path} (they live in ../shared, "
                    "outside the repository; a user's clone has none)")
    return path


@pytest.fixture(params=["", "_fused"], ids=["nonfused", "fused"])
def official_config(request):
    """(pickle path, reference outputs) for each of the two official reference configs."""
    suffix = request.param
    pkl = official_ref_path(f"network-small{suffix}.pkl")
    ref = dict(np.load(official_ref_path(f"ref_outputs{suffix}.npz")))
    return pkl, ref


def nchw(images):
    """NHWC -> NCHW (the official layout)."""
    return np.transpose(np.asarray(images), [0, 3, 1, 2])


def nhwc(images):
    """NCHW -> NHWC."""
    return np.transpose(np.asarray(images), [0, 2, 3, 1])
