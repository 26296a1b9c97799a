"""What ``import tf_stylegan`` sets up for TensorFlow before TensorFlow starts."""

import os
import subprocess
import sys

import pytest

ONEDNN_ON = "oneDNN custom operations are on"  # TensorFlow's own log line at import


def _import_log(**environment):
    """stderr of a fresh interpreter that imports tf_stylegan, then TensorFlow, with its info logs on."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPU_ALLOCATOR_USE_BFC")}
    env.update(TF_CPP_MIN_LOG_LEVEL="0", **environment)
    code = ("import os, tf_stylegan, tensorflow; "
            "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], os.environ['TF_CPU_ALLOCATOR_USE_BFC'])")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=300, check=True)
    return result.stdout.split(), result.stderr


@pytest.mark.slow
def test_onednn_and_the_bfc_allocator_are_on_unless_the_user_set_them():
    settings, log = _import_log()
    assert settings == ["1", "true"] and ONEDNN_ON in log
    settings, log = _import_log(TF_ENABLE_ONEDNN_OPTS="0", TF_CPU_ALLOCATOR_USE_BFC="false")
    assert settings == ["0", "false"] and ONEDNN_ON not in log
