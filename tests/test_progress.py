"""The progress display of long passes."""

import io

from tf_stylegan.progress import Progress, duration


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_duration():
    assert [duration(s) for s in (0, 59.9, 61, 3599, 3600, 3 * 3600 + 5 * 60 + 7)] == [
        "0m00s", "0m59s", "1m01s", "59m59s", "1h00m", "3h05m"]


def test_a_terminal_line_is_rewritten_in_place_and_ended():
    screen = Terminal()
    progress = Progress(200, "images", screen, interval=0)
    progress.update(50, skipped=1)
    progress.update(100, skipped=2)
    progress.close()
    text = screen.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    first, second, final = text.split("\r")[1:]
    assert first.startswith("images  50/200   25.0%") and "skipped 1  ETA " in first
    assert second.startswith("images  100/200   50.0%") and "skipped 2  ETA " in second
    assert final.startswith("images  100/200   50.0%") and "took 0m00s" in final


def test_a_log_gets_a_line_per_interval_and_the_final_one():
    log = io.StringIO()
    progress = Progress(10, "steps", log, log_interval=3600)
    for done in range(1, 11):
        progress.update(done)
    progress.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("steps  10/10  100.0%") and "took" in lines[0]
