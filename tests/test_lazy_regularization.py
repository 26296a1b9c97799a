"""Lazy R1 (StyleGAN2's lazy regularization, ``LogisticR1.r1_interval``): a regularizing step is the
plain D update followed by a separate R1 update with gamma * k, both through D's Adam with the
learning rate times k / (k + 1) and the betas to that power; the loop regularizes every k steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import clone, official_ref_path, train_in_process, trainer_from_official

from tf_stylegan.training import step as step_lib
from tf_stylegan.training.losses import LogisticR1


def _reference_lazy_d_step(D, reals, fakes, gamma, interval, learning_rate):
    """StyleGAN2's D_train_op then D_reg_op on ``D`` (a copy), with Keras Adam: (D loss, R1 loss)."""
    ratio = interval / (interval + 1)
    adam = keras.optimizers.Adam(learning_rate * ratio, beta_1=0.0 ** ratio, beta_2=0.99 ** ratio,
                                 epsilon=1e-8)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.softplus(D(fakes)) + tf.nn.softplus(-D(reals)))
    adam.apply_gradients(zip(tape.gradient(loss, D.trainable_variables), D.trainable_variables))
    with tf.GradientTape() as tape:
        with tf.GradientTape() as inner:
            inner.watch(reals)
            total = tf.reduce_sum(D(reals))
        penalty = tf.reduce_sum(tf.square(inner.gradient(total, reals)), axis=[1, 2, 3])  # [N]
        reg = tf.reduce_mean(penalty * (gamma * 0.5 * interval))
    grads = tape.gradient(reg, D.trainable_variables)  # D's output bias has none: it leaves dD/dx alone
    adam.apply_gradients([(g, v) for g, v in zip(grads, D.trainable_variables) if g is not None])
    return float(loss), float(reg)


def test_a_regularizing_step_is_the_d_update_then_the_r1_update_with_gamma_times_k(tmp_path):
    ref = np.load(official_ref_path("step_ref_lod0.npz"))
    interval, gamma, learning_rate = 4, float(ref["r1_gamma"]), float(ref["learning_rate"])
    trainer = trainer_from_official(tmp_path, LogisticR1(gamma, r1_interval=interval))
    assert trainer.D_update_ratio == pytest.approx(0.8)
    assert trainer.D_opt.beta_2 == pytest.approx(0.99 ** 0.8) and trainer.G_opt.beta_2 == pytest.approx(0.99)
    trainer.G_opt.learning_rate = learning_rate
    trainer.D_opt.learning_rate = learning_rate * trainer.D_update_ratio
    reals = step_lib.process_reals(ref["reals_0"], 0.0)
    fakes = step_lib.generate(trainer.G, {"z": ref["latents_d_0"]}, 16)  # G before the step's G update
    reference_D = clone(trainer.D)
    d_loss, reg_loss = _reference_lazy_d_step(reference_D, reals, fakes, gamma, interval, learning_rate)

    train_step = trainer.train_step(16, 4)
    beta = tf.constant(float(ref["gs_beta"]), tf.float32)
    metrics = train_step.on_inputs(ref["reals_0"], ref["latents_d_0"], ref["latents_g_0"], beta,
                                   regularize=True)
    np.testing.assert_allclose(float(metrics["Loss/D"]), d_loss, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["Loss/D_reg"]), reg_loss, rtol=1e-5)
    assert float(metrics["D/r1"]) > 0 and float(metrics["Train/D_skipped"]) == 0
    assert int(trainer.D_opt.iterations.numpy()) == 2  # two D updates, one G update
    assert int(trainer.G_opt.iterations.numpy()) == 1
    for ours, theirs in zip(trainer.D.trainable_variables, reference_D.trainable_variables):
        a, b = np.asarray(ours), np.asarray(theirs)
        assert np.max(np.abs(a - b)) <= 1e-5 * max(np.max(np.abs(b)), 1e-12), ours.path

    metrics = train_step.on_inputs(ref["reals_1"], ref["latents_d_1"], ref["latents_g_1"], beta)
    assert "Loss/D_reg" not in metrics and "D/r1" not in metrics
    assert int(trainer.D_opt.iterations.numpy()) == 3
    assert train_step.traces == 0  # on_inputs has its own function; the distributed step was not traced


@pytest.mark.slow
def test_the_loop_regularizes_every_r1_interval_steps(tmp_path, monkeypatch):
    calls = []
    original = step_lib.TrainStep.__call__

    def recording(self, reals, seed, beta, regularize=False):
        calls.append((int(seed[1]), bool(regularize)))
        return original(self, reals, seed, beta, regularize)

    monkeypatch.setattr(step_lib.TrainStep, "__call__", recording)
    trainer, lines = train_in_process(tmp_path / "run", ["LogisticR1.r1_interval = 3"])
    steps = [index for index, _ in calls]
    assert steps == list(range(len(calls))) and len(calls) == int(trainer.step_count.numpy()) > 6
    assert [regularize for _, regularize in calls] == [index % 3 == 0 for index in steps]
    phase = trainer.phase(int(trainer.cur_nimg.numpy()) - 1)
    assert float(trainer.D_opt.learning_rate.numpy()) == pytest.approx(phase.D_lrate * 0.75)
    assert float(trainer.G_opt.learning_rate.numpy()) == pytest.approx(phase.G_lrate)
    progress = [line for line in lines if line.startswith("kimg")]
    assert progress and all(" r1 " in line and "D_reg" in line for line in progress)
    assert trainer.trace_counts == {4: 2, 8: 2}  # one trace with and one without the R1 update
