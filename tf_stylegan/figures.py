"""The figures of the StyleGAN paper from a loaded generator: seed grids, style mixing (Fig. 3),
noise (Figs. 4 and 5), truncation (Fig. 8) and latent walks.

Every function takes a :class:`tf_stylegan.deploy.inference.StyleGAN` (``tf_stylegan.load(path)``) and
returns uint8 NumPy arrays (H x W x 3 figures, or N x H x W x 3 stacks); ``images.save_image`` and
``images.save_gif`` write them. ``truncation_psi=None`` means the model's default.
Below, ``S`` is the model's resolution (a cell is S x S pixels) and ``L`` its ``num_layers``
(dlatent layer ``i`` styles the ``2 ** (2 + i // 2)`` px convolutions: 0-1 4 px, 2-3 8 px, ...).

Images are rendered with the model's stored noise maps (deterministic, as the official
``generate_figures.py``) except where a figure is about noise (:func:`noise_figure`), which
draws fresh noise from explicit noise seeds. So a seed gives the same picture in every figure,
and the same as ``model.generate(seeds=...)``.

Wherever a figure takes seeds it also takes :class:`Latents`: projected images (``tf-stylegan project``'s
``projected_w.npz``), rendered with their own w and noise maps and not truncated unless
``truncation_psi`` is given. So a real image can be style-mixed with seeds, truncated or walked from.
"""

import dataclasses
import math
import re

import numpy as np

import tf_stylegan.images

# The paper's style ranges (Fig. 3), as dlatent layers [start, stop) of an 18-layer (1024 px) model.
NAMED_STYLES = {"coarse": (0, 4), "middle": (4, 8), "fine": (8, None)}
NOISE_COLUMNS = ("all", "none", "fine", "coarse")  # Fig. 5 (a)-(d); the std map follows


class FigureError(ValueError):
    """Arguments no figure can be drawn from (bad seeds, style ranges, counts, output paths, models)."""


@dataclasses.dataclass
class Latents:
    """Given images in W instead of seeds: ``dlatents`` [N, L, D] and each one's noise maps ``noise``
    [N, M] (flattened in layer order, as ``model.synthesis(noise=...)`` takes them), e.g. a projection's."""

    dlatents: np.ndarray
    noise: np.ndarray
    names: list

    def __len__(self):
        return len(self.dlatents)

    def take(self, rows):
        """These latents in the order of ``rows`` (indices)."""
        rows = list(rows)
        return Latents(self.dlatents[rows], self.noise[rows], [self.names[row] for row in rows])


# --- arguments ---------------------------------------------------------------------------------


def parse_seeds(specs):
    """Seeds from strings / ints: ``"7"``, ranges ``"0-15"`` (inclusive), comma lists ``"1,4-6"``.

    Returns a list of ints in the given order (duplicates kept). Raises :class:`FigureError` for
    an empty result, a negative seed, a reversed range or anything else.
    """
    if isinstance(specs, (str, int, np.integer)):
        specs = [specs]
    seeds = []
    for spec in specs:
        if isinstance(spec, (int, np.integer)):
            parts = [str(int(spec))]
        else:
            parts = [part for part in str(spec).split(",") if part.strip()]
        for part in parts:
            match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
            if not match:
                raise FigureError(f"bad seed {part.strip()!r}: use integers >= 0 and ranges like 0-15")
            start = int(match.group(1))
            stop = start if match.group(2) is None else int(match.group(2))
            if stop < start:
                raise FigureError(f"bad seed range {part.strip()!r}: the end is below the start")
            seeds.extend(range(start, stop + 1))
    if not seeds:
        raise FigureError("no seeds given (e.g. --seeds 1 2 3 or --seeds 0-15)")
    return seeds


def layer_resolution(layer):
    """Pixel size of the convolutions dlatent layer ``layer`` styles (4, 4, 8, 8, 16, ...)."""
    return 2 ** (2 + layer // 2)


def describe_layers(layers):
    """``"layers 0-3 (4-8 px)"``."""
    layers = list(layers)
    if not layers:
        return "no layers"
    first, last = layers[0], layers[-1]
    span = f"layer {first}" if first == last else f"layers {first}-{last}"
    low, high = layer_resolution(first), layer_resolution(last)
    return f"{span} ({low} px)" if low == high else f"{span} ({low}-{high} px)"


def style_layers(spec, num_layers):
    """The dlatent layers (a ``range``) a style-range ``spec`` names in a model of ``num_layers``.

    ``spec``: ``"coarse"`` (layers 0-3: 4-8 px), ``"middle"`` (4-7: 16-32 px), ``"fine"`` (8 to
    the end: 64 px and up), an inclusive range ``"2-5"``, an open range ``"8-"`` or one layer
    ``"3"``; or a ``range`` / list of consecutive layers. Ranges are clipped to the model's
    layers. Small models: a named range that is empty after clipping (``fine`` below 64 px,
    ``middle`` below 16 px) falls back to the upper half of the layers, ``num_layers // 2`` to
    the end (at 16 px, 6 layers: ``fine`` is layers 3-5), as :func:`noise_layer_groups` does;
    :func:`describe_styles` says so. A range starting past the last layer, a reversed range or
    an unknown name raises :class:`FigureError`.
    """
    if isinstance(spec, (range, list, tuple)):
        layers = list(spec)
        if not layers or layers != list(range(layers[0], layers[-1] + 1)) or layers[0] < 0:
            raise FigureError(f"style layers must be consecutive layers >= 0, got {layers}")
        start, stop = layers[0], layers[-1] + 1
    else:
        text = str(spec).strip().lower()
        if text in NAMED_STYLES:
            start, stop = NAMED_STYLES[text]
            stop = num_layers if stop is None else min(stop, num_layers)
            if start >= stop:
                return range(num_layers // 2, num_layers)
            return range(start, stop)
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d*))?", text)
        if not match:
            raise FigureError(f"unknown style range {spec!r}: use coarse, middle, fine or layers like 0-3")
        start = int(match.group(1))
        if match.group(2) is None:
            stop = start + 1
        elif match.group(2) == "":
            stop = num_layers
        else:
            stop = int(match.group(2)) + 1
        if stop <= start:
            raise FigureError(f"bad style range {spec!r}: the end is below the start")
    if start >= num_layers:
        raise FigureError(f"style range {spec!r} starts past the model's last layer "
                          f"({num_layers} layers: 0-{num_layers - 1})")
    return range(start, min(stop, num_layers))


def describe_styles(spec, num_layers):
    """``"coarse = layers 0-3 (4-8 px)"``, noting a small model's fallback (:func:`style_layers`)."""
    layers = style_layers(spec, num_layers)
    name = spec if isinstance(spec, str) else "custom"
    text = f"{name} = {describe_layers(layers)}"
    if isinstance(spec, str) and spec.strip().lower() in NAMED_STYLES:
        start, stop = NAMED_STYLES[spec.strip().lower()]
        if start >= (num_layers if stop is None else min(stop, num_layers)):
            text += f" (the model has only {num_layers} layers: its upper half instead)"
    return text


def noise_layer_groups(num_layers):
    """{"all", "none", "fine", "coarse": layers} of Fig. 5: fine = layers 8 to the end (64 px and
    up) and coarse = layers 0-7 (4-32 px); models of 8 layers or fewer (32 px and below), where
    that split leaves nothing fine: the upper and the lower half of the layers."""
    split = 8 if num_layers > 8 else num_layers // 2
    return {"all": range(num_layers), "none": range(0), "fine": range(split, num_layers),
            "coarse": range(0, split)}


def truncation_psis(steps, start=1.0, stop=-1.0):
    """The ψ of each column of :func:`truncation_figure`: ``steps`` values from 1 to -1, linear."""
    if int(steps) < 2:
        raise FigureError(f"steps must be at least 2, got {steps}")
    return np.linspace(start, stop, int(steps))


# --- drawing helpers ---------------------------------------------------------------------------


def image_grid(images, columns):
    """uint8 [N, S, S, 3] -> one uint8 [ceil(N / columns) * S, columns * S, 3] grid, row-major,
    missing cells black."""
    if int(columns) < 1:
        raise FigureError(f"grid columns must be at least 1, got {columns}")
    return tf_stylegan.images.image_grid(images, int(columns))


def grid_columns(count, columns=None):
    """``columns``, or by default ceil(sqrt(count)) (a square-ish grid)."""
    return int(columns) if columns else max(1, math.ceil(math.sqrt(count)))


def _canvas(rows, columns, size, background=255):
    return np.full((rows * size, columns * size, 3), background, np.uint8)


def _paste(canvas, image, row, column):
    size = image.shape[0]
    canvas[row * size:(row + 1) * size, column * size:(column + 1) * size] = image


def _rgb(images):
    """Grayscale models (1 channel) as RGB, so every figure is H x W x 3."""
    images = np.asarray(images, np.uint8)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def _dlatents(model, seeds, truncation_psi):
    """Truncated dlatents [N, L, D] of seeds (exactly as ``model.generate`` computes them), or of
    :class:`Latents` (truncated only with an explicit ``truncation_psi``)."""
    if isinstance(seeds, Latents):
        return seeds.dlatents if truncation_psi is None else model.truncate(seeds.dlatents, truncation_psi)
    return model.mapping(model.latents(seeds), truncation_psi=model.truncation_psi
                         if truncation_psi is None else truncation_psi)


def _noise(sources, repeats=1):
    """The noise maps of ``sources`` [N * repeats, M], each repeated ``repeats`` times (None for seeds:
    the stored maps)."""
    return np.repeat(sources.noise, repeats, axis=0) if isinstance(sources, Latents) else None


def _render(model, dlatents, noise=None):
    """Images of dlatents with the stored noise (as ``generate``), or with ``noise`` [N, M]."""
    return _rgb(model.synthesis(dlatents, noise=noise))


def _sources(seeds):
    """:class:`Latents` as given, else the parsed seeds."""
    return seeds if isinstance(seeds, Latents) else parse_seeds(seeds)


# --- figures -----------------------------------------------------------------------------------


def generate_images(model, seeds, truncation_psi=None):
    """uint8 [N, S, S, 3]: one image per seed (``model.generate``) or per :class:`Latents` row."""
    seeds = _sources(seeds)
    if isinstance(seeds, Latents):
        return _render(model, _dlatents(model, seeds, truncation_psi), seeds.noise)
    return _rgb(model.generate(seeds=seeds, truncation_psi=truncation_psi))


def class_grid(model, seeds, truncation_psi=None):
    """uint8 [K * S, N * S, 3] for a class-conditional model of K classes and N seeds: row k holds the
    images of the seeds in class k (``model.class_names[k]``); the same seed is one column."""
    if not model.label_size:
        raise FigureError("one row per class needs a class-conditional generator; this one is unconditional")
    seeds = parse_seeds(seeds)
    rows = [_rgb(model.generate(seeds=seeds, truncation_psi=truncation_psi, class_index=k))
            for k in range(model.label_size)]
    return image_grid(np.concatenate(rows), len(seeds))


def style_mixing_dlatents(row_dlatents, column_dlatents, layers):
    """[R, C, L, D]: cell (i, j) is ``row_dlatents[i]`` with ``layers`` taken from
    ``column_dlatents[j]`` (``layers``: one layer collection, or one per row)."""
    row_dlatents, column_dlatents = np.asarray(row_dlatents), np.asarray(column_dlatents)
    rows, columns = len(row_dlatents), len(column_dlatents)
    per_row = layers if _is_per_row(layers) else [layers] * rows
    if len(per_row) != rows:
        raise FigureError(f"give one style range, or one per row ({rows}), got {len(per_row)}")
    mixed = np.repeat(row_dlatents[:, None], columns, axis=1).copy()
    for row, row_layers in enumerate(per_row):
        row_layers = list(row_layers)
        mixed[row][:, row_layers] = column_dlatents[:, row_layers]
    return mixed


def _is_per_row(layers):
    return (isinstance(layers, (list, tuple)) and len(layers) > 0
            and not isinstance(layers[0], (int, np.integer)))


def style_mixing_figure(model, row_seeds, column_seeds, styles="coarse", truncation_psi=None):
    """The paper's Fig. 3 (the official ``draw_style_mixing_figure``): uint8
    [(R + 1) * S, (C + 1) * S, 3] for R row seeds and C column seeds.

    Top row: the column sources (B), after a blank white top-left cell; left column: the row
    sources (A). Cell (i, j) is row source i with the dlatent layers of ``styles`` copied from
    column source j: ``coarse`` brings B's pose, face shape and glasses, ``middle`` smaller
    features, ``fine`` mainly the colour scheme. ``styles``: a spec of :func:`style_layers`
    (small models: see its fallback), or a list of one spec per row (the official figure uses
    coarse x3, middle x2, fine). All dlatents are truncated with ``truncation_psi`` (the
    official figure uses none: pass 1); stored noise. A cell whose row and column seed agree is
    the plain image of that seed. Rows or columns may be :class:`Latents` (e.g. a real image's
    projection); a cell has the noise maps of its row.
    """
    row_seeds, column_seeds = _sources(row_seeds), _sources(column_seeds)
    if isinstance(styles, (list, tuple)) and styles and isinstance(styles[0], (str, range, list, tuple)):
        layers = [style_layers(spec, model.num_layers) for spec in styles]
        if len(layers) == 1:
            layers = layers[0]
    else:
        layers = style_layers(styles, model.num_layers)
    row_dlatents = _dlatents(model, row_seeds, truncation_psi)
    column_dlatents = _dlatents(model, column_seeds, truncation_psi)
    mixed = style_mixing_dlatents(row_dlatents, column_dlatents, layers)
    rows, columns = len(row_seeds), len(column_seeds)
    row_noise = _noise(row_seeds)
    images = np.concatenate([
        _render(model, column_dlatents, _noise(column_seeds)),
        _render(model, np.concatenate([row_dlatents, mixed.reshape((rows * columns,) + mixed.shape[2:])]),
                None if row_noise is None else np.concatenate([row_noise, np.repeat(row_noise, columns, 0)]))
    ])
    size = images.shape[1]
    canvas = _canvas(rows + 1, columns + 1, size)
    for column in range(columns):
        _paste(canvas, images[column], 0, column + 1)
    for row in range(rows):
        _paste(canvas, images[columns + row], row + 1, 0)
        for column in range(columns):
            _paste(canvas, images[columns + rows + row * columns + column], row + 1, column + 1)
    return canvas


def truncation_figure(model, seeds, steps=9):
    """The paper's Fig. 8: uint8 [N * S, steps * S, 3]. Row i: seed i; column j: ψ =
    :func:`truncation_psis` ``(steps)[j]``, from 1 (no truncation) through 0 (the average w,
    ``w_avg``) to -1 (the "anti-face"). ψ applies to the layers below the model's
    ``truncation_cutoff`` (all of them when the cutoff >= ``num_layers``: then the ψ = 0
    column is the same image for every seed); stored noise. ``seeds`` may be :class:`Latents`: a
    projected image towards the average, with its noise maps.
    """
    seeds = _sources(seeds)
    psis = truncation_psis(steps)
    psi_per_image = np.tile(psis, len(seeds)).astype(np.float32)  # row-major: seed, then psi
    if isinstance(seeds, Latents):
        dlatents = model.truncate(np.repeat(seeds.dlatents, len(psis), axis=0), psi_per_image)
    else:
        dlatents = model.mapping(np.repeat(model.latents(seeds), len(psis), axis=0),
                                 truncation_psi=psi_per_image)
    return image_grid(_render(model, dlatents, _noise(seeds, len(psis))), len(psis))


def _check_noise_inputs(model):
    """A figure about noise needs a generator with noise inputs (``noise_size`` None: an export older
    than the field, which always had them)."""
    if model.noise_size == 0:
        raise FigureError(f"{model.source} has no noise inputs (trained with Generator.use_noise=False): "
                          "its images do not vary with noise, so there is no noise figure to draw")


def noise_std(model, dlatents, draws=100, noise_seed=0, noise_scale=None):
    """Fig. 4's per-pixel standard deviation of one w's images over ``draws`` noise draws (noise
    seeds ``noise_seed .. noise_seed + draws - 1``): float64 [S, S], in pixel values (0-255),
    of the channel-mean image (as the official ``draw_noise_detail_figure``). ``dlatents``:
    [L, D] or [1, L, D]; ``noise_scale``: [L] per-layer noise scale (default 1; 0 gives a zero map).
    """
    _check_noise_inputs(model)
    dlatents = np.asarray(dlatents, np.float32).reshape((1, model.num_layers, model.dlatent_size))
    if int(draws) < 2:
        raise FigureError(f"draws must be at least 2, got {draws}")
    total = total_squares = 0
    chunk = max(1, model.batch_size)
    for start in range(0, int(draws), chunk):
        seeds = np.arange(start, min(start + chunk, int(draws)), dtype=np.int64) + int(noise_seed)
        images = model.synthesis(np.repeat(dlatents, len(seeds), axis=0), noise_seeds=seeds,
                                 noise_scale=noise_scale)
        sums = images.astype(np.int64).sum(axis=-1)  # channel sums: exact integers
        total = total + sums.sum(axis=0)
        total_squares = total_squares + (sums * sums).sum(axis=0)
    count = int(draws)
    variance = np.maximum(count * total_squares - total * total, 0)  # exact: n^2 var of the sums
    return np.sqrt(variance.astype(np.float64)) / count / images.shape[-1]


def noise_figure(model, seeds, draws=100, truncation_psi=None, noise_seed=0, std_gain=None):
    """The paper's Fig. 5 plus Fig. 4's std map: ``(figure, std_means)``.

    ``figure``: uint8 [N * S, 5 * S, 3]; row i for seed i, columns: (a) noise in all layers,
    (b) no noise, (c) noise in the fine layers only, (d) noise in the coarse layers only
    (:func:`noise_layer_groups`: 64 px and up / 4-32 px, halves of the layers in models of
    32 px and below), all with the same fresh noise (seed ``noise_seed``), then (e) the
    per-pixel standard deviation over ``draws`` noise draws of the seed's w (:func:`noise_std`)
    as a grayscale map: scaled so that the figure's largest std is white (``std_gain=None``),
    or ``std * std_gain`` clipped (the official figure uses 4). ``std_means``: float [N], each
    map's mean std in pixel values (0-255). ``seeds`` may be :class:`Latents` (their w; the figure's
    noise is drawn fresh).
    """
    _check_noise_inputs(model)
    seeds = _sources(seeds)
    if int(draws) < 2:
        raise FigureError(f"draws must be at least 2, got {draws}")
    dlatents = _dlatents(model, seeds, truncation_psi)
    groups = noise_layer_groups(model.num_layers)
    scales = np.zeros((len(NOISE_COLUMNS), model.num_layers), np.float32)
    for column, name in enumerate(NOISE_COLUMNS):
        scales[column, list(groups[name])] = 1.0
    count = len(seeds) * len(NOISE_COLUMNS)
    images = _rgb(model.synthesis(np.repeat(dlatents, len(NOISE_COLUMNS), axis=0),
                                  noise_seeds=np.full(count, int(noise_seed), np.int64),
                                  noise_scale=np.tile(scales, (len(seeds), 1))))
    stds = np.stack([noise_std(model, w, draws, noise_seed) for w in dlatents])
    if std_gain is None:
        peak = stds.max()
        maps = stds * (255.0 / peak) if peak > 0 else np.zeros_like(stds)
    else:
        maps = stds * float(std_gain)
    maps = np.clip(np.rint(maps), 0, 255).astype(np.uint8)
    size = images.shape[1]
    canvas = _canvas(len(seeds), len(NOISE_COLUMNS) + 1, size)
    for row in range(len(seeds)):
        for column in range(len(NOISE_COLUMNS)):
            _paste(canvas, images[row * len(NOISE_COLUMNS) + column], row, column)
        _paste(canvas, np.repeat(maps[row][..., None], 3, axis=-1), row, len(NOISE_COLUMNS))
    return canvas, stds.mean(axis=(1, 2))


def slerp(a, b, t):
    """Spherical interpolation of vectors ``a`` -> ``b`` (rows) at fractions ``t`` [T]: [T, ...], norms
    interpolated too. Exactly ``a`` at t = 0; linear where a and b are (anti)parallel."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64).reshape((-1,) + (1,) * a.ndim)
    cos = np.dot(a.ravel(), b.ravel()) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30)
    theta = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(theta) < 1e-6:
        return a + t * (b - a)
    return (np.sin((1 - t) * theta) * a + np.sin(t * theta) * b) / np.sin(theta)


def interpolation_frames(model, seeds, frames=30, space="w", loop=False, truncation_psi=None):
    """A walk through the seeds' latents: uint8 [F, S, S, 3].

    ``frames`` per step from one seed to the next (the first frame of a step is that step's
    seed); ``space="w"``: linear interpolation of the truncated dlatents; ``"z"``: spherical
    (slerp) of z, then mapping and truncation. ``loop``: a last step back to the first seed,
    whose final frame is left out so the animation repeats seamlessly (F = frames * N);
    otherwise the walk ends on the last seed (F = frames * (N - 1) + 1). Stored noise; frame
    0 is ``model.generate(seeds=seeds[:1])``. With :class:`Latents` (W space only) the noise maps are
    interpolated too, ``((1 - t) a + t b) / sqrt((1 - t)^2 + t^2)`` (unit variance all the way): the
    walk starts and ends exactly on the projected images.
    """
    seeds = _sources(seeds)
    if len(seeds) < 2:
        raise FigureError("an interpolation needs at least two seeds")
    if int(frames) < 1:
        raise FigureError(f"frames must be at least 1, got {frames}")
    if space not in ("w", "z"):
        raise FigureError(f"unknown interpolation space {space!r}: use w or z")
    stops = list(range(len(seeds))) + ([0] if loop else [])
    t = np.arange(int(frames)) / int(frames)
    if isinstance(seeds, Latents):
        if space != "w":
            raise FigureError("given latents (projections) interpolate in W only: use --space w")
        keys, noise = _dlatents(model, seeds, truncation_psi), seeds.noise
        path = [keys[a] + t[:, None, None] * (keys[b] - keys[a]) for a, b in zip(stops, stops[1:])]
        unit = np.sqrt((1 - t) ** 2 + t ** 2)[:, None]  # [frames, 1]: keeps the maps' unit variance
        noise_path = [(np.outer(1 - t, noise[a]) + np.outer(t, noise[b])) / unit
                      for a, b in zip(stops, stops[1:])]
        if not loop:
            path.append(keys[-1:])
            noise_path.append(noise[-1:])
        return _render(model, np.concatenate(path).astype(np.float32),
                       np.concatenate(noise_path).astype(np.float32))
    psi = model.truncation_psi if truncation_psi is None else truncation_psi
    if space == "w":
        keys = _dlatents(model, seeds, psi)
        path = [keys[a] + t[:, None, None] * (keys[b] - keys[a]) for a, b in zip(stops, stops[1:])]
        if not loop:
            path.append(keys[-1:])
        return _render(model, np.concatenate(path).astype(np.float32))
    keys = model.latents(seeds)
    path = [slerp(keys[a], keys[b], t) for a, b in zip(stops, stops[1:])]
    if not loop:
        path.append(keys[-1:])
    return _render(model, model.mapping(np.concatenate(path).astype(np.float32), truncation_psi=psi))
