"""A one-line progress bar with rate and ETA on stderr, for the command-line tools."""

from __future__ import annotations

import sys
import time

# The bar drawn on stderr's last line, if any: other text written to stderr erases it first
# (``clear_line``), or a log message would run on from the end of the bar.
_drawn: Progress | None = None


def clear_line() -> None:
    """Erase a drawn bar from the terminal's last line (its next update draws it again)."""
    global _drawn
    if _drawn is not None:
        sys.stderr.write("\r\x1b[K")
        _drawn = None


class Progress:
    """Drawn only when stderr is a terminal, at most 5 times a second.

    ``done`` and ``total`` share one measure (images, or seconds of video when ``clock``);
    ``count`` is what the rate counts (images, frames).
    """

    def __init__(self, total: float | None, unit: str, clock: bool = False) -> None:
        self.total, self.unit, self.clock = total, unit, clock
        self.enabled = sys.stderr.isatty()
        self.start = self.last = time.monotonic()
        self.state = (0.0, 0)  # done and count at the last update

    def update(self, done: float, count: int, force: bool = False) -> None:
        now = time.monotonic()
        self.state = (done, count)
        if not self.enabled or (now - self.last < 0.2 and not force):
            return
        self.last = now
        elapsed = max(now - self.start, 1e-6)
        rate = f"{count / elapsed:5.1f} {self.unit}/s"
        if self.total:
            frac = min(1.0, done / self.total)
            eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
            line = (
                f"[{'#' * int(frac * 30):<30}] {frac:4.0%} {self._fmt(done)}/{self._fmt(self.total)} {rate} "
                f"ETA {_clock(eta)}"
            )
        else:
            line = f"{self._fmt(done)} {rate}"
        sys.stderr.write("\r" + line)
        sys.stderr.flush()
        global _drawn
        _drawn = self

    def close(self) -> None:
        global _drawn
        if self.enabled:
            self.update(*self.state, force=True)
            sys.stderr.write("\n")
            _drawn = None

    def _fmt(self, value: float) -> str:
        return _clock(value) if self.clock else f"{value:.0f}"


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
