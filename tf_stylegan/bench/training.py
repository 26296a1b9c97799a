"""``bench train``: images/s of the trainer's step alone and inside its loop, per phase of a schedule."""

import dataclasses
import functools
import math
import tempfile

import numpy as np
import tensorflow as tf

from tf_stylegan import data
from tf_stylegan.bench.measure import op_profile, peak_rss_mib, time_call
from tf_stylegan.nn.discriminator import Discriminator
from tf_stylegan.nn.generator import Generator
from tf_stylegan.training import schedule
from tf_stylegan.training.losses import LogisticR1


def phase_label(phase):
    return f"{phase.resolution}²" + ("" if phase.stable else " fade")


def _synthetic_dataset(network_resolution, channels=3, count=16):
    rng = np.random.default_rng(0)
    levels = {2 ** k: rng.integers(0, 256, (count, 2 ** k, 2 ** k, channels), dtype=np.uint8)
              for k in range(2, int(math.log2(network_resolution)) + 1)}
    return data.ImageDataset("synthetic", network_resolution, channels, levels)


def train_speed(phase, network_resolution, repeats=5, loop_ticks=2, r1_gamma=10.0, r1_interval=1,
                generator=Generator, discriminator=Discriminator, channels=3, profile=False,
                mixed_precision=None, **network_kwargs):
    """Speed of one training phase (a :class:`~tf_stylegan.training.schedule.Phase`) of a
    ``network_resolution`` run, on synthetic images: a dict of ``step_seconds`` (the step function
    alone, median of ``repeats``; with lazy R1 the mean over ``r1_interval`` steps, one with the R1 update),
    ``loop_images_per_s`` and ``outside_graph`` (the trainer's own loop: its last of ``loop_ticks``
    progress ticks of 8 groups of steps, samples and checkpoints left out; None for ``loop_ticks=0``),
    ``peak_rss_mib``, and with ``profile`` ``op_ms``: :func:`op_profile` of one step (of ``r1_interval``
    steps with lazy R1).

    ``generator`` / ``discriminator`` build the networks (e.g. gin-configured factories);
    ``network_kwargs`` are passed to both (the discriminator takes only the width arguments);
    ``mixed_precision`` is the trainer's (None, 'float16' or 'bfloat16').
    """
    from tf_stylegan.training.trainer import Trainer

    minibatch_repeats = 4
    tick_kimg = 8 * minibatch_repeats * phase.minibatch / 1000
    fixed = dataclasses.replace(phase, tick_kimg=tick_kimg)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(
            run_dir, _synthetic_dataset(network_resolution, channels),
            generator=functools.partial(generator, **network_kwargs),
            discriminator=functools.partial(discriminator, **_discriminator_kwargs(network_kwargs)),
            loss=LogisticR1(r1_gamma, r1_interval), schedule=lambda *args, **kwargs: fixed,
            total_kimg=loop_ticks * tick_kimg, minibatch_repeats=minibatch_repeats, checkpoint_kimg=10 ** 9,
            image_snapshot_kimg=10 ** 9, mixed_precision=mixed_precision,
            strategy=tf.distribute.MirroredStrategy(["/cpu:0"]), print_fn=lambda *args: None)
        trainer._set_phase(fixed)
        batches = trainer.real_batches(phase.resolution, phase.minibatch, 0)
        step = trainer.train_step(phase.resolution, phase.minibatch)
        beta = tf.constant(schedule.gs_beta(phase.minibatch), tf.float32)
        counter = iter(range(10 ** 9))
        interval = trainer.loss.regularization_interval

        def run_steps():
            for index in range(interval):
                regularize = interval > 1 and index == 0
                metrics = step(next(batches), tf.constant([0, next(counter)], tf.int64), beta, regularize)
            return metrics["Loss/D"]

        step_seconds = time_call(run_steps, repeats) / interval
        op_ms = op_profile(run_steps, 3) if profile else None
        loop = dict(loop_images_per_s=None, outside_graph=None)
        if loop_ticks:
            for variable in (trainer.cur_nimg, trainer.step_count):
                variable.assign(0)
            trainer.train()  # the same traced step, inside the trainer's loop
            loop = dict(loop_images_per_s=trainer.last_tick["images_per_s"],
                        outside_graph=trainer.last_tick["outside_graph"])
        return dict(step_seconds=step_seconds, peak_rss_mib=peak_rss_mib(), op_ms=op_ms, **loop)


def _discriminator_kwargs(network_kwargs):
    keys = ("fmap_base", "fmap_decay", "fmap_max")
    return {key: value for key, value in network_kwargs.items() if key in keys}


def run_train(resolutions=(32, 64), network_resolutions=(1024,), batch=8, repeats=5, r1_gamma=10.0,
              print_fn=print, generator=Generator, discriminator=Discriminator, r1_interval=1, phases=None,
              channels=3, profile_top=0, mixed_precision=None, step_only=False, **network_kwargs):
    """Runs the training benchmark, prints the table and returns its rows as dicts; with
    ``profile_top`` each row is followed by the step's ``profile_top`` longest op types; ``step_only``
    leaves out the trainer's loop (its columns print "-"), which at paper widths takes minutes per phase.

    ``phases``: {network resolution: [Phase, ...]} to measure (e.g. a gin schedule's
    :func:`~tf_stylegan.training.schedule.schedule_phases`); default: the stable phase of each of
    ``resolutions`` with minibatch ``batch`` and the official learning rates, inside networks of each of
    ``network_resolutions``.
    """
    every = "every step" if r1_interval == 1 else f"every {r1_interval} steps (lazy)"
    print_fn(f"tf-stylegan bench train: R1 gamma {r1_gamma} {every}, style mixing 0.9, fresh noise, "
             f"synthetic images, {mixed_precision or 'float32'}; step = the step function alone, loop = the "
             f"trainer's loop; TensorFlow {tf.__version__}")
    print_fn(f"{'phase':>9} {'network':>8} {'batch':>6} {'step img/s':>11} {'loop img/s':>11} "
             f"{'outside graph':>14} {'peak RSS MiB':>13}")
    if phases is None:
        phases = {network: [schedule.Phase(0.0, math.log2(network // r), r, 0.0, batch, 0.001, 0.001, 1.0)
                            for r in resolutions if r <= network] for network in network_resolutions}
    rows = []
    for network_resolution, network_phases in phases.items():
        for phase in network_phases:
            figures = train_speed(phase, network_resolution, repeats, loop_ticks=0 if step_only else 2,
                                  r1_gamma=r1_gamma, r1_interval=r1_interval,
                                  generator=generator, discriminator=discriminator,
                                  channels=channels, profile=profile_top > 0,
                                  mixed_precision=mixed_precision, **network_kwargs)
            row = dict(phase=phase_label(phase), resolution=phase.resolution, fade=phase.fade,
                       network_resolution=network_resolution, batch=phase.minibatch,
                       images_per_s=phase.minibatch / figures["step_seconds"],
                       ms_per_step=1000 * figures["step_seconds"],
                       loop_images_per_s=figures["loop_images_per_s"],
                       outside_graph=figures["outside_graph"], peak_rss_mib=figures["peak_rss_mib"])
            rows.append(row)
            loop = ("-", "-") if step_only else (f"{row['loop_images_per_s']:.2f}",
                                                 f"{100 * row['outside_graph']:.0f}%")
            print_fn(f"{row['phase']:>9} {network_resolution:>7}² {phase.minibatch:>6} "
                     f"{row['images_per_s']:11.2f} {loop[0]:>11} {loop[1]:>14} {row['peak_rss_mib']:13.0f}")
            if profile_top:
                row["op_ms"] = figures["op_ms"]
                total = sum(ms for _, ms in figures["op_ms"])
                print_fn(f"{'':>9} kernels {total:.1f} ms per step (both threads): " + ", ".join(
                    f"{op} {ms:.1f} ({100 * ms / total:.0f}%)" for op, ms in figures["op_ms"][:profile_top]))
    return rows
