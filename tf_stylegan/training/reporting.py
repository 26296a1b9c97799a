"""What a run reports: TensorBoard summaries written with TensorFlow alone, the progress line and
its timing, sample grids and metric results.

``tf.summary.scalar`` and friends live in the ``tensorboard`` package, which training does
not need; these write the same event records (scalars, images, text plugins) through the
core ``tf.summary.write``, so TensorBoard reads them as usual. Call them under a default
writer: ``with writer.as_default(step=...)``.
"""

import json
import os
import time

import numpy as np
import tensorflow as tf

from tf_stylegan.images import image_grid, save_image, to_uint8
from tf_stylegan.progress import duration


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


def progress_line(nimg, total_nimg, phase, metrics, tick, eta_seconds):
    """The progress line of a tick. ``tick``: ``images_per_s``, ``outside_graph`` (share of the time
    outside the step function), ``skipped`` ({"D": n, "G": n} updates skipped this session)."""
    losses = "  ".join(f"{name.split('/')[-1]} {value:7.4f}" for name, value in sorted(metrics.items()))
    skipped = tick["skipped"]
    skipped = f"  skipped D {skipped['D']} G {skipped['G']}" if sum(skipped.values()) else ""
    return (f"kimg {nimg / 1000:9.3f}/{total_nimg / 1000:g}  {phase.resolution:>4}px  "
            f"fade {phase.fade:4.2f}  lod {phase.lod:5.3f}  {tick['images_per_s']:7.2f} img/s  "
            f"outside graph {100 * tick['outside_graph']:2.0f}%  {losses}{skipped}  "
            f"ETA {duration(eta_seconds)}")


def log_tick(writer, nimg, phase, metrics, tick):
    """A tick's TensorBoard scalars: the step's metrics, progress, speed, learning rates (``tick["D_lrate"]``:
    D's effective rate) and skipped updates."""
    with writer.as_default(step=nimg):
        for name, value in metrics.items():
            scalar(name, value)
        for name, value in (("Progress/kimg", nimg / 1000), ("Progress/lod", phase.lod),
                            ("Progress/resolution", phase.resolution), ("Progress/fade", phase.fade),
                            ("Speed/images_per_s", tick["images_per_s"]),
                            ("Speed/outside_graph_share", tick["outside_graph"]),
                            ("LearningRate/G", phase.G_lrate), ("LearningRate/D", tick["D_lrate"]),
                            ("Train/skipped_D", tick["skipped"]["D"]),
                            ("Train/skipped_G", tick["skipped"]["G"])):
            scalar(name, value)



class TickClock:
    """Times a progress tick: its images/s with maintenance (samples, checkpoints, metrics) left out, and the
    share of that time spent outside the step function (input pipeline, Python, host syncs)."""

    def __init__(self, nimg):
        self.restart(nimg)

    def restart(self, nimg):
        self.start_nimg, self.start_time = nimg, time.time()
        self.graph_seconds = self.maintenance_seconds = 0.0

    def figures(self, nimg):
        """{"images_per_s", "outside_graph"} of the tick so far, at ``nimg`` images."""
        seconds = max(time.time() - self.start_time - self.maintenance_seconds, 1e-9)
        return dict(images_per_s=(nimg - self.start_nimg) / seconds,
                    outside_graph=max(0.0, 1.0 - self.graph_seconds / seconds))


def grid_labels(labels, grid_size):
    """(grid size, labels of the sample grid [columns * rows, label_size]). One-hot labels: row i shows
    class i % label_size, with at least a row per class; other labels: those of the first images."""
    columns, rows = grid_size
    if np.all(np.sum(labels == 1, axis=1) == 1) and np.all(np.sum(labels != 0, axis=1) == 1):
        rows = max(rows, labels.shape[1])
        classes = np.repeat(np.arange(rows) % labels.shape[1], columns)  # [rows * columns], row-major
        return (columns, rows), np.eye(labels.shape[1], dtype=np.float32)[classes]
    return (columns, rows), np.resize(labels, (columns * rows, labels.shape[1])).astype(np.float32)


class SampleGrid:
    """The run's fixed sample grid: latents from the run's seed; with labels (:func:`grid_labels`), a row per
    class."""

    def __init__(self, grid_size, latent_size, seed, labels=None):
        self.size, self.labels = tuple(grid_size), None
        if labels is not None:
            self.size, self.labels = grid_labels(labels, grid_size)
        self.latents = np.random.RandomState(seed).randn(self.size[0] * self.size[1], latent_size).astype(
            np.float32)

    def render(self, Gs):
        """uint8 grid of ``Gs``'s images of the grid's latents (no truncation, stored noise)."""
        images = Gs(self.latents, truncation_psi=1.0, randomize_noise=False, labels=self.labels)
        return image_grid(to_uint8(images), self.size[0])


def write_samples(run_dir, writer, nimg, grid):
    """A uint8 sample grid as ``samples/fakes<nimg>.png`` (``nimg``: images shown so far) and, with a
    ``writer``, as TensorBoard's ``Samples/Gs``."""
    save_image(os.path.join(run_dir, "samples", f"fakes{nimg:09d}.png"), grid)
    if writer is not None:
        with writer.as_default(step=nimg):
            image("Samples/Gs", grid)


def record_metrics(run_dir, writer, nimg, phase, results):
    """Appends the metric ``results`` ({name: value}) to ``metrics.jsonl`` (kimg, the phase's resolution and
    lod, the values) and, with a ``writer``, logs them as ``Metrics/<name>``."""
    with open(os.path.join(run_dir, "metrics.jsonl"), "a") as file:
        file.write(json.dumps({"kimg": nimg / 1000, "resolution": phase.resolution, "lod": phase.lod,
                               **results}) + "\n")
    if writer is not None:
        with writer.as_default(step=nimg):
            for name, value in results.items():
                scalar(f"Metrics/{name}", value)
