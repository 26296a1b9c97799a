"""Line charts of a training run's metrics (``metrics.jsonl``) as images, drawn with Pillow.

``tf-stylegan curve RUN_DIR`` plots every metric the run logged against kimg, one panel each, with the
resolution the schedule had reached marked under the curve when the run logged it.
"""
import json
import math
import os

import numpy as np

SERIES_COLOR = (31, 119, 180)
GRID_COLOR = (225, 225, 225)
TEXT_COLOR = (40, 40, 40)
PHASE_COLOR = (150, 150, 150)
LABEL_GAP = 6  # px between two labels of marks on one line


class ChartError(ValueError):
    """A run without usable metrics, or an unknown metric name."""


def read_metrics(run_dir):
    """The records of ``run_dir/metrics.jsonl`` ({"kimg": ..., name: value, ...}), in kimg order.

    A repeated kimg (a run resumed before its last measurement) keeps the last record."""
    path = os.path.join(os.fspath(run_dir), "metrics.jsonl")
    if not os.path.isfile(path):
        raise ChartError(f"{path}: no such file (bind train.metrics and train.metrics_kimg to measure a run)")
    records = {}
    with open(path) as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                records[float(record["kimg"])] = record
            except (ValueError, KeyError, TypeError) as error:
                raise ChartError(f"{path}, line {number}: not a metrics record ({error})") from None
    if not records:
        raise ChartError(f"{path}: no measurements yet")
    return [records[kimg] for kimg in sorted(records)]


def nice_ticks(low, high, count=5):
    """About ``count`` round tick values covering [low, high]: the nearest 1, 2 or 5 times a power of
    ten apart."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ChartError(f"cannot place ticks on [{low}, {high}]")
    if high <= low:
        low, high = low - 1.0, high + 1.0
    raw = (high - low) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = power * next(m for m, limit in ((1, 1.5), (2, 3.5), (5, 7.5), (10, math.inf))
                        if raw / power < limit)
    first = math.floor(low / step) * step
    last = math.ceil(high / step) * step
    return [round(first + i * step, 10) for i in range(round((last - first) / step) + 1)]


def _label(value):
    return f"{value:g}"


def line_chart(xs, ys, title, x_label="kimg", marks=(), size=(560, 300)):
    """uint8 [H, W, 3] chart of one series: points joined by lines, round-valued axes, the value at
    each point's x on the grid. ``marks``: (x, text) pairs drawn as dashed vertical lines."""
    from PIL import Image, ImageDraw, ImageFont

    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    if xs.shape != ys.shape or xs.ndim != 1 or len(xs) == 0:
        raise ChartError(f"{title}: need as many x as y values, at least one (got {xs.shape} and {ys.shape})")
    finite = np.isfinite(ys)
    if not finite.any():
        raise ChartError(f"{title}: no finite value to plot")
    font = ImageFont.load_default(size=13)
    width, height = size
    left, right, top, bottom = 52, 16, 28, 40
    x_ticks = nice_ticks(min(0.0, xs.min()), xs.max())
    y_ticks = nice_ticks(0.0 if ys[finite].min() >= 0 else ys[finite].min(), ys[finite].max())

    def to_pixel(x, y):
        u = left + (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * (width - left - right)
        v = height - bottom - (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * (height - top - bottom)
        return u, v

    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for y in y_ticks:
        u0, v = to_pixel(x_ticks[0], y)
        draw.line([(u0, v), (width - right, v)], fill=GRID_COLOR)
        draw.text((left - 6, v), _label(y), font=font, fill=TEXT_COLOR, anchor="rm")
    for x in x_ticks:
        u, v0 = to_pixel(x, y_ticks[0])
        draw.line([(u, v0), (u, v0 + 4)], fill=TEXT_COLOR)
        draw.text((u, v0 + 6), _label(x), font=font, fill=TEXT_COLOR, anchor="mt")
    draw.rectangle([left, top, width - right, height - bottom], outline=TEXT_COLOR)
    text_end, row = -1.0, 0
    for x, text in marks:
        u, _ = to_pixel(x, y_ticks[0])
        for v in range(top, height - bottom, 6):
            draw.line([(u, v), (u, min(v + 3, height - bottom))], fill=PHASE_COLOR)
        # a label that would touch the previous one (closer than LABEL_GAP) goes a line lower
        row = row + 1 if u + 3 < text_end + LABEL_GAP else 0
        draw.text((u + 3, top + 2 + 12 * row), text, font=font, fill=PHASE_COLOR, anchor="lt")
        text_end = max(text_end, u + 3 + draw.textlength(text, font=font))
    points = [to_pixel(x, y) for x, y in zip(xs[finite], ys[finite])]
    if len(points) > 1:
        draw.line(points, fill=SERIES_COLOR, width=2)
    for u, v in points:
        draw.ellipse([u - 3, v - 3, u + 3, v + 3], fill=SERIES_COLOR)
    draw.text((width / 2, 6), title, font=font, fill=TEXT_COLOR, anchor="mt")
    draw.text((width / 2, height - 4), x_label, font=font, fill=TEXT_COLOR, anchor="mb")
    return np.asarray(image)


def resolution_marks(records):
    """(kimg, "RxR") where the logged resolution first reaches a new value (records with "resolution")."""
    marks, previous = [], None
    for record in records:
        resolution = record.get("resolution")
        if resolution is not None and resolution != previous:
            marks.append((float(record["kimg"]), f"{int(resolution)}x{int(resolution)}"))
            previous = resolution
    return marks


def metric_curves(run_dir, names=None, marks=None, size=(560, 300)):
    """uint8 image: one :func:`line_chart` panel per metric of the run (``names``, default all that it
    logged), stacked vertically. ``marks`` default to :func:`resolution_marks` of the run."""
    records = read_metrics(run_dir)
    logged = [key for key in records[-1] if key not in ("kimg", "resolution", "lod")]
    names = list(names or logged)
    unknown = [name for name in names if not any(name in record for record in records)]
    if unknown:
        raise ChartError(f"{run_dir}: no metric {', '.join(unknown)} in metrics.jsonl "
                         f"(logged: {', '.join(logged)})")
    if not names:
        raise ChartError(f"{run_dir}: metrics.jsonl holds no metric values")
    marks = resolution_marks(records) if marks is None else marks
    panels = []
    for name in names:
        points = [(record["kimg"], record[name]) for record in records if name in record]
        xs, ys = zip(*points)
        better = "higher" if name.endswith(("_precision", "_recall")) else "lower"
        panels.append(line_chart(xs, ys, f"{name} of Gs ({better} is better)", marks=marks, size=size))
    return np.concatenate(panels, axis=0)
