"""``tf-stylegan bench``: speed figures, not tests.

``bench generator``: images/s of generator inference (eager call and ``tf.function``), the
GFLOP/s achieved (conv and dense multiply-accumulates x 2, counted from the network's own
layers), peak memory, and, in the same run, the GFLOP/s of plain 3x3 convolutions as the
roofline the generator is compared with.

``bench train``: training images/s of the trainer's own step (D update with R1, Gs update,
G update, style mixing, fresh noise) alone and inside the trainer's loop (input pipeline, host
work), with the share of the loop's time spent outside the step function: in the stable phase of
each given resolution inside networks of each given full resolution, or in every phase of a gin
config's schedule.

``bench export``: sizes and per-image latency of a generator as Keras, SavedModel and TFLite.

``bench fid``: seconds per 1,000 images of FID's Inception-v3 feature extraction.

``bench quality``: trains a gin config for a wall-time budget, then prints the emoji Fréchet distance
of G and Gs, the kimg reached and the images/s; or, with ``--calibrate``, the meter's calibration.

Modules: :mod:`~tf_stylegan.bench.measure` (timing, memory, the convolution roofline, the op
profile), :mod:`~tf_stylegan.bench.generator` (inference, export), :mod:`~tf_stylegan.bench.training`
(the train step and loop per phase), :mod:`~tf_stylegan.bench.quality` (the meter after a time budget,
FID's feature extraction).
"""
