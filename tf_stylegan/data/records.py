"""Reading official TFRecord files: record counts, whole levels, and single records by byte offset."""

import contextlib
import os
import re
import struct

import numpy as np
import tensorflow as tf

from tf_stylegan.data.errors import DataError

LEVEL_FILE = re.compile(r"^(?P<name>.+)-r(?P<log2>\d\d)\.tfrecords$")


def record_dataset(path):
    return tf.data.TFRecordDataset(str(path), buffer_size=16 << 20)


@contextlib.contextmanager
def read_errors(path):
    """Translate TensorFlow read failures (corrupt or truncated files) into DataError."""
    try:
        yield
    except tf.errors.OpError as error:
        raise DataError(f"{path}: cannot read the TFRecords ({error.message.strip()})") from error


def count_records(path):
    with read_errors(path):
        return int(record_dataset(path).reduce(np.int64(0), lambda count, _: count + 1))


def first_record(path):
    """(shape [C, H, W], serialized length) of the first record of ``path``."""
    with read_errors(path):
        first = next(iter(record_dataset(path).take(1)), None)
    if first is None:
        raise DataError(f"{path}: holds no records")
    serialized = first.numpy()
    example = tf.train.Example.FromString(serialized)
    features = example.features.feature
    if "shape" not in features or "data" not in features:
        raise DataError(f"{path}: record 0 is not an image Example (it needs 'shape' and 'data', "
                        f"it has {sorted(features)})")
    shape = tuple(features["shape"].int64_list.value)
    data = features["data"].bytes_list.value
    if len(shape) != 3 or len(data) != 1 or len(data[0]) != np.prod(shape):
        raise DataError(f"{path}: record 0 has shape {list(shape)} and {sum(map(len, data))} data bytes; "
                        "expected [C, H, W] and C*H*W bytes")
    return shape, len(serialized)


FEATURES = {"shape": tf.io.FixedLenFeature([3], tf.int64), "data": tf.io.FixedLenFeature([], tf.string)}


def parsed_chunks(path, features=FEATURES):
    """Yield (first record index, parsed features as NumPy) for chunks of 256 records of ``path``."""
    chunks = record_dataset(path).batch(256).map(lambda records: tf.io.parse_example(records, features))
    start = 0
    with read_errors(path):
        for chunk in chunks.as_numpy_iterator():
            yield start, chunk
            start += len(chunk["shape"])


def check_shapes(path, start, shapes, expected):
    bad = np.flatnonzero(np.any(shapes != np.asarray(expected), axis=1))
    if bad.size:
        index = start + bad[0]
        raise DataError(f"{path}: record {index} has shape {shapes[bad[0]].tolist()}, but record 0 has "
                        f"{list(expected)}: one level must hold images of one shape")


def read_level(path, count):
    """All ``count`` images of one TFRecord level -> uint8 [count, H, W, C], checking every record."""
    expected, _ = first_record(path)
    channels, height, width = expected
    images = np.empty((count, height, width, channels), np.uint8)
    total = 0
    for start, chunk in parsed_chunks(path):
        check_shapes(path, start, chunk["shape"], expected)
        end = start + len(chunk["data"])
        if end > count:
            raise DataError(f"{path}: holds more than the expected {count} records")
        data = np.frombuffer(b"".join(chunk["data"]), np.uint8)
        images[start:end] = data.reshape(-1, channels, height, width).transpose(0, 2, 3, 1)  # NCHW -> NHWC
        total = end
    if total != count:
        raise DataError(f"{path}: holds {total} records, expected {count}")
    return images


def crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


CRC32C_TABLE = crc32c_table()


RECORD_OFFSETS = {}  # (path, size, mtime) -> int64 [N] record offsets of a TFRecord file of unequal records


def masked_crc32c(data):
    """The masked CRC-32C of a TFRecord frame (pure Python: for the 8-byte lengths only)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record_length(header):
    """The data length in a 12-byte TFRecord header (uint64 length, uint32 masked CRC of it), or None
    if the header is short or its CRC is wrong."""
    if len(header) < 12:
        return None
    length, crc = struct.unpack("<QI", header[:12])
    return length if masked_crc32c(header[:8]) == crc else None


class RecordFile:
    """Random access by index to the records of one uncompressed TFRecord file (a TFRecord is a
    12-byte header holding the data length and its CRC, the data, and a 4-byte CRC of the data).

    Records of one size, as the official files hold, sit at multiples of it: record k is found in O(1)
    (checked at the first, middle and last record). Otherwise the offsets come from one pass over the
    record headers that seeks over the data, kept per (path, size, modification time). A record is
    read from its offset by TensorFlow's TFRecord reader, which checks both CRCs, in C++ (Python in
    tf.data threads can hang the interpreter's exit).
    """

    def __init__(self, path):
        self.path = str(path)
        stat = os.stat(self.path)
        size = stat.st_size
        with open(self.path, "rb", buffering=0) as file:
            fd = file.fileno()
            first = record_length(os.pread(fd, 12, 0))
            if first is None:
                raise DataError(f"{self.path}: cannot read the TFRecords (no valid record header at byte 0)")
            self.stride, self.offsets, self.count = first + 16, None, size // (first + 16)
            if size % self.stride or any(record_length(os.pread(fd, 12, k * self.stride)) != first
                                         for k in (self.count // 2, self.count - 1)):
                key = (os.path.realpath(self.path), size, stat.st_mtime_ns)
                if key not in RECORD_OFFSETS:
                    RECORD_OFFSETS[key] = self._scan(fd, size)
                self.offsets, self.stride = RECORD_OFFSETS[key], None
                self.count = len(self.offsets)

    def _scan(self, fd, size):
        offsets, offset = [], 0
        while offset < size:
            length = record_length(os.pread(fd, 12, offset))
            if length is None or offset + length + 16 > size:
                raise DataError(f"{self.path}: cannot read the TFRecords (record {len(offsets)} "
                                f"at byte {offset} has a corrupt header or is truncated)")
            offsets.append(offset)
            offset += length + 16
        return np.asarray(offsets, np.int64)

    def _record(self, index):
        """A dataset of the one serialized record ``index`` (an int64 scalar tensor), read from its offset."""
        offset = index * self.stride if self.offsets is None else tf.gather(self.offsets, index)
        variant = tf.raw_ops.TFRecordDatasetV2(
            filenames=[self.path], compression_type="", buffer_size=tf.constant(0, tf.int64),
            byte_offsets=tf.reshape(offset, [1]))
        return tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string)).take(1)

    def read(self, indices, count):
        """The serialized records [count] of record indices [count] (an int64 tensor)."""
        records = tf.data.Dataset.from_tensor_slices(indices).flat_map(self._record)
        return records.batch(count, drop_remainder=True).get_single_element()


def decode_records(records, shape, path):
    """Serialized Examples [B] -> uint8 [B, H, W, C], failing if a record's shape is not ``shape``."""
    parsed = tf.io.parse_example(records, FEATURES)
    check = tf.debugging.assert_equal(parsed["shape"], tf.constant([shape], tf.int64),
                                      message=f"{path}: a record's shape differs from {list(shape)}")
    with tf.control_dependencies([check]):
        data = tf.io.decode_raw(parsed["data"], tf.uint8)  # [B, C*H*W]
    return tf.transpose(tf.reshape(data, [-1, *shape]), [0, 2, 3, 1])  # [B, C, H, W] -> [B, H, W, C]
