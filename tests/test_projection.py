"""The projector (tf_stylegan.projection): its schedules and regulariser by hand, recovery of generated
images, batching, targets, saved projections, and the exported synthesis of a projection."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import REPO, cli, perturb, small_generator
from PIL import Image

import tf_stylegan
from tf_stylegan import projection
from tf_stylegan.deploy.inference import from_generator
from tf_stylegan.images import to_uint8

# Measured for 3 images of each of the generators of seeds 0, 1, 2 (300 steps): PSNR 39.5 to 47.7 dB, the
# largest error of w 2.1 % of w's largest value.
RECOVERY_PSNR_DB = 35.0


def generator_like_a_trained_one(resolution=16, seed=0, **kwargs):
    """A small generator whose images mostly lie in [-1, 1] and whose noise is a small detail, as in a trained
    one: the constant input varies (ones would make the 4x4 layers pure noise), noise strengths 0.01, the
    output layer scaled by 0.2. Weights drawn from ``seed``."""
    keras.utils.set_random_seed(seed)
    generator = small_generator(resolution, seed=seed, **kwargs)
    perturb(generator, seed=seed + 1, scale=0.01, names=("strength",))
    perturb(generator, seed=seed + 2, scale=0.05, const_scale=1.0)
    for variable in generator.synthesis.to_rgb[-1].weights:
        variable.assign(variable * 0.2)
    return generator


def generated(generator, count, seed=5, psi=0.5):
    """(w [N, L, D], uint8 images [N, H, W, C]) of ``count`` latents truncated with ``psi`` towards the
    average w (as generated images are shown), with the stored noise."""
    z = np.random.default_rng(seed).standard_normal((count, generator.latent_size)).astype(np.float32)
    average, _ = projection.w_statistics(generator, num_samples=2000)
    dlatents = average + psi * (generator.mapping(z).numpy() - average)
    images = generator.synthesis(dlatents, randomize_noise=False)
    return dlatents, to_uint8(images.numpy())


@pytest.fixture(scope="module")
def recovery_case():
    generator = generator_like_a_trained_one()
    dlatents, targets = generated(generator, 3)
    projector = projection.Projector(generator, projection.pixel_distance(),
                                     projection.Schedule(num_steps=300), seed=0, w_samples=2000)
    return generator, dlatents, targets, projector.project(targets)


# --- schedules and regulariser, by hand ------------------------------------------------------------


def test_learning_rate_ramps_up_then_down_as_official():
    schedule = projection.Schedule(num_steps=1000)
    rates = {step: float(schedule.learning_rate(step)) for step in (0, 25, 50, 500, 750, 875, 1000)}
    # up linearly over 50 steps, then 0.1, then 0.1 * (0.5 - 0.5 cos(pi (1 - t) / 0.25)) over the last 250
    assert rates == pytest.approx({0: 0.0, 25: 0.05, 50: 0.1, 500: 0.1, 750: 0.1, 875: 0.05, 1000: 0.0},
                                  abs=1e-7)
    t = 0.9  # (1 - t) / 0.25 = 0.4
    assert float(schedule.learning_rate(900)) == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.4 * math.pi)))


def test_latent_noise_decays_quadratically_to_zero_at_three_quarters():
    schedule = projection.Schedule(num_steps=1000)
    spread = 2.0
    noise = [float(schedule.latent_noise(step, spread)) for step in (0, 375, 600, 750, 900)]
    # 2.0 * 0.05 * (1 - t / 0.75)^2
    assert noise == pytest.approx([0.1, 0.1 * 0.25, 0.1 * 0.2 ** 2, 0.0, 0.0], abs=1e-8)


def reference_regularization(noise):
    """The official loop for one map [s, s], written independently."""
    total = 0.0
    while True:
        total += np.mean(noise * np.roll(noise, 1, axis=1)) ** 2
        total += np.mean(noise * np.roll(noise, 1, axis=0)) ** 2
        if noise.shape[0] <= 8:
            return total
        size = noise.shape[0] // 2
        noise = noise.reshape(size, 2, size, 2).mean(axis=(1, 3))


def test_noise_regularization_by_hand():
    checkerboard = np.indices((16, 16)).sum(axis=0) % 2 * 2.0 - 1  # +-1: shifted products all -1
    ones = np.ones((16, 16))
    maps = [tf.constant(np.stack([checkerboard, ones])[..., None], tf.float32)]  # [2, 16, 16, 1]
    # checkerboard: 1 + 1 at 16 px, its 2x2 means are 0 at 8 px; ones: 1 + 1 at 16 px and at 8 px
    assert projection.noise_regularization(maps).numpy() == pytest.approx([2.0, 4.0])
    rng = np.random.default_rng(0)
    random_maps = [rng.standard_normal((3, size, size, 1)) for size in (4, 8, 32)]
    expected = [sum(reference_regularization(m[sample, ..., 0]) for m in random_maps) for sample in range(3)]
    got = projection.noise_regularization([tf.constant(m, tf.float32) for m in random_maps]).numpy()
    assert got == pytest.approx(expected, rel=1e-4)


def test_normalized_maps_have_zero_mean_and_unit_mean_square_per_sample():
    noise = tf.constant(np.random.default_rng(1).normal(3.0, 5.0, (2, 8, 8, 1)), tf.float32)
    normalized = projection.normalized(noise).numpy()
    assert np.abs(normalized.mean(axis=(1, 2, 3))).max() < 1e-5
    assert np.mean(np.square(normalized), axis=(1, 2, 3)) == pytest.approx([1.0, 1.0], abs=1e-5)


def test_w_statistics_are_the_mean_and_root_total_variance_of_mapped_latents():
    generator = generator_like_a_trained_one(8)
    average, spread = projection.w_statistics(generator, num_samples=500, batch_size=128)
    z = np.random.RandomState(123).randn(500, generator.latent_size).astype(np.float32)
    w = generator.mapping(z)[:, 0].numpy().astype(np.float64)
    assert average == pytest.approx(w.mean(axis=0), abs=1e-5)
    assert spread == pytest.approx(np.sqrt(np.sum((w - w.mean(axis=0)) ** 2) / 500), rel=1e-5)


# --- recovery --------------------------------------------------------------------------------------


def test_a_generated_image_is_recovered_with_pixel_mse(recovery_case):
    generator, dlatents, targets, result = recovery_case
    assert projection.psnr(result.images, targets).min() > RECOVERY_PSNR_DB
    assert np.abs(result.dlatents - dlatents).max() < 0.05 * np.abs(dlatents).max()  # w found again
    assert result.distances.shape == (300, 3)
    assert result.distances[-1].max() < 0.05 * result.distances[0].min()


def test_the_saved_projection_reproduces_the_image_in_python_and_in_an_export(recovery_case, tmp_path):
    generator, _, _, result = recovery_case
    path = projection.save_projection(tmp_path / projection.PROJECTION_FILE, result,
                                      targets=["a.png", "b.png", "c.png"], distance="mse")
    saved = projection.load_projection(path, generator.num_layers, generator.dlatent_size,
                                       result.noise.shape[1])
    assert saved.targets == ["a.png", "b.png", "c.png"]
    model = from_generator(generator)
    np.testing.assert_array_equal(model.synthesis(saved.dlatents, noise=saved.noise), result.images)
    from tf_stylegan.deploy import export

    exported = export.export_saved_model(generator, tmp_path / "export", version=1, verify=False)
    served = tf_stylegan.load(exported).synthesis(saved.dlatents, noise=saved.noise)
    assert np.abs(served.astype(int) - result.images.astype(int)).max() <= 1  # float rounding at a level edge


def test_the_random_feature_distance_falls_window_after_window():
    """Single Adam steps are not monotone (10-19 of the last 50 steps rise); the mean distance over each
    10 % of the steps after the first 10 % falls: measured with no rise for 3 images of each of the
    generators of seeds 0, 1, 2 (windows of 5 % rose up to twice, with the noise added to w)."""
    generator = generator_like_a_trained_one()
    _, targets = generated(generator, 3)
    steps = 200
    result = projection.Projector(generator, projection.random_feature_distance(),
                                  projection.Schedule(num_steps=steps), w_samples=2000).project(targets)
    window = steps // 10
    means = result.distances[window:].reshape(-1, window, 3).mean(axis=1)  # [9, 3]
    assert np.all(np.diff(means, axis=0) < 0), means
    assert np.all(means[-1] < 0.2 * means[0])


def test_lpips_and_emoji_distances_drive_a_projection(recovery_case, tmp_path):
    """The default distance (LPIPS-VGG16: here with untrained VGG weights and unit linear layers, no
    download) and the emoji classifier's run through the projector's step and bring the image closer."""
    from tf_stylegan.metrics.ppl import LPIPS_VGG_CHANNELS

    generator, _, targets, _ = recovery_case
    unit_weights = {f"lin{index}": np.ones(channels, np.float32)
                    for index, channels in enumerate(LPIPS_VGG_CHANNELS)}
    np.savez(tmp_path / "lin.npz", **unit_weights)
    for distance in (projection.lpips_distance(str(tmp_path / "lin.npz"), vgg_weights=None),
                     projection.emoji_distance()):
        result = projection.Projector(generator, distance, projection.Schedule(num_steps=20),
                                      w_samples=500).project(targets[:1])
        assert np.all(np.isfinite(result.distances))
        assert result.distances[-5:].mean() < result.distances[:5].mean(), distance.name


def test_w_plus_optimises_a_w_per_layer_and_w_one_for_all(recovery_case):
    generator, _, targets, result = recovery_case
    assert np.all(result.dlatents == result.dlatents[:, :1])  # W: one w broadcast
    plus = projection.Projector(generator, projection.pixel_distance(), projection.Schedule(num_steps=20),
                                w_plus=True, w_samples=500).project(targets[:1])
    assert plus.dlatents.shape == (1, generator.num_layers, generator.dlatent_size)
    assert not np.allclose(plus.dlatents[:, 0], plus.dlatents[:, -1])


def test_a_target_projects_the_same_alone_as_in_a_batch(recovery_case):
    generator, _, targets, _ = recovery_case
    schedule = projection.Schedule(num_steps=30)
    batch = projection.Projector(generator, projection.pixel_distance(), schedule, seed=4,
                                 w_samples=500).project(targets[:2])
    alone = projection.Projector(generator, projection.pixel_distance(), schedule, seed=5,
                                 w_samples=500).project(targets[1:2])  # target 1 of the batch drew from 4 + 1
    np.testing.assert_allclose(alone.dlatents[0], batch.dlatents[1], atol=1e-4)
    np.testing.assert_allclose(alone.noise[0], batch.noise[1], atol=1e-3)


def test_frames_are_kept_every_k_steps_and_at_the_end(recovery_case):
    generator, _, targets, _ = recovery_case
    result = projection.Projector(generator, projection.pixel_distance(), projection.Schedule(num_steps=10),
                                  w_samples=500).project(targets[:2], frame_every=4)
    assert result.frames.shape == (4, 2) + targets.shape[1:]  # steps 0, 4, 8 and the last
    np.testing.assert_array_equal(result.frames[-1], result.images)


def test_a_conditional_generator_projects_in_the_targets_class():
    generator = generator_like_a_trained_one(8, label_size=3, class_names=["ant", "bee", "cow"])
    with pytest.raises(projection.ProjectionError, match="class-conditional .3 classes"):
        projection.Projector(generator, projection.pixel_distance())
    with pytest.raises(projection.ProjectionError, match="no class 'owl': its classes are ant, bee, cow"):
        projection.Projector(generator, projection.pixel_distance(), class_index="owl")
    by_name = projection.Projector(generator, projection.pixel_distance(), class_index=["ant", "cow"])
    assert by_name.class_index == [0, 2]
    projector = projection.Projector(generator, projection.pixel_distance(), projection.Schedule(num_steps=5),
                                     class_index=[0, 2], w_samples=300)
    with pytest.raises(projection.ProjectionError, match="out of range"):
        projector.statistics(3)
    average0, _ = projector.statistics(0)
    average2, _ = projector.statistics(2)
    assert not np.allclose(average0, average2)
    result = projector.project(np.full((2, 8, 8, 3), 128, np.uint8))
    assert result.dlatents.shape == (2, generator.num_layers, generator.dlatent_size)


# --- inputs ----------------------------------------------------------------------------------------


def test_targets_of_any_size_and_mode_are_centre_cropped_and_resized(tmp_path):
    rng = np.random.default_rng(0)
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 10:30] = 200  # the centre square is all 200
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(rng.integers(0, 255, (5, 5), dtype=np.uint8), "L").save(tmp_path / "tiny_gray.png")
    rgba = np.zeros((16, 16, 4), np.uint8)  # fully transparent: the white background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    targets = projection.load_targets([tmp_path / "wide.png", tmp_path / "tiny_gray.png",
                                       tmp_path / "clear.png"], 8)
    assert targets.shape == (3, 8, 8, 3) and targets.dtype == np.uint8
    assert np.all(targets[0] == 200)
    assert np.all(targets[1, ..., 0] == targets[1, ..., 1])  # grayscale replicated to RGB
    assert np.all(targets[2] == 255)
    assert projection.load_targets([tmp_path / "wide.png"], 8, num_channels=1).shape == (1, 8, 8, 1)


def test_a_corrupt_target_is_an_error_naming_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(projection.ProjectionError, match="broken.png: cannot read the image"):
        projection.load_targets([bad], 8)
    with pytest.raises(projection.ProjectionError, match="no target images"):
        projection.load_targets([], 8)


def test_targets_of_the_wrong_shape_are_refused():
    projector = projection.Projector(generator_like_a_trained_one(8), projection.pixel_distance(),
                                     w_samples=100)
    with pytest.raises(projection.ProjectionError, match=r"targets must be uint8 \[N, 8, 8, 3\]"):
        projector.project(np.zeros((1, 16, 16, 3), np.uint8))


def test_saved_projections_of_another_model_or_damaged_are_refused(recovery_case, tmp_path):
    generator, _, _, result = recovery_case
    path = projection.save_projection(tmp_path / "p.npz", result)
    with pytest.raises(projection.ProjectionError, match="the model takes 4 x 32"):
        projection.load_projection(path, 4, 32)
    with pytest.raises(projection.ProjectionError, match="noise values per image"):
        projection.load_projection(path, generator.num_layers, generator.dlatent_size, 7)
    (tmp_path / "cut.npz").write_bytes(path_bytes(path)[:100])
    with pytest.raises(projection.ProjectionError, match="cut.npz: cannot read the projection"):
        projection.load_projection(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", w=np.zeros(3))
    with pytest.raises(projection.ProjectionError, match="is not a projection"):
        projection.load_projection(tmp_path / "other.npz")


def path_bytes(path):
    with open(path, "rb") as file:
        return file.read()


# --- command line ----------------------------------------------------------------------------------


def run(argv, capsys):
    """(exit code, stdout + stderr) of the CLI in-process."""
    code, out, err = cli(argv, capsys)
    return code, out + err


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    from tf_stylegan.formats.snapshot import save_networks

    folder = tmp_path_factory.mktemp("projection") / "snapshot"
    save_networks(folder, Gs=generator_like_a_trained_one(8))
    return folder


def test_project_command_writes_the_projection_images_and_animation(snapshot, tmp_path, capsys):
    _, targets = generated(generator_like_a_trained_one(8), 2)
    paths = []
    for index, target in enumerate(targets):
        paths.append(tmp_path / f"face{index}.png")
        Image.fromarray(target).save(paths[-1])
    out = tmp_path / "out"
    code, output = run(["project", str(snapshot), "--target", *map(str, paths), "--distance", "mse",
                        "--steps", "40", "--gif", "--out", str(out)], capsys)
    assert code == 0, output
    saved = projection.load_projection(out / projection.PROJECTION_FILE)
    assert saved.targets == [str(path) for path in paths] and len(saved) == 2
    for index in range(2):
        pair = np.asarray(Image.open(out / f"face{index}-target-projected.png"))
        assert pair.shape == (8, 16, 3)
        np.testing.assert_array_equal(pair[:, :8], targets[index])
        np.testing.assert_array_equal(pair[:, 8:], np.asarray(Image.open(out / f"face{index}-projected.png")))
        assert Image.open(out / f"face{index}-steps.gif").n_frames > 1
    assert "PSNR" in output and "s per 1000 steps" in output
    # then edit: the figures take the projection where they take seeds
    code, output = run(["style-mix", str(snapshot), "--rows-w", str(out / projection.PROJECTION_FILE),
                        "--cols", "1", "2", "--out", str(tmp_path / "mix.png")], capsys)
    assert code == 0, output
    mix = np.asarray(Image.open(tmp_path / "mix.png"))
    assert mix.shape == (3 * 8, 3 * 8, 3)
    projected = np.asarray(Image.open(out / "face0-projected.png"))
    np.testing.assert_array_equal(mix[8:16, :8], projected)  # the row source is the projection, unchanged
    code, output = run(["style-mix", str(snapshot), "--rows", "1", "--cols-w",
                        str(out / projection.PROJECTION_FILE), "--out", str(tmp_path / "mix2.png")], capsys)
    assert code == 0, output
    columns_first = np.asarray(Image.open(tmp_path / "mix2.png"))
    np.testing.assert_array_equal(columns_first[:8, 8:16], projected)  # a column source
    code, output = run(["interpolate", str(snapshot), "--w", str(out / projection.PROJECTION_FILE),
                        "--frames", "3", "--out", str(tmp_path / "walk.gif")], capsys)
    assert code == 0, output
    walk = Image.open(tmp_path / "walk.gif")
    assert walk.n_frames == 4
    walk.seek(0)
    np.testing.assert_array_equal(np.asarray(walk.convert("RGB")), projected)  # starts on the projection
    walk.seek(3)
    np.testing.assert_array_equal(np.asarray(walk.convert("RGB")),  # and ends on the second
                                  np.asarray(Image.open(out / "face1-projected.png")))
    code, output = run(["generate", str(snapshot), "--w", str(out / projection.PROJECTION_FILE),
                        "--out", str(tmp_path / "again")], capsys)
    assert code == 0, output
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again" / "projected0000.png")), projected)
    code, output = run(["noise", str(snapshot), "--w", str(out / projection.PROJECTION_FILE), "--draws", "2",
                        "--out", str(tmp_path / "noise.png")], capsys)
    assert code == 0 and "face0.png: mean per-pixel std over 2 noise draws" in output, output
    code, output = run(["truncation", str(snapshot), "--w", str(out / projection.PROJECTION_FILE),
                        "--steps", "3", "--out", str(tmp_path / "trunc.png")], capsys)
    assert code == 0, output
    truncation = np.asarray(Image.open(tmp_path / "trunc.png"))
    np.testing.assert_array_equal(truncation[:8, :8], projected)  # psi 1: the projection


@pytest.mark.parametrize("arguments, message", [
    (["--distance", "lpips"], "needs its linear layers: --lpips-weights"),
    (["--target", "missing.png"], "target image missing.png not found"),
    (["--steps", "0"], "--steps must be at least 1"),
])
def test_project_command_errors(snapshot, tmp_path, capsys, arguments, message):
    target = tmp_path / "t.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(target)
    argv = ["project", str(snapshot), "--out", str(tmp_path / "out")]
    argv += arguments if "--target" in arguments else ["--target", str(target), *arguments]
    code, output = run(argv, capsys)
    assert code == 1 and message in output
    assert not (tmp_path / "out").exists()


def test_project_command_refuses_an_export(tmp_path, capsys):
    export = REPO / "tests" / "fixtures" / "release_0_1" / "export" / "stylegan"
    target = tmp_path / "t.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(target)
    code, output = run(["project", str(export), "--target", str(target), "--distance", "mse",
                        "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and "is an exported model" in output


def test_figures_refuse_a_projection_of_another_model(snapshot, tmp_path, capsys):
    other = generator_like_a_trained_one(16)
    result = projection.Projector(other, projection.pixel_distance(), projection.Schedule(num_steps=2),
                                  w_samples=100).project(generated(other, 1)[1])
    path = projection.save_projection(tmp_path / "p.npz", result)
    code, output = run(["generate", str(snapshot), "--w", path, "--out", str(tmp_path / "g")], capsys)
    assert code == 1 and "projected with another model" in output
    code, output = run(["generate", str(snapshot), "--w", path, "--seeds", "1", "--out", str(tmp_path)],
                       capsys)
    assert code == 1 and "give --seeds or projected latents, not both" in output
