"""Shared checks for Keras layers: config round-trip, eager vs graph, save/load, weight names.

Use from any test file in this folder::

    from layer_testing import check_layer

    layer = check_layer(lambda: EqualizedDense(8), [(2, 5)], weight_names=["weight", "bias"])

:func:`check_layer` randomises every weight of the built layer first, so that the
comparisons below cannot pass trivially (e.g. a noise strength or bias still at zero).
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf


def make_inputs(inputs_or_shapes, seed=0):
    """float32 arrays: arrays are kept, shape tuples become N(0, 1) samples."""
    rng = np.random.default_rng(seed)
    out = []
    for item in inputs_or_shapes:
        if isinstance(item, tuple):
            out.append(rng.standard_normal(item).astype(np.float32))
        else:
            out.append(np.asarray(item, dtype=np.float32))
    return out


def randomize_weights(layer, seed=1, scale=0.5):
    """Give every weight (trainable or not) N(0, scale^2) values so no check passes by zeros."""
    rng = np.random.default_rng(seed)
    layer.set_weights([(scale * rng.standard_normal(w.shape)).astype(np.float32)
                       for w in layer.get_weights()])


def relative_weight_paths(layer):
    """Weight paths below the layer, e.g. ``"weight"`` or ``"adain/style/bias"``."""
    prefix = layer.name + "/"
    paths = []
    for variable in layer.weights:
        assert variable.path.startswith(prefix), (variable.path, prefix)
        paths.append(variable.path[len(prefix):])
    return paths


def _assert_same(actual, expected, what):
    np.testing.assert_array_equal(np.asarray(actual), np.asarray(expected), err_msg=what)


def check_layer(layer_factory, inputs, call_kwargs=None, weight_names=(), atol=1e-6):
    """Build ``layer_factory()`` on ``inputs`` and assert the generic Keras contract.

    Args:
      layer_factory: zero-argument callable returning a fresh, unbuilt layer.
      inputs: list of arrays or shape tuples, one per positional call argument.
      call_kwargs: extra keyword arguments of ``call`` (e.g. ``randomize_noise=False``);
        the call must be deterministic with them.
      weight_names: expected weight paths relative to the layer (see
        :func:`relative_weight_paths`), compared as a multiset; ``()`` means no weights.
      atol: tolerance of the eager vs ``tf.function`` comparison (the others are exact).

    Checks, after randomising the weights:
      * weight names;
      * eager output == ``tf.function`` output;
      * ``from_config(get_config())`` has an equal config and, with copied weights,
        the same output;
      * a functional model around the layer, saved to ``.keras`` and reloaded, gives the
        same output, config and weights; its symbolic output shape (from the layer's
        ``compute_output_shape``/``compute_output_spec``) matches the real one.

    Returns:
      (layer, inputs as arrays, output as a NumPy array).
    """
    kwargs = dict(call_kwargs or {})
    arrays = make_inputs(inputs)

    layer = layer_factory()
    layer(*arrays, **kwargs)  # builds
    randomize_weights(layer)
    out = np.asarray(layer(*arrays, **kwargs))

    assert sorted(relative_weight_paths(layer)) == sorted(weight_names)

    # Eager vs graph.
    graph_out = tf.function(lambda *xs: layer(*xs, **kwargs))(*arrays)
    np.testing.assert_allclose(np.asarray(graph_out), out, rtol=1e-6, atol=atol,
                               err_msg="eager and tf.function outputs differ")
    _assert_same(layer(*arrays, **kwargs), out, "two eager calls differ (call not deterministic)")

    # Config round trip.
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    clone(*arrays, **kwargs)
    clone.set_weights(layer.get_weights())
    _assert_same(clone(*arrays, **kwargs), out, "from_config clone with copied weights differs")

    # Save / load a functional wrapper.
    symbolic = [keras.Input(shape=a.shape[1:], name=f"input_{i}") for i, a in enumerate(arrays)]
    model = keras.Model(symbolic if len(symbolic) > 1 else symbolic[0], layer(*symbolic, **kwargs))
    assert tuple(model.output.shape[1:]) == out.shape[1:], "symbolic output shape is wrong"
    feed = arrays if len(arrays) > 1 else arrays[0]
    model_out = np.asarray(model(feed))
    _assert_same(model_out, out, "the functional wrapper changes the output")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer.keras")
        keras.saving.save_model(model, path)
        reloaded = keras.saving.load_model(path)
    loaded_layer = reloaded.get_layer(layer.name)
    assert type(loaded_layer) is type(layer)
    assert loaded_layer.get_config() == config
    assert sorted(relative_weight_paths(loaded_layer)) == sorted(weight_names)
    for a, b in zip(loaded_layer.get_weights(), layer.get_weights()):
        _assert_same(a, b, "reloaded weights differ")
    _assert_same(reloaded(feed), out, "reloaded model output differs")
    return layer, arrays, out
