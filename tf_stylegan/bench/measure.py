"""Timing, peak memory, the GFLOP/s roofline of plain 3x3 convolutions, and the op profile of a
function (TensorFlow's profiler)."""

import collections
import dataclasses
import glob
import os
import resource
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

# (channels, size): the plain 3x3 convs, batch 4, whose higher GFLOP/s is the roofline.
ROOFLINE_CONVS = ((512, 32), (128, 128))


@dataclasses.dataclass
class Measurement:
    name: str
    seconds: float  # median seconds per call
    gflop: float  # GFLOP per call

    @property
    def gflops(self):
        return self.gflop / self.seconds


def peak_rss_mib():
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_call(fn, repeats, warmup=2):
    """Median wall time of ``fn()`` (outputs fetched), after ``warmup`` untimed calls."""
    for _ in range(warmup):
        np.asarray(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def roofline(batch=4, repeats=10):
    """GFLOP/s of the plain convs in :data:`ROOFLINE_CONVS` (a list of Measurement)."""
    results = []
    for channels, size in ROOFLINE_CONVS:
        x = tf.random.normal([batch, size, size, channels])
        kernel = tf.random.normal([3, 3, channels, channels])
        conv = tf.function(lambda: tf.nn.conv2d(x, kernel, 1, "SAME"))
        seconds = time_call(conv, repeats)
        gflop = 2 * batch * size * size * 9 * channels * channels / 1e9
        results.append(Measurement(f"conv3x3 {channels}->{channels} @{size}x{size}, batch {batch}",
                                   seconds, gflop))
    return results


# Executor events that enclose the kernels they run: counting them would count those twice.
_ENCLOSING_EVENTS = ("Process", "ParallelFor", "ExecutorState::Process")


def op_profile(run, calls):
    """Kernel time per call of ``run`` by op type, from TensorFlow's profiler: a list of
    (op type, milliseconds per call), longest first (``calls`` calls traced after one untraced)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    run()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            for _ in range(calls):
                run()
        finally:
            tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
            with open(path, "rb") as file:
                space.MergeFromString(file.read())
    totals = collections.Counter()
    for plane in space.planes:
        names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                op_type = names.get(event.metadata_id, "?").split(":")[-1]
                if op_type not in _ENCLOSING_EVENTS:
                    totals[op_type] += event.duration_ps / 1e9 / calls
    return totals.most_common()
