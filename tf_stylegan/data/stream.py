"""The deterministic input pipeline: epoch permutations, mirroring, sharding, exact resume."""

import os

import numpy as np
import tensorflow as tf

from tf_stylegan.data import dataset
from tf_stylegan.data.errors import DataError
from tf_stylegan.data.records import (
    RecordFile,
    count_records,
    decode_records,
    first_record,
    read_level,
    record_dataset,
)


def seed_pair(seed, counter):
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(counter, tf.int64)])


def permuted_batches(n, batch_size, seed, start_index):
    """Batches of (image indices [B], mirror flags [B]) of the epoch-permutation stream over n images."""
    first_epoch, first_offset = divmod(start_index, n)

    def epoch(e):
        keys = tf.random.stateless_uniform([n], seed_pair(seed, 2 * e), dtype=tf.float64, alg="philox")
        perm = tf.cast(tf.argsort(keys, stable=True), tf.int64)
        flips = tf.random.stateless_uniform([n], seed_pair(seed, 2 * e + 1), alg="philox") < 0.5
        offset = tf.cast(e == first_epoch, tf.int64) * first_offset
        return tf.data.Dataset.from_tensor_slices((perm[offset:], flips[offset:]))

    return tf.data.Dataset.counter(first_epoch).flat_map(epoch).batch(batch_size, drop_remainder=True)


def ordered_batches(images, batch_size, limit=None):
    """The first ``limit`` (default: all) images at full resolution, in dataset order, as uint8
    batches [B, r, r, C] (the last may be smaller); no shuffling or mirroring (for metrics)."""
    count = images.num_images if limit is None else min(int(limit), images.num_images)
    source = images.levels[images.resolution]  # an array, or a TFRecord file read only as far as needed
    if isinstance(source, np.ndarray):
        for start in range(0, count, batch_size):
            yield source[start:min(start + batch_size, count)]
        return
    shape = (images.num_channels, images.resolution, images.resolution)  # records hold CHW
    for records in record_dataset(source).take(count).batch(batch_size):
        yield decode_records(records, shape, source).numpy()


def real_images_pipeline(images, batch_size, seed, start_index=0, mirror_augment=True, num_shards=1,
                         shard_index=0, labels=None):
    """An infinite, deterministic ``tf.data.Dataset`` of uint8 batches [batch_size, r, r, C], or with
    ``labels`` (float32 [N, label_size], row k = image k's) of (images, their labels
    [batch_size, label_size]).

    ``images`` is a uint8 array [N, r, r, C] or the path of one TFRecord level. Element i = e*N + p of
    the stream (epoch e, position p) is image ``perm_e[p]``, where ``perm_e`` is the argsort of N
    uniforms drawn statelessly from key (seed, 2e); with ``mirror_augment`` it is flipped left-right iff
    the p-th of N uniforms drawn from key (seed, 2e+1) is below 0.5. The stream starts at element
    ``start_index`` (skipped elements cost nothing) and is cut into consecutive batches b = 0, 1, ...
    counted from there; shard ``shard_index`` of ``num_shards`` gets the batches with
    b % num_shards == shard_index (to resume after each of S shards took T batches, add S*T*batch_size
    to ``start_index``).

    A TFRecord level (image k = record k) larger than ``dataset.MAX_IN_MEMORY_BYTES`` gives the same stream
    without being held in memory: each batch reads its records by byte offset (see ``RecordFile``), so
    starting at any element, e.g. resuming at millions of images shown, reads only the records delivered.
    """
    if batch_size < 1 or start_index < 0 or not 0 <= shard_index < num_shards:
        raise ValueError(f"need batch_size >= 1, start_index >= 0 and 0 <= shard_index < num_shards, got "
                         f"{batch_size}, {start_index}, {shard_index}, {num_shards}")
    seed, start_index = int(seed), int(start_index)
    if isinstance(images, (str, os.PathLike)) and not os.path.isfile(images):
        raise DataError(f"{images}: no such TFRecord file")
    streamed = (isinstance(images, (str, os.PathLike))
                and os.path.getsize(images) > dataset.MAX_IN_MEMORY_BYTES)
    if streamed:
        path = str(images)
        shape, _ = first_record(path)
        records = RecordFile(path)
        batches = permuted_batches(records.count, batch_size, seed, start_index)
        load = lambda ids, flips: (decode_records(records.read(ids, batch_size), shape, path), flips)
    else:
        if isinstance(images, (str, os.PathLike)):
            images = read_level(images, count_records(images))
        if (not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4
                or images.shape[3] not in (1, 3) or not len(images)):
            raise DataError(f"real images must be a TFRecord path or a non-empty uint8 array "
                            f"[N, r, r, 1 or 3], got {getattr(images, 'dtype', type(images).__name__)} "
                            f"{list(np.shape(images))}")
        with tf.device("/cpu:0"):
            tensor = tf.convert_to_tensor(images)
        batches = permuted_batches(len(images), batch_size, seed, start_index)
        load = lambda ids, flips: (tf.gather(tensor, ids), flips)
    if labels is not None:
        labels = np.asarray(labels, np.float32)
        num_images = records.count if streamed else len(images)
        if labels.ndim != 2 or len(labels) != num_images:
            raise DataError(f"{len(labels)} labels {list(labels.shape)} for {num_images} images: need "
                            "one row [label_size] per image")
        with tf.device("/cpu:0"):
            label_tensor = tf.convert_to_tensor(labels)

    def mirror(image_and_flip):
        image, flip = image_and_flip
        return tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)

    def make_batch(payload, extra):
        batch, flips = load(payload, extra)  # [B, r, r, C], [B]
        # Measured on CPU: one select over the batch is fastest up to 16x16 (7x at 4x4), a cond per
        # image from 32x32 up (7x at 256x256).
        if mirror_augment and batch.shape[1] <= 16:
            batch = tf.where(flips[:, None, None, None], tf.reverse(batch, axis=[2]), batch)
        elif mirror_augment:
            batch = tf.map_fn(mirror, (batch, flips), fn_output_signature=batch.dtype)
        return batch if labels is None else (batch, tf.gather(label_tensor, payload))

    batches = batches.shard(num_shards, shard_index)  # before loading: a shard reads its own records only
    return batches.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True) \
        .prefetch(tf.data.AUTOTUNE)
