"""Generator and Discriminator are Keras models: summary(), the .keras format and Keras's export."""

import keras
import numpy as np
import tensorflow as tf
from helpers import latents, perturb, small_discriminator, small_generator

from tf_stylegan.nn.discriminator import Discriminator
from tf_stylegan.nn.generator import Generator

WIDTHS = dict(fmap_base=64, fmap_max=16)


def _networks():
    # Non-zero biases, noise strengths and w_avg, and a const input off ones (the variables built at
    # constants; the others are drawn), so that a weight lost on the way shows in the outputs.
    generator = perturb(small_generator(8, mapping_layers=2, name="G", **WIDTHS), scale=0.1, const_scale=0.1,
                        w_avg_scale=0.1)
    discriminator = perturb(small_discriminator(8, name="D", **WIDTHS), seed=1, scale=0.1)
    return generator, discriminator


def test_summary_lists_the_sub_networks_and_counts_every_parameter():
    generator, discriminator = _networks()
    lines = []
    generator.summary(print_fn=lambda line, **kwargs: lines.append(line))
    text = "\n".join(lines)
    assert "mapping (MappingNetwork)" in text and "synthesis (SynthesisNetwork)" in text
    assert f"Total params: {generator.count_params():,}" in text
    lines.clear()
    discriminator.summary(print_fn=lambda line, **kwargs: lines.append(line))
    assert "block4 (DiscriminatorBlock)" in "\n".join(lines)


def test_the_keras_format_round_trips_both_networks(tmp_path):
    generator, discriminator = _networks()
    z = latents(3, seed=1)
    images = generator(z, randomize_noise=False)
    generator.save(tmp_path / "G.keras")
    discriminator.save(tmp_path / "D.keras")
    loaded_g = keras.saving.load_model(tmp_path / "G.keras")
    loaded_d = keras.saving.load_model(tmp_path / "D.keras")
    assert isinstance(loaded_g, Generator) and isinstance(loaded_d, Discriminator)
    np.testing.assert_array_equal(loaded_g(z, randomize_noise=False), images)
    np.testing.assert_array_equal(loaded_g.w_avg.numpy(), generator.w_avg.numpy())
    np.testing.assert_array_equal(loaded_d(images), discriminator(images))


def test_keras_export_serves_the_generator(tmp_path):
    generator, _ = _networks()
    for variable in generator.variables:  # no noise: the served call draws fresh noise maps
        if variable.path.endswith("strength"):
            variable.assign(np.zeros(variable.shape, np.float32))
    generator.export(str(tmp_path / "export"),
                     input_signature=[keras.InputSpec(shape=(None, 16), dtype="float32")])
    z = latents(2, seed=2)
    reloaded = tf.saved_model.load(str(tmp_path / "export"))  # kept: it owns the variables
    served = reloaded.serve(tf.constant(z))
    np.testing.assert_allclose(served, generator(z), rtol=1e-5, atol=1e-5)
