"""Fixtures shared by the test files. Helper functions and constants live in helpers.py."""

import numpy as np
import pytest

import tf_stylegan  # noqa: F401  (sets the allocator before TensorFlow starts: before helpers imports it)

# isort: split
from helpers import official_ref_path


@pytest.fixture(params=["", "_fused"], ids=["nonfused", "fused"])
def official_config(request):
    """(pickle path, reference outputs) for each of the two unconditional official reference configs."""
    suffix = request.param
    pkl = official_ref_path(f"network-small{suffix}.pkl")
    ref = dict(np.load(official_ref_path(f"ref_outputs{suffix}.npz")))
    return pkl, ref
