"""Durations and a one-line progress display for long passes (dataset conversion, projection)."""

import sys
import time


def duration(seconds):
    """``1h05m`` or ``4m09s``."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """``images  1200/70000  1.7%  85.3/s  skipped 2  ETA 13m29s``: on a terminal the line is rewritten
    in place at most every ``interval`` seconds; in a log (not a terminal) a line is printed every
    ``log_interval`` seconds. ``close()`` prints the final line with the elapsed time."""

    def __init__(self, total, unit="images", stream=None, interval=0.2, log_interval=30.0):
        self.total, self.unit = int(total), unit
        self.stream = stream or sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval if self.interactive else log_interval
        self.start = self.shown = time.monotonic()
        self.done, self.fields, self.width = 0, {}, 0

    def update(self, done, **fields):
        """``done`` of ``total`` finished; ``fields`` (e.g. ``skipped=2``) are shown after the rate."""
        self.done = int(done)
        self.fields.update(fields)
        now = time.monotonic()
        if now - self.shown >= self.interval:
            self.shown = now
            self._show(self._line(now, final=False))

    def close(self):
        self._show(self._line(time.monotonic(), final=True))
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()

    def _line(self, now, final):
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        share = f"{100 * self.done / self.total:5.1f}%" if self.total else ""
        text = f"{self.unit}  {self.done}/{self.total}  {share}  {rate:.1f}/s"
        text += "".join(f"  {name} {value}" for name, value in self.fields.items())
        if final:
            return f"{text}  took {duration(elapsed)}"
        left = (self.total - self.done) / rate if rate > 0 else None
        return f"{text}  ETA {duration(left) if left is not None else '?'}"

    def _show(self, line):
        if self.interactive:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
