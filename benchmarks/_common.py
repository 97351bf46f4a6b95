"""Shared helpers for benchmark scripts (not part of the package)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MAEUM_SHARED", REPO.parent / "shared"))
CACHE = Path(os.environ.get("MAEUM_CACHE", Path.home() / ".cache" / "maeum"))


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    From /proc's VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across exec, so a
    child process launched by a bigger benchmark process would report the parent's peak.
    """
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def table(rows: list[list[object]], header: list[str]) -> str:
    """A Markdown table, so the output can be pasted into README and model cards as printed."""
    cells = [[str(c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
