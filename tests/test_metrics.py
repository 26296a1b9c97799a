"""Metrics: the Fréchet distance against SciPy, streaming statistics, the FID pipeline with a randomly
initialised Inception-v3, PPL against a toy generator whose path length is known analytically, the
CLI, and FID logged by a training run."""

import json
import os

import keras
import numpy as np
import pytest
import scipy.linalg
from helpers import perturb, read_events, small_generator, train_in_process
from PIL import Image

import gin
from tf_stylegan import data, metrics
from tf_stylegan.cli import main
from tf_stylegan.deploy.inference import from_generator
from tf_stylegan.formats.snapshot import save_networks


def official_frechet(mu1, sigma1, mu2, sigma2):
    """The official computation (SciPy sqrtm of the product, real part)."""
    root = scipy.linalg.sqrtm(np.dot(sigma1, sigma2))
    return float(np.real(np.square(mu1 - mu2).sum() + np.trace(sigma1 + sigma2 - 2 * root)))


def random_statistics(rng, count, dimension, shift=0.0):
    features = rng.normal(size=(count, dimension)) @ rng.normal(size=(dimension, dimension)) + shift
    return features.mean(axis=0), np.cov(features, rowvar=False), features


# ------------------------------------------------------------------------------ Fréchet distance

@pytest.mark.parametrize("dimension", [8, 64, 256])
def test_frechet_distance_matches_scipy(dimension):
    rng = np.random.default_rng(dimension)
    mu1, sigma1, _ = random_statistics(rng, 4 * dimension, dimension)
    mu2, sigma2, _ = random_statistics(rng, 4 * dimension, dimension, shift=0.3)
    ours, reference = (metrics.frechet_distance(mu1, sigma1, mu2, sigma2),
                       official_frechet(mu1, sigma1, mu2, sigma2))
    assert reference > 1
    assert abs(ours - reference) <= 1e-6 * abs(reference)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    mu, sigma, _ = random_statistics(np.random.default_rng(0), 500, 64)
    assert abs(metrics.frechet_distance(mu, sigma, mu, sigma)) < 1e-8 * np.trace(sigma)


def test_frechet_distance_warns_on_a_non_psd_product_and_refuses_mismatched_shapes():
    mu, sigma, _ = random_statistics(np.random.default_rng(1), 100, 16)
    with pytest.warns(RuntimeWarning, match="ill-conditioned"):
        metrics.frechet_distance(mu, sigma, mu, -sigma)
    with pytest.raises(metrics.MetricError, match="do not match"):
        metrics.frechet_distance(mu, sigma, mu[:8], sigma[:8, :8])


def test_streaming_moments_equal_batch_statistics(tmp_path):
    _, _, features = random_statistics(np.random.default_rng(2), 203, 32, shift=5.0)
    moments = metrics.StreamingMoments(32)
    for start, stop in ((0, 1), (1, 50), (50, 51), (51, 203)):
        moments.update(features[start:stop])
    assert moments.count == 203
    np.testing.assert_allclose(moments.mean, features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(moments.covariance, np.cov(features, rowvar=False), rtol=1e-9, atol=1e-9)
    moments.save(tmp_path / "stats.npz")
    restored = metrics.StreamingMoments.load(tmp_path / "stats.npz")
    np.testing.assert_allclose(restored.covariance, moments.covariance, rtol=1e-9, atol=1e-9)
    assert os.listdir(tmp_path) == ["stats.npz"]
    with pytest.raises(metrics.MetricError, match="at least 2"):
        metrics.StreamingMoments(4).covariance


# ------------------------------------------------------------------------------ KID

def unbiased_mmd2(x, y):
    """The unbiased MMD^2 of the cubic polynomial kernel, term by term."""
    kernel = lambda a, b: (a @ b / x.shape[1] + 1) ** 3
    m = len(x)
    within_x = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    within_y = sum(kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(kernel(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    return within_x + within_y - 2 * across


def test_kernel_inception_distance_is_the_unbiased_mmd():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(12, 5)), rng.normal(0.5, 1.0, size=(12, 5))
    # One subset holding every row: a permutation of each set, so KID is the MMD^2 of the sets.
    assert metrics.kernel_inception_distance(real, fake, num_subsets=1) == pytest.approx(
        unbiased_mmd2(fake, real), rel=1e-9)
    # Subsets: the mean of the subsets' MMD^2.
    same = rng.normal(size=(400, 5))
    near_zero = metrics.kernel_inception_distance(same[:200], same[200:], num_subsets=20, max_subset_size=50)
    shifted = metrics.kernel_inception_distance(same[:200], same[200:] + 1.0, num_subsets=20,
                                                max_subset_size=50)
    assert abs(near_zero) < 0.05 * shifted
    with pytest.raises(metrics.MetricError, match="at least 2"):
        metrics.kernel_inception_distance(real[:1], fake)


# ------------------------------------------------------------------------------ FID pipeline

@pytest.fixture(scope="module")
def inception():
    """Inception-v3 at random initialisation (the real pipeline: resize, scale, pool features)."""
    return metrics.InceptionFeatures(weights=None, batch_size=16, seed=0)


def image_dataset(images, name):
    return data.ImageDataset.from_images(name, images)


@pytest.fixture(scope="module")
def emoji_images():
    return data.emoji_dataset(32).level(32)[:40]


def test_inception_features_shape_resize_and_refusals(inception, emoji_images):
    features = inception(emoji_images[:5])
    assert features.shape == (5, 2048) and np.all(np.isfinite(features))
    assert np.std(features, axis=0).max() > 0  # the features depend on the image
    np.testing.assert_allclose(inception(emoji_images[2:3]), features[2:3], rtol=1e-4, atol=1e-5)
    gray = inception(emoji_images[:2, :, :, :1])
    np.testing.assert_allclose(gray, inception(np.repeat(emoji_images[:2, :, :, :1], 3, axis=-1)), atol=1e-5)
    with pytest.raises(metrics.MetricError, match="uint8 images"):
        inception(emoji_images[:2].astype(np.float32))


def test_fid_of_identical_sets_is_zero_and_a_shifted_set_scores_higher(inception, emoji_images, tmp_path):
    calls = []
    original = inception.__call__

    class Counting:  # the same extractor, counting the images it sees
        identity, model = inception.identity, inception.model

        def __call__(self, images):
            calls.append(len(images))
            return original(images)

    extractor = Counting()
    shifted = np.clip(emoji_images.astype(int) - 80, 0, 255).astype(np.uint8)
    cache = tmp_path / "cache"
    reals = metrics.real_statistics(image_dataset(emoji_images, "a"), extractor, 40, 16, cache)
    # The same images computed again (another cache), and a darker copy.
    same = metrics.real_statistics(image_dataset(emoji_images.copy(), "b"), extractor, 40, 16,
                                   tmp_path / "fresh")
    darker = metrics.real_statistics(image_dataset(shifted, "c"), extractor, 40, 16, cache)
    assert sum(calls) == 120
    fid_same = metrics.frechet_distance(same.mean, same.covariance, reals.mean, reals.covariance)
    fid_shifted = metrics.frechet_distance(darker.mean, darker.covariance, reals.mean, reals.covariance)
    # ~0: 40 feature rows of 2,048 dimensions leave ~2,000 zero eigenvalues whose round-off remains.
    assert abs(fid_same) < 1e-5 * np.trace(reals.covariance)
    assert fid_shifted > 1e3 * max(abs(fid_same), 1e-9)
    # Cached, keyed by the pixels (not the name), the count and the extractor.
    cached = metrics.real_statistics(image_dataset(emoji_images, "renamed"), extractor, 40, 16, cache)
    assert sum(calls) == 120
    np.testing.assert_array_equal(cached.mean, reals.mean)
    metrics.real_statistics(image_dataset(emoji_images, "a"), extractor, 20, 16, cache)
    assert sum(calls) == 140
    same_name_other_images = metrics.real_statistics(image_dataset(shifted, "a"), extractor, 40, 16, cache)
    np.testing.assert_array_equal(same_name_other_images.mean, darker.mean)
    assert len(os.listdir(cache)) == 3  # no temporary files left


@pytest.fixture(scope="module")
def tiny_generator():
    """32 px, with noise strengths off zero, as after training."""
    G = small_generator(32, fmap_base=128, fmap_max=16, mapping_layers=2, seed=4)
    return perturb(G, seed=4, names=("strength",))


def test_fid_of_a_generator_end_to_end(tiny_generator, inception, emoji_images, tmp_path):
    fid = metrics.FID(num_images=24, inception_weights=None, batch_size=8, cache_dir=tmp_path)
    fid._extractor = inception
    generator = from_generator(tiny_generator)
    dataset = image_dataset(emoji_images, "emoji-32")
    first, second = fid(generator, dataset), fid(generator, dataset)
    assert list(first) == ["fid24"]
    assert second["fid24"] == pytest.approx(first["fid24"], rel=1e-6)  # fixed seeds; the reals now cached
    assert first["fid24"] > 0
    with pytest.raises(metrics.MetricError, match="32px"):
        fid(generator, image_dataset(emoji_images[:, ::2, ::2], "small"))


def test_kid_of_a_generator_end_to_end(tiny_generator, inception, emoji_images, tmp_path):
    kid = metrics.metric_from_name("kid50k", num_images=16, batch_size=8, cache_dir=tmp_path)
    assert isinstance(kid, metrics.KID) and kid.name == "kid16"
    kid._extractor = inception
    generator = from_generator(tiny_generator)
    dataset = image_dataset(emoji_images, "emoji-32")
    first = kid(generator, dataset)
    assert len(os.listdir(tmp_path)) == 1  # the real features, cached
    assert kid(generator, dataset)["kid16"] == pytest.approx(first["kid16"], rel=1e-6)
    assert np.isfinite(first["kid16"])


def test_missing_inception_weights_offline_say_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(metrics.MetricError, match="could not be downloaded.*--inception-weights"):
        metrics.InceptionFeatures("imagenet")
    with pytest.raises(metrics.MetricError, match="not found"):
        metrics.InceptionFeatures(str(tmp_path / "missing.h5"))


# ------------------------------------------------------------------------------ PPL

class LinearToyGenerator:
    """mapping = identity (broadcast to every layer); synthesis = a fixed linear map of w to an image.
    So in W the path length of a sample is exactly ``|127.5 (w1 - w0) A|^2`` (squared-L2 distance)."""

    latent_size, num_layers, size = 6, 4, 8

    def __init__(self):
        self.matrix = np.random.default_rng(7).normal(size=(self.latent_size, self.size * self.size * 3)) / 10

    def mapping(self, z, truncation_psi=1.0):
        return np.repeat(np.asarray(z, np.float32)[:, None], self.num_layers, axis=1)

    def synthesis(self, dlatents, noise_seeds=None, raw=False):
        assert raw and noise_seeds is not None and len(noise_seeds) == len(dlatents)
        return (dlatents[:, 0] @ self.matrix).reshape(-1, self.size, self.size, 3).astype(np.float32)


def squared_l2(images0, images1):
    return np.sum(np.square(images0.astype(np.float64) - images1), axis=(1, 2, 3))


def test_ppl_w_full_matches_the_analytic_path_length():
    toy = LinearToyGenerator()
    samples = metrics.path_length_samples(toy, squared_l2, 20, space="w", sampling="full", crop=False,
                                          batch_size=8, seed=3)
    rng, expected = np.random.default_rng(3), []
    for batch in (8, 8, 4):
        z, _, _ = metrics.ppl_inputs(rng, batch, toy.latent_size, "full")
        expected.append(np.sum(np.square(127.5 * (z[1::2] - z[0::2]) @ toy.matrix), axis=1))
    np.testing.assert_allclose(samples, np.concatenate(expected), rtol=2e-2)


def test_ppl_z_end_matches_the_analytic_slerp_derivative():
    toy = LinearToyGenerator()
    samples = metrics.path_length_samples(toy, squared_l2, 12, space="z", sampling="end", crop=False,
                                          batch_size=12, seed=5)
    z, t, _ = metrics.ppl_inputs(np.random.default_rng(5), 12, toy.latent_size, "end")
    assert not t.any()
    a = z[0::2] / np.linalg.norm(z[0::2], axis=1, keepdims=True)
    b = z[1::2] / np.linalg.norm(z[1::2], axis=1, keepdims=True)
    cosine = np.sum(a * b, axis=1, keepdims=True)
    theta = np.arccos(cosine)
    direction = (b - cosine * a) / np.linalg.norm(b - cosine * a, axis=1, keepdims=True)
    # d/dt slerp(a, b, t) at t = 0 is theta * direction: the path moves at speed theta along it.
    expected = np.sum(np.square(127.5 * theta * direction @ toy.matrix), axis=1)
    np.testing.assert_allclose(samples, expected, rtol=2e-2)


def test_ppl_draws_fresh_noise_shared_by_both_ends_of_a_path():
    seen = []

    class Recording(LinearToyGenerator):
        def synthesis(self, dlatents, noise_seeds=None, raw=False):
            seen.append(np.array(noise_seeds))
            return super().synthesis(dlatents, noise_seeds, raw)

    metrics.path_length_samples(Recording(), squared_l2, 10, space="w", sampling="full", batch_size=5, seed=1)
    assert len(seen) == 4  # two batches, two path ends each
    np.testing.assert_array_equal(seen[0], seen[1])
    np.testing.assert_array_equal(seen[2], seen[3])
    assert len(set(np.concatenate([seen[0], seen[2]]))) == 10  # every path its own noise


def test_official_filter_and_crop_hand_checked():
    # 1st percentile (lower) of 1..200 is 2, 99th (higher) is 199: the mean of 2..199.
    assert metrics.filtered_mean(np.arange(1, 201, dtype=np.float64)) == 100.5
    # Of 200 samples the extremes go; of 100, the percentile positions (0.99, 98.01) round outwards and
    # keep them, as the official np.percentile(..., interpolation='lower' / 'higher') does.
    assert metrics.filtered_mean(np.array([0.0] + [5.0] * 198 + [1e9])) == 5.0
    assert (metrics.filtered_mean(np.array([0.0] + [5.0] * 98 + [1e9]))
            == pytest.approx((5.0 * 98 + 1e9) / 100))
    images = np.arange(2 * 16 * 16 * 1, dtype=np.float32).reshape(2, 16, 16, 1) / 1000 - 1
    cropped = metrics.ppl_crop(images)
    assert cropped.shape == (2, 8, 8, 1)  # rows 6..13, columns 4..11 of 16
    np.testing.assert_allclose(cropped, (images[:, 6:14, 4:12] + 1) * 127.5)
    large = np.zeros((1, 1024, 1024, 3), np.float32)
    large[:, 384:896, 256:768] = 1.0
    assert metrics.ppl_crop(large).shape == (1, 256, 256, 3)
    np.testing.assert_allclose(metrics.ppl_crop(large), 255.0)
    assert metrics.ppl_crop(large, crop=False).shape == (1, 256, 256, 3)  # downsampled either way


def small_feature_model():
    inputs = keras.Input((None, None, 3))
    first = keras.layers.Conv2D(8, 3, activation="relu",
                                kernel_initializer=keras.initializers.HeNormal(1))(inputs)
    second = keras.layers.Conv2D(8, 3, strides=2, activation="relu",
                                 kernel_initializer=keras.initializers.HeNormal(2))(first)
    return keras.Model(inputs, [first, second])


def test_feature_distance_properties():
    distance = metrics.FeatureDistance(small_feature_model(), layer_weights=[np.ones(8), np.full(8, 2.0)])
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 255, (3, 16, 16, 3)), rng.uniform(0, 255, (3, 16, 16, 3))
    np.testing.assert_allclose(distance(x, x), 0, atol=1e-7)
    assert np.all(distance(x, y) > 0)
    np.testing.assert_allclose(distance(x, y), distance(y, x), rtol=1e-5)


def test_ppl_end_to_end_with_a_small_perceptual_network(tiny_generator):
    generator = from_generator(tiny_generator)
    distance = metrics.FeatureDistance(small_feature_model())
    results = {}
    for space in ("z", "w"):
        ppl = metrics.PPL(distance, space=space, sampling="full", num_samples=20, batch_size=10)
        results.update(ppl(generator))
        assert ppl(generator) == {ppl.name: results[ppl.name]}  # seeded
    assert set(results) == {"ppl_zfull", "ppl_wfull"}
    assert all(np.isfinite(value) and value > 0 for value in results.values())
    with pytest.raises(metrics.MetricError, match="space"):
        metrics.PPL(distance, space="x")


def test_lpips_vgg16_plumbing(tmp_path):
    lin = {f"lin{i}": np.abs(np.random.default_rng(i).normal(size=c))
           for i, c in enumerate((64, 128, 256, 512, 512))}
    np.savez(tmp_path / "lin.npz", **lin)
    distance = metrics.lpips_vgg16(str(tmp_path / "lin.npz"), vgg_weights=None)
    x, y = np.random.default_rng(0).uniform(0, 255, (2, 2, 64, 64, 3))
    assert distance(x, x).max() < 1e-6 and distance(x, y).min() > 0
    with pytest.raises(metrics.MetricError, match="not found"):
        metrics.lpips_vgg16(str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "short.npz", lin0=np.ones(64))
    with pytest.raises(metrics.MetricError, match="lacks"):
        metrics.lpips_vgg16(str(tmp_path / "short.npz"), vgg_weights=None)
    np.savez(tmp_path / "wrong.npz", **{**lin, "lin2": np.ones(3)})
    with pytest.raises(metrics.MetricError, match="lin2 has 3 values"):
        metrics.lpips_vgg16(str(tmp_path / "wrong.npz"), vgg_weights=None)


# ------------------------------------------------------------------------------ CLI and training

def test_cli_metrics(tiny_generator, inception, emoji_images, tmp_path, capsys):
    save_networks(tmp_path / "snapshot", Gs=tiny_generator)
    weights = str(tmp_path / "inception.weights.h5")
    inception.model.save_weights(weights)
    folder = tmp_path / "reals"
    folder.mkdir()
    for index, image in enumerate(emoji_images[:12]):
        Image.fromarray(image).save(folder / f"{index}.png")
    argv = ["metrics", "fid50k", "--model", str(tmp_path / "snapshot"), "--data", str(folder),
            "--num_images", "12", "--inception_weights", weights, "--cache_dir", str(tmp_path / "cache"),
            "--json", str(tmp_path / "out.json")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "fid12" in printed
    results = json.load(open(tmp_path / "out.json"))["results"]
    assert set(results) == {"fid12"} and results["fid12"] > 0
    assert main(["metrics", "fid5x", "--model", str(tmp_path / "snapshot")]) == 1
    assert "unknown metric" in capsys.readouterr().err
    assert main(["metrics", "ppl_wend", "--model", str(tmp_path / "snapshot")]) == 1
    assert "--lpips-weights" in capsys.readouterr().err
    assert main(["metrics", "fid50k", "--model", str(tmp_path / "snapshot"),
                 "--inception_weights", weights]) == 1
    assert "needs the real dataset" in capsys.readouterr().err
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    assert main(argv[:6] + ["--inception_weights", str(tmp_path / "bad.h5")]) == 1
    assert "not a usable Inception-v3" in capsys.readouterr().err
    (tmp_path / "bad.pkl").write_bytes(b"garbage")
    assert main(["metrics", "fid50k", "--model", str(tmp_path / "bad.pkl"), "--data", str(folder),
                 "--inception_weights", weights]) == 1
    assert "tf-stylegan: error:" in capsys.readouterr().err
    assert main(argv[:-1] + [str(tmp_path / "no" / "out.json")]) == 1
    assert "folder does not exist" in capsys.readouterr().err


class FailingMetric:
    def __call__(self, generator, dataset, print_fn=None):
        raise RuntimeError("out of memory")


def test_a_failing_metric_neither_stops_training_nor_loses_the_checkpoint(tmp_path):
    trainer, lines = train_in_process(tmp_path / "run", ["train.total_kimg = 0.064"],
                                      metrics=[FailingMetric()])
    assert int(trainer.cur_nimg.numpy()) == 64
    assert any("metrics failed, training continues: RuntimeError: out of memory" in line for line in lines)
    assert trainer.checkpoints.manager.latest_checkpoint.endswith("ckpt-64")


@pytest.mark.slow
def test_a_training_run_logs_fid(tmp_path):
    trainer, lines = train_in_process(tmp_path / "run", [
        "train.metrics = [@FID()]", "train.metrics_kimg = 0.128", "FID.num_images = 16",
        "FID.inception_weights = None", "FID.batch_size = 16", f"FID.cache_dir = '{tmp_path / 'cache'}'"])
    scalars, _ = read_events(str(tmp_path / "run"))
    assert set(scalars["Metrics/fid16"]) == {128, 256}  # every 0.128 kimg and at the end
    assert all(np.isfinite(value) and value > 0 for value in scalars["Metrics/fid16"].values())
    logged = [line for line in lines if "fid16" in line]
    assert len(logged) == 2
    with open(tmp_path / "run" / "metrics.jsonl") as file:
        assert [float(line.split('"kimg": ')[1].split(",")[0]) for line in file] == [0.128, 0.256]
    assert gin.config_str() == ""  # the helper leaves gin clear
