"""Metric curves of a run: reading metrics.jsonl, round ticks, the drawn chart, ``tf-stylegan curve``."""
import json

import numpy as np
import pytest
from PIL import Image

from tf_stylegan import charts
from tf_stylegan.cli import main


def _write_metrics(run_dir, records):
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "metrics.jsonl", "w") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")
    return run_dir


def _series_pixels(image):
    """(rows, columns) of the pixels drawn in the series colour."""
    return np.nonzero(np.all(image == charts.SERIES_COLOR, axis=-1))


def test_read_metrics_sorts_by_kimg_and_keeps_the_last_record_of_a_repeated_kimg(tmp_path):
    run = _write_metrics(tmp_path / "run", [{"kimg": 20.0, "efd2k": 50.0}, {"kimg": 10.0, "efd2k": 90.0},
                                            {"kimg": 20.0, "efd2k": 40.0}])
    assert charts.read_metrics(run) == [{"kimg": 10.0, "efd2k": 90.0}, {"kimg": 20.0, "efd2k": 40.0}]


def test_read_metrics_names_the_problem(tmp_path):
    with pytest.raises(charts.ChartError, match="metrics.jsonl: no such file .*train.metrics"):
        charts.read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"kimg": 1, "fid50k": 3}\nnot json\n')
    with pytest.raises(charts.ChartError, match="line 2: not a metrics record"):
        charts.read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text("\n")
    with pytest.raises(charts.ChartError, match="no measurements yet"):
        charts.read_metrics(tmp_path)


@pytest.mark.parametrize("low, high, ticks", [
    (0, 150, [0, 50, 100, 150]),
    (0, 0.93, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (12.5, 311, [0, 50, 100, 150, 200, 250, 300, 350]),
    (-3, 7, [-4, -2, 0, 2, 4, 6, 8]),
    (5, 5, [4, 4.5, 5, 5.5, 6]),
])
def test_nice_ticks_are_round_and_cover_the_range(low, high, ticks):
    result = charts.nice_ticks(low, high)
    assert result == pytest.approx(ticks)
    assert result[0] <= low and result[-1] >= high


def test_line_chart_draws_larger_values_higher_and_later_values_to_the_right():
    image = charts.line_chart([0, 10, 20], [300.0, 100.0, 50.0], "efd2k", size=(400, 240))
    assert image.shape == (240, 400, 3) and image.dtype == np.uint8
    rows, columns = _series_pixels(image)
    leftmost, rightmost = columns.argmin(), columns.argmax()
    assert rows[leftmost] < rows[rightmost]  # 300 at kimg 0 sits above 50 at kimg 20
    assert columns.max() - columns.min() > 250  # the series spans the plot's width


def test_line_chart_skips_non_finite_values_and_rejects_bad_input():
    with_nan = charts.line_chart([0, 10, 20], [300.0, np.nan, 50.0], "m", size=(400, 240))
    assert len(_series_pixels(with_nan)[0]) > 0
    with pytest.raises(charts.ChartError, match="no finite value"):
        charts.line_chart([0, 1], [np.nan, np.inf], "m")
    with pytest.raises(charts.ChartError, match="as many x as y"):
        charts.line_chart([0, 1, 2], [1.0, 2.0], "m")


def test_metric_curves_stacks_one_panel_per_metric_with_resolution_marks(tmp_path):
    run = _write_metrics(tmp_path / "run", [
        {"kimg": 10.0, "resolution": 8, "lod": 3.0, "efd2k": 120.0, "fid50k": 300.0},
        {"kimg": 20.0, "resolution": 16, "lod": 2.5, "efd2k": 80.0, "fid50k": 200.0},
        {"kimg": 30.0, "resolution": 16, "lod": 2.0, "efd2k": 60.0, "fid50k": 150.0}])
    assert charts.resolution_marks(charts.read_metrics(run)) == [(10.0, "8x8"), (20.0, "16x16")]
    both = charts.metric_curves(run, size=(400, 240))
    assert both.shape == (480, 400, 3)
    one = charts.metric_curves(run, ["efd2k"], size=(400, 240))
    np.testing.assert_array_equal(one, both[:240])
    unmarked = charts.metric_curves(run, ["efd2k"], marks=[], size=(400, 240))
    assert not np.array_equal(unmarked, one)  # the dashed phase lines are drawn
    with pytest.raises(charts.ChartError, match="no metric ppl_wend .*logged: efd2k, fid50k"):
        charts.metric_curves(run, ["ppl_wend"])


def test_curve_command_writes_the_chart_into_the_run(tmp_path, capsys):
    run = _write_metrics(tmp_path / "run", [{"kimg": 10.0, "efd2k": 120.0}, {"kimg": 20.0, "efd2k": 80.0}])
    assert main(["curve", str(run)]) == 0
    assert "wrote" in capsys.readouterr().out
    with Image.open(run / "metrics.png") as image:
        assert image.size == (560, 300)
    assert main(["curve", str(run), "--metric", "efd2k", "--out", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").is_file()
    assert main(["curve", str(tmp_path / "missing")]) == 1
    assert "no such file" in capsys.readouterr().err
