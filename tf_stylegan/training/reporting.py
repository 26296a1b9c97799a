"""What a run reports: TensorBoard summaries written with TensorFlow alone, and durations for the
progress line.

``tf.summary.scalar`` and friends live in the ``tensorboard`` package, which training does
not need; these write the same event records (scalars, images, text plugins) through the
core ``tf.summary.write``, so TensorBoard reads them as usual. Call them under a default
writer: ``with writer.as_default(step=...)``.
"""

import tensorflow as tf


def _metadata(plugin_name):
    metadata = tf.compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin_name
    return metadata


def scalar(name, value):
    """A scalar (TensorBoard's Scalars tab)."""
    return tf.summary.write(name, tf.constant(value, tf.float32), metadata=_metadata("scalars"))


def image(name, pixels):
    """A uint8 image [H, W, C] (TensorBoard's Images tab)."""
    height, width = pixels.shape[:2]
    tensor = tf.stack([tf.as_string(width), tf.as_string(height), tf.io.encode_png(pixels)])
    return tf.summary.write(name, tensor, metadata=_metadata("images"))


def text(name, markdown):
    """Markdown text (TensorBoard's Text tab)."""
    return tf.summary.write(name, tf.constant(markdown), metadata=_metadata("text"))


def duration(seconds):
    """``1h05m`` or ``4m09s``."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"

