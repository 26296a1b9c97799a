"""The StyleGAN trainer: progressive growing, style mixing, R1 / WGAN-GP, the moving-average
generator, exact resume, logs.

One ``tf.function`` step per resolution (:mod:`tf_stylegan.training.step`) runs through
``strategy.run``: a D update, the moving-average update of Gs, a G update. ``lod``, the learning
rates and Gs's beta are variables or tensors, so a step traces once per resolution; at resolution
r only the network blocks up to r run. All randomness of a step is drawn statelessly per sample
from (seed, step, sample index), so a run's result does not depend on the number of replicas and a
resumed run repeats exactly what an uninterrupted one would have done. Updates with non-finite
gradients are skipped and counted; checkpoints of non-finite weights are never written, and
``restore`` falls back past damaged checkpoints.
"""

import os
import signal
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from tf_stylegan.data import real_images_pipeline
from tf_stylegan.formats import snapshot
from tf_stylegan.nn import precision
from tf_stylegan.nn.discriminator import Discriminator
from tf_stylegan.nn.generator import Generator
from tf_stylegan.training import finetune, reporting
from tf_stylegan.training.adam import FusedAdam
from tf_stylegan.training.checkpoints import RunCheckpoints, is_chief
from tf_stylegan.training.losses import LogisticR1
from tf_stylegan.training.schedule import (
    Every,
    gs_beta,
    optimizer_reset_needed,
    schedule_phases,
    training_schedule,
)
from tf_stylegan.training.step import SkippedUpdates, TrainStep, all_finite


class NonFiniteLossError(RuntimeError):
    """Updates were skipped for non-finite gradients too many steps in a row, or the weights became
    non-finite: training stopped, the last checkpoint is intact."""


class TrainingInterrupted(Exception):
    """Ctrl-C or SIGTERM: a checkpoint was written before stopping."""


def default_strategy():
    """MultiWorkerMirroredStrategy when TF_CONFIG is set, else MirroredStrategy over the local
    GPUs (or the CPU)."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy()


class Trainer:
    """Owns the strategy, G, D, Gs, both Adam optimizers, the schedule, checkpoints and logs."""

    def __init__(
        self,
        run_dir,
        dataset,  # data.ImageDataset
        generator=Generator,  # callable(**kwargs) -> Generator (gin passes a configured class)
        discriminator=Discriminator,
        loss=None,  # LogisticR1 (default) or WGANGP
        schedule=training_schedule,  # callable(cur_nimg, resolution_log2, num_replicas)
        total_kimg=25000,
        seed=0,
        mirror_augment=True,
        G_smoothing_kimg=10.0,
        minibatch_repeats=4,
        reset_optimizer_on_lod_change=True,
        adam_beta1=0.0,
        adam_beta2=0.99,
        adam_epsilon=1e-8,
        checkpoint_kimg=50,  # also written at the end and on Ctrl-C / SIGTERM
        image_snapshot_kimg=10,
        tick_kimg=None,  # progress line interval (default: the schedule's tick_kimg)
        max_checkpoints=3,
        grid_size=(8, 4),  # columns, rows of the sample grid
        metrics=(),  # metrics.FID / metrics.PPL instances, evaluated on Gs
        metrics_kimg=None,  # metrics interval (None: at the end only)
        max_skipped_steps=10,  # stop after this many steps in a row with a skipped (non-finite) update
        init_from=None,  # fine-tuning: G, D, Gs from an official pickle, a snapshot or a run (finetune.py)
        freeze_d_layers=0,  # Freeze-D: D's this many highest-resolution blocks stay fixed
        augment=None,  # callable() -> augment.Augmentation (ADA or a fixed p) of every image D sees
        mixed_precision=None,  # 'float16' or 'bfloat16': G and D compute in it (nn/precision.py); Gs: float32
        strategy=None,
        print_fn=print,
    ):
        self.run_dir = os.path.abspath(run_dir)
        self.dataset = dataset
        self.loss = loss or LogisticR1()
        self.schedule = schedule
        self.total_nimg = int(round(total_kimg * 1000))
        self.seed = int(seed)
        self.mirror_augment = mirror_augment
        self.G_smoothing_kimg = G_smoothing_kimg
        self.minibatch_repeats = int(minibatch_repeats)
        self.reset_optimizer_on_lod_change = reset_optimizer_on_lod_change
        self.checkpoint_nimg = int(checkpoint_kimg * 1000)
        self.image_snapshot_nimg = int(image_snapshot_kimg * 1000)
        self.tick_kimg = tick_kimg
        self.metrics = list(metrics)
        self.metrics_nimg = None if metrics_kimg is None else int(metrics_kimg * 1000)
        self.skipped = SkippedUpdates(max_skipped_steps)
        # The last progress tick: images/s (samples, checkpoints and metrics left out) and the share
        # of that time spent outside the step function (input pipeline, Python, host syncs).
        self.last_tick = None
        self._Gs_inference = None
        self.print = print_fn
        self.strategy = strategy or default_strategy()
        self.num_replicas = self.strategy.num_replicas_in_sync
        self.resolution_log2 = int(np.log2(dataset.resolution))
        # Every phase the run will reach, now: a schedule error (e.g. a minibatch that cannot feed the
        # replicas at 512x512) stops the run before it starts, not days into it.
        schedule_phases(lambda nimg, _: self.phase(nimg), self.resolution_log2, until_nimg=self.total_nimg)

        self.mixed_precision = mixed_precision
        policy = precision.policy_name(mixed_precision)
        keras.utils.set_random_seed(self.seed)  # the same initial weights on every worker and every run
        with self.strategy.scope():
            shared = dict(resolution=dataset.resolution, num_channels=dataset.num_channels,
                          label_size=dataset.label_size)
            named = dict(shared, class_names=dataset.class_names)  # the generators name the classes
            with precision.dtype_policy(policy):
                self.G = generator(name="G", **named)
                self.D = discriminator(name="D", **shared)
            self.Gs = generator(name="Gs", dtype="float32", **named)
            for network in (self.G, self.D, self.Gs):
                network.build()
            finetune.freeze_discriminator_blocks(self.D, freeze_d_layers)
            # Lazy regularization every k minibatches adds one D update per k: D's Adam runs with the
            # learning rate times k / (k + 1) and the betas to that power (StyleGAN2's mb_ratio).
            interval = self.loss.regularization_interval
            self.D_update_ratio = interval / (interval + 1) if interval > 1 else 1.0
            self.G_opt = FusedAdam(learning_rate=0.001, name="G_opt", beta_1=adam_beta1, beta_2=adam_beta2,
                                   epsilon=adam_epsilon)
            self.D_opt = FusedAdam(learning_rate=0.001, name="D_opt", epsilon=adam_epsilon,
                                   beta_1=adam_beta1 ** self.D_update_ratio,
                                   beta_2=adam_beta2 ** self.D_update_ratio)
            self.G_opt.build(self.G.trainable_variables)
            self.D_opt.build(self.D.trainable_variables)
            # float16 gradients need loss scaling (bfloat16 has float32's range).
            self.loss_scales = {}
            if mixed_precision == "float16":
                self.loss_scales = {name: precision.DynamicLossScale(name) for name in ("G", "D")}
            self.augmentation = augment() if augment else None
            self.cur_nimg = tf.Variable(0, dtype=tf.int64, trainable=False, name="cur_nimg")
            self.step_count = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.prev_lod = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="prev_lod")
        for target, source in zip(self.Gs.variables, self.G.variables):
            target.assign(source)  # Gs starts as a copy of G, as official
        if init_from:
            finetune.start_from(init_from, self.G, self.D, self.Gs, first_lod=self.phase(0).lod)
        checked = [v for owner in (self.G, self.D, self.Gs, self.G_opt, self.D_opt) for v in owner.variables
                   if v.dtype in ("float32", "float16", "bfloat16")]
        self._weights_finite = tf.function(lambda: all_finite([tf.convert_to_tensor(v) for v in checked]))

        self.checkpoints = RunCheckpoints(self.run_dir, self.strategy, dict(
            G=snapshot.variable_tree(self.G), D=snapshot.variable_tree(self.D),
            Gs=snapshot.variable_tree(self.Gs),
            G_opt={str(i): v for i, v in enumerate(self.G_opt.variables)},
            D_opt={str(i): v for i, v in enumerate(self.D_opt.variables)},
            cur_nimg=self.cur_nimg, step=self.step_count, prev_lod=self.prev_lod,
            **{f"{name}_loss_scale": scale.log2_scale for name, scale in self.loss_scales.items()},
            **({"augment": self.augmentation.variables} if self.augmentation else {}),
        ), max_checkpoints, print_fn)
        self._steps = {}
        self._stop_requested = False
        if self.metrics and self.is_chief:
            from tf_stylegan.metrics import prepare

            prepare(self.metrics)  # a missing weights file stops the run before it starts
        # Conditional runs: the dataset's labels (G's labels are drawn from them; the grid's too).
        self.label_table = None if dataset.labels is None else tf.constant(dataset.labels)
        self.grid = reporting.SampleGrid(grid_size, self.G.latent_size, self.seed, dataset.labels)

    # ------------------------------------------------------------------ checkpoints

    @property
    def is_chief(self):
        """True on the one process that writes checkpoints, samples and logs."""
        return is_chief(self.strategy)

    def save(self):
        """Writes a checkpoint (atomically: the index only names complete checkpoints); refuses
        non-finite weights or optimizer state (NonFiniteLossError), keeping the previous checkpoints."""
        if not bool(self._weights_finite()):
            kimg = self.cur_nimg.numpy() / 1000
            raise NonFiniteLossError(
                f"the weights or optimizer state became non-finite at {kimg:.3f} kimg: no checkpoint written;"
                f" the last one in {self.checkpoints.directory} is intact. Resume from "
                "it with a lower learning rate or a larger R1 gamma.")
        return self.checkpoints.save(int(self.cur_nimg.numpy()))

    def write_network_config(self):
        """The networks' configs as ``networks.json``, so ``load_networks(run_dir)`` reads checkpoints."""
        if self.is_chief:
            snapshot.write_config(self.run_dir, {"G": self.G, "D": self.D, "Gs": self.Gs},
                                  metadata={"run_dir": self.run_dir})

    # ------------------------------------------------------------------ the train step

    def phase(self, nimg):
        """The schedule's Phase after ``nimg`` images."""
        return self.schedule(nimg, self.resolution_log2, num_replicas=self.num_replicas)

    def train_step(self, resolution, global_batch):
        """The distributed :class:`~tf_stylegan.training.step.TrainStep` of ``resolution`` and
        ``global_batch``: ``step(reals, seed [2] int64, Gs beta) -> metrics``."""
        key = (resolution, global_batch)
        if key not in self._steps:
            if global_batch % self.num_replicas:
                raise ValueError(f"minibatch {global_batch} is not divisible by {self.num_replicas} replicas")
            self._steps[key] = TrainStep(self, resolution, global_batch)
        return self._steps[key]

    @property
    def trace_counts(self):
        """resolution -> number of traces of its train steps."""
        counts = {}
        for (resolution, _), step in self._steps.items():
            counts[resolution] = counts.get(resolution, 0) + step.traces
        return counts

    # ------------------------------------------------------------------ data

    def real_batches(self, resolution, global_batch, start_index):
        """Iterator over distributed uint8 batches (with their labels, for a labelled dataset) of the stream
        from ``start_index``."""
        if global_batch % self.num_replicas:
            raise ValueError(f"minibatch {global_batch} is not divisible by {self.num_replicas} replicas")
        images = self.dataset.source(resolution)
        local = global_batch // self.num_replicas

        def dataset_fn(context):
            return real_images_pipeline(
                images, local, seed=self.seed, start_index=start_index, mirror_augment=self.mirror_augment,
                num_shards=context.num_input_pipelines, shard_index=context.input_pipeline_id,
                labels=self.dataset.labels)

        return iter(self.strategy.distribute_datasets_from_function(dataset_fn))

    # ------------------------------------------------------------------ the loop

    def _set_phase(self, phase):
        lod = float(phase.lod)
        if self.reset_optimizer_on_lod_change and optimizer_reset_needed(
                float(self.prev_lod.numpy()), lod):
            for optimizer in (self.G_opt, self.D_opt):  # fresh Adam state; the learning rates are set below
                for variable in optimizer.variables:
                    variable.assign(tf.zeros_like(variable))
        self.prev_lod.assign(lod)
        for variable in (self.G.lod, self.D.lod, self.Gs.lod):
            variable.assign(lod)
        self.G_opt.learning_rate = phase.G_lrate
        self.D_opt.learning_rate = phase.D_lrate * self.D_update_ratio

    def _count_skips(self, metrics):
        """Counts the step's skipped updates (popping their flags from ``metrics``); NonFiniteLossError
        after ``max_skipped_steps`` steps in a row with one."""
        skipped = self.skipped.count(metrics)
        if skipped:
            losses = ", ".join(f"{name} {value:.4g}" for name, value in sorted(metrics.items()))
            kimg, step = self.cur_nimg.numpy() / 1000, self.step_count.numpy()
            raise NonFiniteLossError(
                f"{self.skipped.in_a_row} steps in a row had non-finite gradients ({'/'.join(skipped)} "
                f"update skipped; {losses}) at {kimg:.3f} kimg (step {step}): training stopped. The last "
                f"checkpoint in {self.checkpoints.directory} is intact; resume from it"
                " with a lower learning rate or a larger R1 gamma, or check the data for NaN / Inf.")

    def train(self, max_seconds=None):
        """Runs the schedule to ``total_kimg`` (or, with ``max_seconds``, until the first group of steps
        that ends past that wall time: a checkpoint is written and training returns normally, as for
        a time-budgeted benchmark); returns the last metrics. Checkpoints at every
        ``checkpoint_kimg``, at the end, and on Ctrl-C / SIGTERM: the first signal stops at the end
        of the current group of ``minibatch_repeats`` steps (where an uninterrupted run would also
        stand), writes a checkpoint and raises TrainingInterrupted; a second one stops at once
        without writing (the previous checkpoint stays intact)."""
        os.makedirs(self.run_dir, exist_ok=True)
        self.write_network_config()
        writer = tf.summary.create_file_writer(os.path.join(self.run_dir, "logs")) if self.is_chief else None
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            handlers = {sig: signal.signal(sig, self._request_stop)
                        for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._loop(writer, max_seconds)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            if writer is not None:
                writer.close()

    def _request_stop(self, signum, frame):
        if self._stop_requested:
            raise KeyboardInterrupt
        self._stop_requested = True
        self.print(f"{signal.Signals(signum).name}: stopping after the current steps to write a checkpoint "
                   "(send it again to stop at once without one)")

    def _loop(self, writer, max_seconds=None):
        nimg = int(self.cur_nimg.numpy())
        checkpoints, samples = Every(self.checkpoint_nimg, nimg), Every(self.image_snapshot_nimg, nimg)
        measurements = Every(self.metrics_nimg if self.metrics else None, nimg)
        start_nimg, start_time, step_metrics = nimg, time.time(), {}
        if nimg == 0:
            self._write_samples(writer)
        iterator, iterator_key = None, None
        tick = reporting.TickClock(nimg)
        interval = self.loss.regularization_interval
        step_index = int(self.step_count.numpy())
        while nimg < self.total_nimg:
            phase = self.phase(nimg)
            self._set_phase(phase)
            if iterator_key != (phase.resolution, phase.minibatch):
                iterator = self.real_batches(phase.resolution, phase.minibatch, nimg)
                iterator_key = (phase.resolution, phase.minibatch)
            step = self.train_step(phase.resolution, phase.minibatch)
            beta = tf.constant(gs_beta(phase.minibatch, self.G_smoothing_kimg), tf.float32)
            for _ in range(self.minibatch_repeats):
                seed = tf.constant([self.seed, step_index], tf.int64)
                regularize = interval > 1 and step_index % interval == 0
                reals = next(iterator)
                graph_start = time.time()
                metrics = step(reals, seed, beta, regularize)
                # Metrics of the lazy regularization step stay at their last value between its steps.
                step_metrics = {**step_metrics, **{name: float(value) for name, value in metrics.items()}}
                tick.graph_seconds += time.time() - graph_start
                self._count_skips(step_metrics)
                self.cur_nimg.assign_add(phase.minibatch)
                self.step_count.assign_add(1)
                nimg, step_index = nimg + phase.minibatch, step_index + 1
                if nimg >= self.total_nimg:
                    break
            out_of_time = max_seconds is not None and time.time() - start_time >= max_seconds
            done = nimg >= self.total_nimg or out_of_time
            tick_done = nimg - tick.start_nimg >= int((self.tick_kimg or phase.tick_kimg) * 1000) or done
            if tick_done:
                self.last_tick = tick.figures(nimg)
                mean_speed = (nimg - start_nimg) / max(time.time() - start_time, 1e-9)
                self._report(phase, step_metrics, mean_speed, writer)
            maintenance_start = time.time()
            if samples.due(nimg) or done:
                self._write_samples(writer)
            if checkpoints.due(nimg) or done or self._stop_requested:
                path = self.save()
                if self._stop_requested and not done:
                    self.print(f"interrupted at {nimg / 1000:.3f} kimg; checkpoint written: {path}")
                    raise TrainingInterrupted(path)
            # After the checkpoint: a long or failing metric costs no training.
            if self.metrics and (measurements.due(nimg) or done):
                self.evaluate_metrics(writer)
            if tick_done:
                tick.restart(nimg)
            else:
                tick.maintenance_seconds += time.time() - maintenance_start
            if done:
                break
        return step_metrics

    def _report(self, phase, metrics, mean_speed, writer):
        nimg = int(self.cur_nimg.numpy())
        tick = dict(self.last_tick, D_lrate=phase.D_lrate * self.D_update_ratio, skipped=self.skipped.counts)
        remaining = (self.total_nimg - nimg) / max(mean_speed, 1e-9)
        self.print(reporting.progress_line(nimg, self.total_nimg, phase, metrics, tick, remaining))
        if writer is not None:
            reporting.log_tick(writer, nimg, phase, metrics, tick)

    def evaluate_metrics(self, writer=None):
        """Runs the metrics on Gs (chief only, after the checkpoint of the same kimg): prints them, logs
        ``Metrics/<name>`` to TensorBoard and appends a line to ``metrics.jsonl`` (kimg, the phase's
        resolution and lod, the values); returns {name: value}.
        A failing metric is reported and training goes on."""
        if not self.is_chief:
            return {}
        from tf_stylegan.deploy import inference
        from tf_stylegan.metrics import evaluate

        if self._Gs_inference is None:
            self._Gs_inference = inference.from_generator(self.Gs, growing=True)
        nimg = int(self.cur_nimg.numpy())
        try:
            results = evaluate(self.metrics, self._Gs_inference, self.dataset,
                               print_fn=lambda line: self.print(f"kimg {nimg / 1000:9.3f}  {line}"))
        except Exception as error:  # a metric must not end a training run; the checkpoint is written
            self.print(f"kimg {nimg / 1000:9.3f}  metrics failed, training continues: "
                       f"{type(error).__name__}: {error}")
            return {}
        reporting.record_metrics(self.run_dir, writer, nimg, self.phase(nimg), results)
        return results

    def sample_grid(self):
        """uint8 grid of Gs samples from the run's fixed latents (no truncation, stored noise)."""
        return self.grid.render(self.Gs)

    def _write_samples(self, writer):
        if not self.is_chief:
            self.sample_grid()  # every worker runs the same ops
            return
        reporting.write_samples(self.run_dir, writer, int(self.cur_nimg.numpy()), self.sample_grid())

