"""One StyleGAN training iteration, in the official order: the moving average of Gs and the D step
(with R1 or WGAN-GP), then the G step (NVlabs/stylegan ``training_loop.py``, ``loss.py``).

At a level of progressive growing the step works at the level's resolution r, not at the full
resolution R: the official loop upscales r×r reals to R×R before D (``process_reals``) and G emits
r×r content upscaled to R×R, while here G and D run only their blocks up to r, which computes the
same scores. The gradient penalties are taken as the official ones, with respect to the R×R tensor
(see ``LogisticR1.discriminator_loss``'s ``upscale_factor``).

Every random input of a step is drawn statelessly per sample, from (run seed, step, index of the
sample in the global minibatch): each replica draws only its own samples, and the result does not
depend on the number of replicas.

An update whose gradients are not all finite is skipped, as the official optimizer's ``tf.cond``
does: the variables and the Adam state stay as they were, and the step reports it.
"""

import functools

import tensorflow as tf

from tf_stylegan.training import augment

# Salts of the independent random streams of one step.
_D_SALT, _G_SALT, _MIXING_FACTORS_SALT, _AUGMENT_SALT = 0, 100, 50, 200
_MAX_GLOBAL_BATCH = 2 ** 20  # sample keys are step * _MAX_GLOBAL_BATCH + index


def to_network_range(images):
    """uint8 [0, 255] -> float32 [-1, 1] (the official drange_data -> drange_net)."""
    return tf.cast(images, tf.float32) * (2.0 / 255.0) - 1.0


def fade_reals(images, fade):
    """Blend real images with their 2x2 box-averaged copy by ``fade``, as official ``process_reals``."""
    coarse = tf.nn.avg_pool2d(images, 2, 2, "VALID")  # [N, H/2, W/2, C]
    coarse = tf.repeat(tf.repeat(coarse, 2, axis=1), 2, axis=2)  # [N, H, W, C]
    return images + (coarse - images) * fade


def process_reals(images, lod):
    """uint8 reals [N, r, r, C] of the current level -> float [-1, 1], faded by ``lod - floor(lod)``."""
    lod = tf.cast(lod, tf.float32)
    return fade_reals(to_network_range(images), lod - tf.floor(lod))


def discriminator_loss(loss, discriminator, reals, fakes, mixing_factors, lod, full_resolution):
    """The D loss of one replica's samples, as the train step takes it: ``(per-sample loss [N], metrics)``.

    ``reals``: uint8 [N, r, r, C] of the level; ``fakes``: G's images [N, r, r, C]; the penalties are
    those of the official R×R tensors (``upscale_factor`` = R / r).
    """
    reals = process_reals(reals, lod)
    upscale_factor = full_resolution // int(reals.shape[1])
    return loss.discriminator_loss(discriminator, reals, fakes, mixing_factors, upscale_factor=upscale_factor)


def discriminator_regularization(loss, discriminator, reals, lod, full_resolution):
    """The per-sample loss [N] and metrics of a lazy regularization update of D (arguments as
    :func:`discriminator_loss`)."""
    reals = process_reals(reals, lod)
    upscale_factor = full_resolution // int(reals.shape[1])
    return loss.regularization_loss(discriminator, reals, upscale_factor=upscale_factor)


def generate(generator, inputs, resolution):
    """G's training call on explicit inputs: ``z``, optional ``noise`` (else the stored noise maps),
    optional ``mixing_latents`` + ``mixing_cutoff`` (else no style mixing), ``labels`` (conditional G)."""
    mixing = dict(style_mixing=False)
    if "mixing_latents" in inputs:
        mixing = dict(mixing_latents=inputs["mixing_latents"], mixing_cutoff=inputs["mixing_cutoff"])
    return generator(inputs["z"], training=True, resolution=resolution, noise=inputs.get("noise"),
                     randomize_noise="noise" in inputs, labels=inputs.get("labels"), **mixing)


def draw_inputs(generator, seed, first, count, resolution, with_mixing_factors=True, augment_calls=None,
                label_table=None):
    """Random inputs of samples ``first .. first + count - 1`` of a step's global minibatch.

    ``seed`` is [run seed, step] (int64). Sample j's draws use the key (run seed, salt, step, j), so
    any slice of the minibatch equals the same slice of the whole (j < 2**20). Returns ``{"d": inputs of the D
    pass, "g": of the G pass, "mixing_factors": [count, 1, 1, 1]}``; the style-mixing crossover is
    one per pass and step (as official, one per minibatch), the same on every replica.
    ``augment_calls`` ({pass: number of D calls}, e.g. {"d": 2, "g": 1}) adds ``"augment"``: {pass: a list
    of (uniform, normal) draws of :class:`~tf_stylegan.training.augment.AugmentPipe`, one per D call}.
    ``label_table`` (the dataset's labels [N, label_size]) adds the G pass's ``"labels"``: rows of it
    drawn uniformly, as the official ``get_random_labels_tf`` (the D pass takes the reals' labels).
    """
    latent = generator.latent_size
    sizes = generator.synthesis.noise_sizes(resolution)
    mixing = generator.style_mixing_prob > 0

    def key(salt, sample=None):
        position = seed[1] * _MAX_GLOBAL_BATCH + (0 if sample is None else sample)
        return tf.stack([seed[0] * 4096 + salt, position])

    # One sample's draws: name -> (shape, salt, distribution).
    streams = {}
    for prefix, salt in (("d", _D_SALT), ("g", _G_SALT)):
        streams[prefix + "z"] = ([latent], salt + 1, tf.random.stateless_normal)
        if mixing:
            streams[prefix + "mixing_latents"] = ([latent], salt + 2, tf.random.stateless_normal)
        for i, size in enumerate(sizes):
            streams[f"{prefix}noise{i}"] = ([size, size, 1], salt + 10 + i, tf.random.stateless_normal)
    if with_mixing_factors:
        streams["mixing_factors"] = ([1, 1, 1], _MIXING_FACTORS_SALT, tf.random.stateless_uniform)
    if label_table is not None:
        streams["g_label"] = ([], _G_SALT + 5, tf.random.stateless_uniform)
    augment_streams = {}
    for number, (name, calls) in enumerate(sorted((augment_calls or {}).items())):
        augment_streams[name] = [(f"augment_{name}{call}_uniform", f"augment_{name}{call}_normal")
                                 for call in range(calls)]
        for call, (uniform, normal) in enumerate(augment_streams[name]):
            salt = _AUGMENT_SALT + 20 * number + 2 * call
            streams[uniform] = ([len(augment.UNIFORMS)], salt, tf.random.stateless_uniform)
            streams[normal] = ([len(augment.NORMALS)], salt + 1, tf.random.stateless_normal)

    def one_sample(index):
        return {name: draw(shape, key(salt, index)) for name, (shape, salt, draw) in streams.items()}

    indices = tf.range(first, first + count, dtype=tf.int64)
    signature = {name: tf.TensorSpec(shape, tf.float32) for name, (shape, _, _) in streams.items()}
    draws = tf.map_fn(one_sample, indices, fn_output_signature=signature)  # each [count, *shape]

    inputs = {}
    for prefix, salt in (("d", _D_SALT), ("g", _G_SALT)):
        noise = [draws[f"{prefix}noise{i}"] for i in range(len(sizes))]
        inputs[prefix] = {"z": draws[prefix + "z"], "noise": noise}
        if mixing:
            coin = tf.random.stateless_uniform([], key(salt + 3))
            uniform = tf.random.stateless_uniform([], key(salt + 4))
            inputs[prefix].update(mixing_latents=draws[prefix + "mixing_latents"],
                                  mixing_cutoff=generator.mixing_crossover(coin, uniform))
    if with_mixing_factors:
        inputs["mixing_factors"] = draws["mixing_factors"]
    if label_table is not None:
        rows = tf.shape(label_table, out_type=tf.int64)[0]
        index = tf.minimum(tf.cast(draws["g_label"] * tf.cast(rows, tf.float32), tf.int64), rows - 1)
        inputs["g"]["labels"] = tf.gather(label_table, index)  # [count, label_size]
    if augment_streams:
        inputs["augment"] = {name: [(draws[uniform], draws[normal]) for uniform, normal in calls]
                             for name, calls in augment_streams.items()}
    return inputs


class AugmentedDiscriminator:
    """D on augmented images: its k-th call (in trace order) uses the k-th of ``draws``."""

    def __init__(self, discriminator, augmentation, draws):
        self.discriminator, self.augmentation, self.draws, self.calls = discriminator, augmentation, draws, 0

    def __call__(self, images):
        if self.calls == len(self.draws):
            raise RuntimeError(f"D called more than the {len(self.draws)} time(s) its augmentation "
                               "draws serve")
        uniform, normal = self.draws[self.calls]
        self.calls += 1
        return self.discriminator(self.augmentation(images, uniform, normal))


class SkippedUpdates:
    """Updates skipped for non-finite gradients: per network in this session, and steps in a row."""

    def __init__(self, limit):
        if int(limit) < 1:
            raise ValueError(f"max_skipped_steps={limit}: must be >= 1")
        self.limit, self.counts, self.in_a_row = int(limit), {"D": 0, "G": 0}, 0

    def count(self, metrics):
        """Pops a step's ``Train/D_skipped`` / ``Train/G_skipped`` flags from ``metrics`` and counts them;
        returns the networks skipped when ``limit`` steps in a row had a skipped update, else []."""
        skipped = [name for name in ("D", "G") if metrics.pop(f"Train/{name}_skipped") > 0]
        for name in skipped:
            self.counts[name] += 1
        self.in_a_row = self.in_a_row + 1 if skipped else 0
        return skipped if self.in_a_row >= self.limit else []


def update_moving_average(G, Gs, beta):
    """Gs trainables <- lerp(G, Gs, beta); Gs's float state (w_avg, lod, noise maps: not averaged) <- G's
    (cross-replica context)."""
    for source, target in zip(G.trainable_variables, Gs.trainable_variables):
        target.assign(source + (target - source) * beta)
    for source, target in zip(_float_state(G), _float_state(Gs)):
        target.assign(source)


def _float_state(network):
    return [v for v in network.non_trainable_variables if v.dtype in ("float32", "float16", "bfloat16")]


def all_finite(tensors):
    """Scalar bool: every element of every tensor is finite."""
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors])


def apply_if_finite(optimizer, gradients, variables):
    """In a replica context: the optimizer's update if every replica's gradients are finite, else
    nothing (variables and Adam state untouched, as the official optimizer's ``tf.cond``).
    Returns 1.0 if the update was skipped, else 0.0 (the same on every replica)."""
    pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]  # blocks above r have none
    context = tf.distribute.get_replica_context()
    nonfinite = 1.0 - tf.cast(all_finite([g for g, _ in pairs]), tf.float32)
    nonfinite_replicas = context.all_reduce("SUM", nonfinite)
    skipped = tf.minimum(nonfinite_replicas, 1.0)

    def skip():
        return tf.constant(True)

    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        def apply():
            optimizer.apply_gradients(pairs)
            return tf.constant(False)

        tf.cond(skipped > 0, skip, apply)
        return skipped

    def in_cross_replica(strategy, skipped, pairs):
        # A cond in the replica context cannot hold the optimizer's merge_call: branch here, then
        # apply per replica. Every replica holds the same all-reduced flag.
        def apply():
            strategy.extended.call_for_each_replica(optimizer.apply_gradients, args=(pairs,))
            return tf.constant(False)

        tf.cond(strategy.experimental_local_results(skipped)[0] > 0, skip, apply)

    context.merge_call(in_cross_replica, args=(skipped, pairs))
    return skipped


def minimize(optimizer, tape, objective, variables, loss_scale=None):
    """Applies ``optimizer`` to the gradients of ``objective`` (computed on ``tape``; already scaled
    when ``loss_scale`` is given) if they are all finite; returns the skip flag of :func:`apply_if_finite`."""
    gradients = tape.gradient(objective, variables)
    if loss_scale is None:
        return apply_if_finite(optimizer, gradients, variables)
    skipped = apply_if_finite(optimizer, loss_scale.unscale(gradients), variables)
    loss_scale.update(skipped)
    return skipped


def scaled(loss, loss_scale):
    """``loss`` times the loss scale, if any (inside the tape)."""
    return loss if loss_scale is None else loss_scale.scale(loss)


class TrainStep:
    """The distributed iteration of one resolution and global minibatch:
    ``step(reals, seed, beta, regularize=False) -> metrics``, traced once per ``regularize``.

    ``reals`` is this replica's uint8 batch at the level's resolution (a distributed value; with a
    labelled dataset, the pair (images, labels)), ``seed``
    [2] int64 = (run seed, step), ``beta`` Gs's moving-average coefficient; ``regularize`` adds the
    loss's lazy regularization update of D after the D step (the trainer sets it every
    ``loss.regularization_interval`` steps). Metrics are the losses (means over the global
    minibatch) and ``Train/D_skipped``, ``Train/G_skipped`` (1 when an update of that network was
    skipped for non-finite gradients).
    """

    def __init__(self, trainer, resolution, global_batch):
        self.trainer = trainer
        self.resolution = int(resolution)
        self.global_batch = int(global_batch)
        self.traces = 0
        self._function = tf.function(self._step)
        self._given_function = tf.function(self._step_on_inputs)

    def __call__(self, reals, seed, beta, regularize=False):
        return self._function(reals, seed, beta, bool(regularize))

    def on_inputs(self, reals, d_latents, g_latents, beta, regularize=False):
        """The same iteration on given inputs, on one replica: reals uint8 [N, r, r, C], the latents
        of the D and G losses [N, latent]; the stored noise maps and no style mixing (the official
        reference iterations' setting)."""
        return self._given_function(reals, d_latents, g_latents, beta, bool(regularize))

    # ------------------------------------------------------------------ replica functions

    def _discriminator(self, inputs, name, labels=None):
        """D (given ``labels`` when conditional), or D on augmented images with the augmentation draws of
        pass ``name`` ("d", "reg", "g")."""
        discriminator = self.trainer.D if labels is None else functools.partial(self.trainer.D, labels=labels)
        draws = inputs.get("augment", {}).get(name)
        return discriminator if draws is None else AugmentedDiscriminator(
            discriminator, self.trainer.augmentation, draws)

    def _d_step(self, reals, inputs):
        t = self.trainer
        fakes = tf.stop_gradient(generate(t.G, inputs["d"], self.resolution))

        def per_sample_losses():
            discriminator = self._discriminator(inputs, "d", inputs["d"].get("labels"))
            losses, metrics = discriminator_loss(t.loss, discriminator, reals, fakes,
                                                 inputs.get("mixing_factors"), t.D.lod, t.dataset.resolution)
            if "augment" in inputs:  # ADA's overfitting heuristic r_t = E[sign(D(augmented reals))]
                metrics["D/real_sign"] = tf.sign(metrics["D/real"])
            return losses, metrics

        return self._d_update("Loss/D", per_sample_losses)

    def _d_regularization_step(self, reals, inputs):
        t = self.trainer
        return self._d_update("Loss/D_reg", lambda: discriminator_regularization(
            t.loss, self._discriminator(inputs, "reg", inputs["d"].get("labels")), reals, t.D.lod,
            t.dataset.resolution))

    def _d_update(self, name, per_sample_losses):
        """One D update on the global-batch mean of ``per_sample_losses()`` -> (losses, metrics):
        ({name: loss, **metric means}, 1.0 if skipped for non-finite gradients else 0.0)."""
        t = self.trainer
        with tf.GradientTape() as tape:
            losses, metrics = per_sample_losses()
            loss = tf.reduce_sum(losses) / self.global_batch
            objective = scaled(loss, t.loss_scales.get("D"))
        skipped = minimize(t.D_opt, tape, objective, t.D.trainable_variables, t.loss_scales.get("D"))
        metrics = {key: tf.reduce_sum(value) / self.global_batch for key, value in metrics.items()}
        return {name: loss, **metrics}, skipped

    def _g_step(self, inputs):
        t = self.trainer
        with tf.GradientTape() as tape:
            fakes = generate(t.G, inputs["g"], self.resolution)
            scores = self._discriminator(inputs, "g", inputs["g"].get("labels"))(fakes)
            loss = tf.reduce_sum(t.loss.generator_loss(scores)) / self.global_batch
            objective = scaled(loss, t.loss_scales.get("G"))
        skipped = minimize(t.G_opt, tape, objective, t.G.trainable_variables, t.loss_scales.get("G"))
        return {"Loss/G": loss}, skipped

    def _replica_inputs(self, seed, real_labels=None):
        t = self.trainer
        local = self.global_batch // t.num_replicas
        replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)
        augment_calls = None
        if t.augmentation is not None:  # D calls per pass: reals and fakes (WGAN-GP: and their mix), ...
            augment_calls = {"d": 3 if t.loss.needs_mixing_factors else 2, "g": 1}
            if t.loss.regularization_interval > 1:
                augment_calls["reg"] = 1
        inputs = draw_inputs(t.G, seed, replica * local, local, self.resolution,
                             with_mixing_factors=t.loss.needs_mixing_factors, augment_calls=augment_calls,
                             label_table=t.label_table)
        if real_labels is not None:  # the D pass's fakes take the reals' labels, as official
            inputs["d"]["labels"] = real_labels
        return inputs

    # ------------------------------------------------------------------ the iteration

    def _iteration(self, reals, inputs, beta, regularize, step=None):
        """Gs average and D step, D regularization step if ``regularize``, then G step (cross-replica
        context); ``inputs`` per replica; then, with adaptive augmentation, p's adjustment (``step``: the
        minibatch's index).

        The official loop runs the Gs average in the same ``session.run`` as the D step; it reads
        G's ``w_avg`` before the D pass updates it (the reference iterations match only so), and
        G's weights, which the D step does not change: the average comes first here.
        """
        t, strategy = self.trainer, self.trainer.strategy
        update_moving_average(t.G, t.Gs, beta)
        d_metrics, d_skipped = strategy.run(self._d_step, args=(reals, inputs))
        # The skip flags are the same on every replica.
        d_skipped = strategy.reduce("MEAN", d_skipped, axis=None)
        if regularize:
            reg_metrics, reg_skipped = strategy.run(self._d_regularization_step, args=(reals, inputs))
            d_metrics = {**d_metrics, **reg_metrics}
            d_skipped = tf.maximum(d_skipped, strategy.reduce("MEAN", reg_skipped, axis=None))
        g_metrics, g_skipped = strategy.run(self._g_step, args=(inputs,))
        metrics = {**d_metrics, **g_metrics}
        metrics = {name: strategy.reduce("SUM", value, axis=None) for name, value in metrics.items()}
        metrics["Train/D_skipped"] = d_skipped
        metrics["Train/G_skipped"] = strategy.reduce("MEAN", g_skipped, axis=None)
        for name, loss_scale in t.loss_scales.items():
            metrics[f"Train/{name}_loss_scale_log2"] = tf.convert_to_tensor(loss_scale.log2_scale)
        if "D/real_sign" in metrics:
            t.augmentation.adjust(metrics["D/real_sign"], self.global_batch, step)
            metrics["Augment/p"] = tf.convert_to_tensor(t.augmentation.p)
        return metrics

    def _step(self, reals, seed, beta, regularize):
        self.traces += 1
        reals, real_labels = reals if isinstance(reals, tuple) else (reals, None)  # labelled datasets
        inputs = self.trainer.strategy.run(self._replica_inputs, args=(seed, real_labels))
        return self._iteration(reals, inputs, beta, regularize, step=seed[1])

    def _step_on_inputs(self, reals, d_latents, g_latents, beta, regularize):
        if self.trainer.loss.needs_mixing_factors:
            raise ValueError("on_inputs runs the R1 loss only (WGAN-GP needs mixing factors)")
        inputs = {"d": {"z": d_latents}, "g": {"z": g_latents}}
        return self._iteration(reals, inputs, beta, regularize)

