"""tf_stylegan.figures and its commands (generate, style-mix, truncation, noise, interpolate) on a
tiny 16 px generator (6 dlatent layers, truncation cutoff 8 >= 6) with non-zero noise strengths."""

import numpy as np
import pytest
from helpers import clone, perturb, small_generator
from PIL import Image

import tf_stylegan
from tf_stylegan import figures
from tf_stylegan.cli import main
from tf_stylegan.cli.common import output_path
from tf_stylegan.images import save_gif, save_image

SIZE = 16  # the tiny generator's resolution
LAYERS = 6


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    """{"full": default cutoff 8 (covers all 6 layers), "cutoff2": the same weights, cutoff 2}."""
    from tf_stylegan.formats.snapshot import save_networks

    root = tmp_path_factory.mktemp("figures")
    # Noise strengths and w_avg built at 0: noise would change nothing, truncation move nowhere real.
    G = perturb(small_generator(SIZE, latent=32, seed=1), seed=3, scale=0.5, names=("strength",),
                w_avg_scale=1.0)
    save_networks(root / "snap", Gs=G)
    save_networks(root / "snap_cutoff2", Gs=clone(G, truncation_cutoff=2))
    return {"full": root / "snap", "cutoff2": root / "snap_cutoff2"}


@pytest.fixture(scope="module")
def model(snapshots):
    # batch_size 1: every image is rendered alone, so the exact comparisons below do not depend on
    # which images share a batch (CPU kernels may round a pixel differently in other batch shapes)
    loaded = tf_stylegan.load(snapshots["full"], batch_size=1)
    assert (loaded.resolution, loaded.num_layers, loaded.truncation_cutoff) == (SIZE, LAYERS, 8)
    return loaded


def _cell(image, row, column, size=SIZE):
    return image[row * size:(row + 1) * size, column * size:(column + 1) * size]


def _opened(path):
    with Image.open(path) as image:
        return image.size, getattr(image, "n_frames", 1), np.asarray(image.convert("RGB"))


# --- arguments ---------------------------------------------------------------------------------


def test_seed_lists_and_ranges():
    assert figures.parse_seeds(["1", "2", "3"]) == [1, 2, 3]
    assert figures.parse_seeds(["0-3", "9"]) == [0, 1, 2, 3, 9]
    assert figures.parse_seeds("1,5-6") == [1, 5, 6]
    assert figures.parse_seeds([4, 4]) == [4, 4]
    for bad in ([], [""], ["3-1"], ["-2"], ["x"], ["1.5"]):
        with pytest.raises(figures.FigureError):
            figures.parse_seeds(bad)


def test_style_ranges_are_the_papers_clipped_with_a_small_model_fallback():
    assert figures.style_layers("coarse", 18) == range(0, 4)
    assert figures.style_layers("middle", 18) == range(4, 8)
    assert figures.style_layers("fine", 18) == range(8, 18)
    assert figures.style_layers("coarse", LAYERS) == range(0, 4)
    assert figures.style_layers("middle", LAYERS) == range(4, 6)  # clipped
    assert figures.style_layers("fine", LAYERS) == range(3, 6)  # empty -> the upper half
    assert "upper half" in figures.describe_styles("fine", LAYERS)
    assert figures.describe_styles("coarse", 18) == "coarse = layers 0-3 (4-8 px)"
    assert figures.style_layers("0-3", LAYERS) == range(0, 4)
    assert figures.style_layers("2", LAYERS) == range(2, 3)
    assert figures.style_layers("4-", LAYERS) == range(4, 6)
    assert figures.style_layers("4-9", LAYERS) == range(4, 6)
    for bad in ("bogus", "6-7", "3-1", "a-b"):
        with pytest.raises(figures.FigureError):
            figures.style_layers(bad, LAYERS)


def test_noise_layer_groups():
    big = figures.noise_layer_groups(18)
    assert ((big["fine"], big["coarse"], big["all"], big["none"])
            == (range(8, 18), range(0, 8), range(18), range(0)))
    small = figures.noise_layer_groups(LAYERS)
    assert (small["fine"], small["coarse"]) == (range(3, 6), range(0, 3))


def test_slerp_keeps_the_norm_and_the_ends():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8), rng.normal(size=8)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    path = figures.slerp(a, b, np.linspace(0, 1, 5))
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a))
    np.testing.assert_allclose(figures.slerp(a, 2 * a, [0.5])[0], 1.5 * a)  # parallel: linear


# --- figures -----------------------------------------------------------------------------------


def test_generate_and_grid(model):
    images = figures.generate_images(model, [1, 2, 3])
    assert images.shape == (3, SIZE, SIZE, 3) and images.dtype == np.uint8
    # same seed, same image
    np.testing.assert_array_equal(figures.generate_images(model, [3, 1])[1], images[0])
    assert not np.array_equal(images[0], images[1])
    grid = figures.image_grid(images, figures.grid_columns(3))  # 2 columns: ceil(sqrt(3))
    assert grid.shape == (2 * SIZE, 2 * SIZE, 3)
    for index in range(3):
        np.testing.assert_array_equal(_cell(grid, index // 2, index % 2), images[index])
    assert not _cell(grid, 1, 1).any()  # the missing cell is black


def test_style_mixing_figure(model):
    rows, columns = [1, 2, 7], [7, 8]
    figure = figures.style_mixing_figure(model, rows, columns, "coarse")
    assert figure.shape == ((len(rows) + 1) * SIZE, (len(columns) + 1) * SIZE, 3)
    assert (_cell(figure, 0, 0) == 255).all()  # blank top-left
    plain = {seed: image for seed, image in zip([1, 2, 7, 8], model.generate(seeds=[1, 2, 7, 8]))}
    for column, seed in enumerate(columns):  # the top row: the column sources
        np.testing.assert_array_equal(_cell(figure, 0, column + 1), plain[seed])
    for row, seed in enumerate(rows):  # the left column: the row sources
        np.testing.assert_array_equal(_cell(figure, row + 1, 0), plain[seed])
    np.testing.assert_array_equal(_cell(figure, 3, 1), plain[7])  # row seed 7 x column seed 7: unmixed
    mixed = _cell(figure, 1, 1)  # row 1 with column 7's coarse styles: neither source
    assert not np.array_equal(mixed, plain[1]) and not np.array_equal(mixed, plain[7])

    # the cells are synthesis of row dlatents with the layers replaced by the column's
    w_rows = model.mapping(model.latents(rows), truncation_psi=model.truncation_psi)
    w_columns = model.mapping(model.latents(columns), truncation_psi=model.truncation_psi)
    expected = w_rows[0].copy()
    expected[0:4] = w_columns[1][0:4]
    np.testing.assert_array_equal(_cell(figure, 1, 2), model.synthesis(expected[None])[0])

    fine = figures.style_mixing_figure(model, rows, columns, "fine")
    assert not np.array_equal(_cell(fine, 1, 1), mixed)  # other style range, other cell
    np.testing.assert_array_equal(fine[:SIZE], figure[:SIZE])  # same sources
    per_row = figures.style_mixing_figure(model, rows, columns, ["coarse", "fine", "middle"])
    np.testing.assert_array_equal(_cell(per_row, 1, 1), mixed)
    np.testing.assert_array_equal(_cell(per_row, 2, 2), _cell(fine, 2, 2))
    untruncated = figures.style_mixing_figure(model, rows, columns, "coarse", truncation_psi=1)
    np.testing.assert_array_equal(_cell(untruncated, 0, 1), model.generate(seeds=[7], truncation_psi=1)[0])
    with pytest.raises(figures.FigureError):
        figures.style_mixing_figure(model, rows, columns, ["coarse", "fine"])  # neither one nor one per row


def test_style_mixing_dlatents_copies_the_column_layers():
    rows, columns = np.zeros((2, LAYERS, 1)), np.ones((3, LAYERS, 1))
    mixed = figures.style_mixing_dlatents(rows, columns, range(1, 3))
    assert mixed.shape == (2, 3, LAYERS, 1)
    assert (mixed[:, :, 1:3] == 1).all() and (mixed[:, :, [0, 3, 4, 5]] == 0).all()
    per_row = figures.style_mixing_dlatents(rows, columns, [range(0, 1), range(5, 6)])
    assert per_row[0, :, :, 0].tolist() == [[1, 0, 0, 0, 0, 0]] * 3
    assert per_row[1, :, :, 0].tolist() == [[0, 0, 0, 0, 0, 1]] * 3


def test_truncation_figure(model, snapshots):
    seeds, steps = [1, 2], 9
    figure = figures.truncation_figure(model, seeds, steps)
    assert figure.shape == (len(seeds) * SIZE, steps * SIZE, 3)
    psis = figures.truncation_psis(steps)
    assert psis[0] == 1 and psis[steps // 2] == 0 and psis[-1] == -1
    for row, seed in enumerate(seeds):
        for column in (0, 2, steps - 1):  # psi 1, 0.5, -1: as generate
            np.testing.assert_array_equal(_cell(figure, row, column),
                                          model.generate(seeds=[seed], truncation_psi=psis[column])[0])
    assert not np.array_equal(_cell(figure, 0, 0), _cell(figure, 1, 0))
    # cutoff 8 covers all 6 layers: psi = 0 is w_avg everywhere, the same image for every seed
    np.testing.assert_array_equal(_cell(figure, 0, steps // 2), _cell(figure, 1, steps // 2))

    # cutoff 2 < 6 layers: psi = 0 equalises only layers 0-1, so the images still differ
    partial = tf_stylegan.load(snapshots["cutoff2"], batch_size=1)
    assert partial.truncation_cutoff == 2
    w = partial.mapping(partial.latents(seeds), truncation_psi=0)
    np.testing.assert_array_equal(w[0, :2], w[1, :2])
    assert not np.array_equal(w[0, 2:], w[1, 2:])
    figure = figures.truncation_figure(partial, seeds, 3)
    assert not np.array_equal(_cell(figure, 0, 1), _cell(figure, 1, 1))
    with pytest.raises(figures.FigureError):
        figures.truncation_figure(model, seeds, 1)


def test_noise_figure(model):
    seeds = [1, 2]
    figure, means = figures.noise_figure(model, seeds, draws=6, noise_seed=0)
    assert figure.shape == (len(seeds) * SIZE, 5 * SIZE, 3)
    other, other_means = figures.noise_figure(model, seeds, draws=6, noise_seed=11)
    for row in range(len(seeds)):
        np.testing.assert_array_equal(_cell(figure, row, 1), _cell(other, row, 1))  # (b) no noise
        assert not np.array_equal(_cell(figure, row, 0), _cell(other, row, 0))  # (a) other noise
        cells = [_cell(figure, row, column) for column in range(4)]
        for a in range(4):  # all / none / fine / coarse noise: four different pictures
            for b in range(a + 1, 4):
                assert not np.array_equal(cells[a], cells[b]), (row, a, b)
        std_map = _cell(figure, row, 4)
        assert (std_map[..., 0] == std_map[..., 1]).all() and (std_map[..., 0] == std_map[..., 2]).all()
    assert figure[:, 4 * SIZE:].max() == 255  # normalised: the largest std is white
    assert (means > 0).all() and not np.array_equal(means, other_means)

    w = model.mapping(model.latents([1]), truncation_psi=model.truncation_psi)
    np.testing.assert_array_equal(_cell(figure, 0, 1), model.synthesis(w, noise_scale=np.zeros(LAYERS))[0])
    np.testing.assert_array_equal(_cell(figure, 0, 0), model.synthesis(w, noise_seeds=[0])[0])
    std = figures.noise_std(model, w, draws=6)
    assert std.shape == (SIZE, SIZE) and std.mean() == pytest.approx(means[0])
    assert not figures.noise_std(model, w, draws=6, noise_scale=np.zeros(LAYERS)).any()  # no noise: zero


def test_interpolation_frames(model):
    seeds = [1, 2, 3]
    plain = model.generate(seeds=seeds)
    for space in ("w", "z"):
        frames = figures.interpolation_frames(model, seeds, frames=4, space=space)
        assert frames.shape == (4 * 2 + 1, SIZE, SIZE, 3)
        np.testing.assert_array_equal(frames[0], plain[0])
        np.testing.assert_array_equal(frames[4], plain[1])  # each step starts on its seed
        np.testing.assert_array_equal(frames[-1], plain[2])
        assert not np.array_equal(frames[1], frames[0]) and not np.array_equal(frames[1], frames[4])
        looped = figures.interpolation_frames(model, seeds, frames=4, space=space, loop=True)
        assert looped.shape[0] == 4 * 3
        np.testing.assert_array_equal(looped[:9], frames)
    w_walk = figures.interpolation_frames(model, seeds[:2], frames=4, space="w")
    z_walk = figures.interpolation_frames(model, seeds[:2], frames=4, space="z")
    assert not np.array_equal(w_walk[2], z_walk[2])
    with pytest.raises(figures.FigureError):
        figures.interpolation_frames(model, [1], frames=4)


def test_output_paths(tmp_path):
    assert output_path(tmp_path / "a.png", "x.png") == str(tmp_path / "a.png")
    assert output_path(tmp_path / "folder", "x.png") == str(tmp_path / "folder" / "x.png")
    with pytest.raises(ValueError, match="unsupported file type '.txt'"):
        output_path(tmp_path / "a.txt", "x.png")
    with pytest.raises(ValueError, match="unsupported file type '.png'"):
        output_path(tmp_path / "a.png", "x.gif", suffixes=(".gif",))


def test_save_image_and_gif_write_their_formats(tmp_path):
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    np.testing.assert_array_equal(np.asarray(Image.open(save_image(tmp_path / "a" / "x.png", image))), image)
    assert Image.open(save_image(tmp_path / "x.jpg", image)).format == "JPEG"
    with pytest.raises(ValueError, match="unsupported image type"):
        save_image(tmp_path / "x.txt", image)
    gif = Image.open(save_gif(tmp_path / "walk.gif", np.stack([image, 255 - image]), duration=30))
    assert gif.format == "GIF" and gif.n_frames == 2
    with pytest.raises(ValueError, match="no frames"):
        save_gif(tmp_path / "empty.gif", np.zeros((0, 4, 4, 3), np.uint8))


# --- commands ----------------------------------------------------------------------------------


def test_generate_command(snapshots, model, tmp_path, capsys):
    folder = tmp_path / "images"
    assert main(["generate", str(snapshots["full"]), "--seeds", "1-2", "5", "--out", str(folder),
                 "--batch_size", "1"]) == 0
    printed = capsys.readouterr().out
    assert sorted(path.name for path in folder.iterdir()) == ["seed0001.png", "seed0002.png", "seed0005.png"]
    assert f"seed0005.png ({SIZE}x{SIZE} px)" in printed
    size, _, pixels = _opened(folder / "seed0005.png")
    assert size == (SIZE, SIZE)
    np.testing.assert_array_equal(pixels, model.generate(seeds=[5])[0])

    grid = tmp_path / "grid.png"
    assert main(["generate", str(snapshots["full"]), "--seeds", "0-4", "--grid", "3", "--out", str(grid),
                 "--truncation_psi", "1", "--batch_size", "2"]) == 0
    assert f"({3 * SIZE}x{2 * SIZE} px" in capsys.readouterr().out
    size, _, pixels = _opened(grid)
    assert size == (3 * SIZE, 2 * SIZE)
    # seed 4 is alone in the last batch of 2, as in model (batch 1): the same pixels
    np.testing.assert_array_equal(_cell(pixels, 1, 1), model.generate(seeds=[4], truncation_psi=1)[0])


def test_figure_commands(snapshots, tmp_path, capsys):
    snap = str(snapshots["full"])
    assert main(["style-mix", snap, "--rows", "1", "2", "--cols", "3-5", "--styles", "middle",
                 "--out", str(tmp_path / "fig3.png")]) == 0
    assert "middle = layers 4-5" in capsys.readouterr().out
    assert _opened(tmp_path / "fig3.png")[0] == (4 * SIZE, 3 * SIZE)

    assert main(["style-mix", snap, "--rows", "1", "2", "--cols", "3", "--styles", "coarse", "0-1",
                 "--out", str(tmp_path / "figs")]) == 0  # a folder: the default name
    assert _opened(tmp_path / "figs" / "style-mix.png")[0] == (2 * SIZE, 3 * SIZE)
    capsys.readouterr()

    assert main(["truncation", snap, "--seeds", "1", "2", "--steps", "5",
                 "--out", str(tmp_path / "trunc.png")]) == 0
    printed = capsys.readouterr().out
    assert f"({5 * SIZE}x{2 * SIZE} px" in printed and "psi 1 0.5 0 -0.5 -1" in printed
    assert _opened(tmp_path / "trunc.png")[0] == (5 * SIZE, 2 * SIZE)

    assert main(["noise", snap, "--seeds", "1", "2", "--draws", "4",
                 "--out", str(tmp_path / "noise.png")]) == 0
    printed = capsys.readouterr().out
    assert (f"({5 * SIZE}x{2 * SIZE} px" in printed
            and "seed 2: mean per-pixel std over 4 noise draws" in printed)
    assert _opened(tmp_path / "noise.png")[0] == (5 * SIZE, 2 * SIZE)

    for space, loop, count in (("w", [], 2 * 3 + 1), ("z", ["--loop"], 3 * 3)):
        path = tmp_path / f"walk_{space}.gif"
        assert main(["interpolate", snap, "--seeds", "1-3", "--frames", "3", "--space", space,
                     "--out", str(path), "--duration", "50", *loop]) == 0
        assert f"{count} frames of 50 ms" in capsys.readouterr().out
        size, frames, _ = _opened(path)
        assert (size, frames) == ((SIZE, SIZE), count)


@pytest.mark.parametrize("argv, message", [
    (["generate", "{missing}", "--seeds", "1", "--out", "{tmp}/a.png"], "no such file or directory"),
    (["generate", "{snap}", "--seeds", "--out", "{tmp}/a.png"], "no seeds given"),
    (["generate", "{snap}", "--seeds", "5-2", "--out", "{tmp}/a.png"], "bad seed range"),
    (["generate", "{snap}", "--seeds", "1", "--out", "{tmp}/a.txt"], "unsupported file type"),
    (["style-mix", "{snap}", "--rows", "1", "--cols", "2", "--styles", "ears", "--out", "{tmp}/a.png"],
     "unknown style range 'ears'"),
    (["style-mix", "{snap}", "--rows", "1", "--cols", "2", "--styles", "7-9", "--out", "{tmp}/a.png"],
     "starts past the model's last layer"),
    (["style-mix", "{snap}", "--rows", "--cols", "2", "--out", "{tmp}/a.png"], "no seeds given"),
    (["truncation", "{snap}", "--seeds", "1", "--steps", "1", "--out", "{tmp}/a.png"],
     "steps must be at least 2"),
    (["noise", "{snap}", "--seeds", "1", "--draws", "1", "--out", "{tmp}/a.png"],
     "--draws must be at least 2"),
    (["interpolate", "{snap}", "--seeds", "1", "--out", "{tmp}/a.gif"], "at least two seeds"),
    (["interpolate", "{snap}", "--seeds", "1", "2", "--out", "{tmp}/a.png"], "unsupported file type"),
])
def test_bad_input_is_an_error_not_a_traceback(snapshots, tmp_path, capsys, argv, message):
    argv = [arg.format(snap=snapshots["full"], missing=tmp_path / "missing", tmp=tmp_path) for arg in argv]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("tf-stylegan: error: ") and message in captured.err, captured.err
    assert "Traceback" not in captured.err
    assert not any(tmp_path.glob("a.*"))


def test_figure_commands_take_the_class_of_a_conditional_model(tmp_path, capsys):
    from tf_stylegan.formats.snapshot import save_networks

    G = perturb(small_generator(SIZE, latent=32, label_size=3, class_names=["ant", "bee", "cow"], seed=2),
                seed=4, scale=0.5)
    save_networks(tmp_path / "cond", Gs=G)
    model = tf_stylegan.load(tmp_path / "cond", batch_size=1)
    images = {}
    for index in (0, 2):
        out = tmp_path / f"class{index}.png"
        assert main(["generate", str(tmp_path / "cond"), "--seeds", "1", "2", "--class", str(index),
                     "--out", str(out)]) == 0
        images[index] = np.asarray(Image.open(out))
        expected = figures.image_grid(model.generate(seeds=[1, 2], class_index=index), 2)
        np.testing.assert_array_equal(images[index], expected)
    assert not np.array_equal(images[0], images[2])
    assert main(["generate", str(tmp_path / "cond"), "--seeds", "1", "2", "--class", "cow",
                 "--out", str(tmp_path / "cow.png")]) == 0  # by name
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "cow.png")), images[2])
    assert main(["style-mix", str(tmp_path / "cond"), "--rows", "1", "--cols", "2", "--class", "1",
                 "--out", str(tmp_path / "mix.png")]) == 0
    capsys.readouterr()
    for argv, message in ((["--class", "3"], "--class 3 is out of range: this generator has 3 classes"),
                          (["--class", "owl"], "no class 'owl': its classes are ant, bee, cow"),
                          ([], "class-conditional (3 classes): give --class")):
        assert main(["generate", str(tmp_path / "cond"), "--seeds", "1", "--out", str(tmp_path / "x.png"),
                     *argv]) == 1
        assert message in capsys.readouterr().err
    snapshot = tmp_path / "plain"
    save_networks(snapshot, Gs=small_generator(SIZE, latent=32))
    assert main(["generate", str(snapshot), "--seeds", "1", "--class", "0",
                 "--out", str(tmp_path / "y.png")]) == 1
    assert "--class given, but this generator is unconditional" in capsys.readouterr().err


def test_class_grid_has_a_row_per_class(tmp_path, capsys):
    from tf_stylegan.formats.snapshot import save_networks

    G = perturb(small_generator(SIZE, latent=32, label_size=3, class_names=["ant", "bee", "cow"], seed=2),
                seed=4, scale=0.5)
    save_networks(tmp_path / "cond", Gs=G)
    assert main(["generate", str(tmp_path / "cond"), "--seeds", "1", "2", "--class", "all",
                 "--out", str(tmp_path / "classes.png")]) == 0
    assert "3 classes (rows) x 2 seeds" in capsys.readouterr().out
    grid = np.asarray(Image.open(tmp_path / "classes.png"))
    model = tf_stylegan.load(tmp_path / "cond", batch_size=1)
    assert grid.shape == (3 * SIZE, 2 * SIZE, 3)
    for index in range(3):
        row = figures.image_grid(model.generate(seeds=[1, 2], class_index=index), 2)
        # batch 2 against batch 1: oneDNN's float rounding can move a pixel across a uint8 level
        difference = np.abs(grid[index * SIZE:(index + 1) * SIZE].astype(int) - row)
        assert difference.max() <= 1 and np.count_nonzero(difference) <= 4
    for argv, message in ((["style-mix", "--rows", "1", "--cols", "2"], "a grid of generate only"),
                          (["generate", "--w", str(tmp_path / "w.npz")], "give --seeds, not --w")):
        assert main([argv[0], str(tmp_path / "cond"), *argv[1:], "--class", "all",
                     "--out", str(tmp_path / "x.png")]) == 1
        assert message in capsys.readouterr().err
    save_networks(tmp_path / "plain", Gs=small_generator(SIZE, latent=32))
    assert main(["generate", str(tmp_path / "plain"), "--seeds", "1", "--class", "all",
                 "--out", str(tmp_path / "y.png")]) == 1
    assert "needs a class-conditional generator" in capsys.readouterr().err


def test_a_generator_without_noise_inputs(tmp_path, capsys):
    """Generator.use_noise=False (the official G_synthesis option): every figure but the noise one
    draws; that one says why it cannot, and noise seeds and scales change nothing."""
    from tf_stylegan.formats.snapshot import save_networks

    save_networks(tmp_path / "snap", Gs=perturb(small_generator(SIZE, latent=32, seed=1, use_noise=False),
                                                seed=3, scale=0.5))
    quiet = tf_stylegan.load(tmp_path / "snap", batch_size=1)
    assert quiet.noise_size == 0
    dlatents = quiet.mapping(quiet.latents([1, 2]))
    stored = quiet.synthesis(dlatents)
    np.testing.assert_array_equal(quiet.synthesis(dlatents, noise_seeds=[5, 6], noise_scale=3.0), stored)
    np.testing.assert_array_equal(quiet.synthesis(dlatents, noise=np.zeros((2, 0), np.float32)), stored)
    assert figures.truncation_figure(quiet, [1, 2], 3).shape == (2 * SIZE, 3 * SIZE, 3)
    with pytest.raises(figures.FigureError, match="no noise inputs .*use_noise=False"):
        figures.noise_figure(quiet, [1], draws=2)
    assert main(["noise", str(tmp_path / "snap"), "--seeds", "1", "--out", str(tmp_path / "n.png")]) == 1
    assert "no noise inputs" in capsys.readouterr().err
    assert not (tmp_path / "n.png").exists()
