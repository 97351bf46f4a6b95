"""Shared helpers for benchmark scripts (not part of the package)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MAEUM_SHARED", REPO.parent / "shared"))
CACHE = Path(os.environ.get("MAEUM_CACHE", Path.home() / ".cache" / "maeum"))


def run(main: Callable[[], int | None]) -> None:
    """Run a script's ``main``: a bad model, config or path (a MaeumError) ends it in one line, not a traceback."""
    from maeum.errors import MaeumError

    try:
        code = main()
    except MaeumError as e:
        sys.exit(f"{Path(sys.argv[0]).name}: error: {e}")
    sys.exit(code)


def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number of ``kind`` above 0."""
    return _number(kind, lambda value: value > 0, "above 0")


def at_least_zero(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number of ``kind``, 0 or above."""
    return _number(kind, lambda value: value >= 0, "0 or above")


def _number(kind: type[int] | type[float], ok: Callable[[float], bool], bound: str) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text} must be {bound}")
        return value

    parse.__name__ = kind.__name__
    return parse


def pip_download_wheel(package: str, version: str, dest: Path, timeout_s: float = 300) -> Path:
    """Download one wheel (no dependencies) from PyPI into ``dest`` once; its path.

    Raises RuntimeError saying why when pip fails, times out or produces no such wheel.
    """
    dest.mkdir(parents=True, exist_ok=True)
    prefix = f"{re.sub(r'[-_.]+', '_', package).lower()}-{version}-"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--python-version", "3.11",
           "--disable-pip-version-check", "--no-input", "--retries", "1", "--timeout", "30", "--dest", str(dest),
           f"{package}=={version}"]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"pip download {package}=={version} failed: {e}") from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:])
        raise RuntimeError(f"pip download {package}=={version} exited {proc.returncode}: {tail}")
    wheels = sorted(w for w in dest.glob("*.whl") if w.name.lower().startswith(prefix))
    if not wheels:
        raise RuntimeError(f"pip download {package}=={version} left no {prefix}*.whl in {dest}")
    return wheels[0]


FERPLUS_SPLITS = {"val": "valid", "test": "test"}  # the splits models are chosen and scored on: FER+'s folder names


def ferplus_model_args(description: str) -> tuple[argparse.Namespace, Path]:
    """The options of a script that scores one model on FER+ (--model, --shared, --threads) and the FER+ folder."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="ferplus-resnet-s", help="a bundled model's name or an .onnx file")
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--threads", type=positive(int), default=2)
    args = parser.parse_args()
    return args, ferplus_root(parser, args.shared)


def ferplus_root(parser: argparse.ArgumentParser, shared: Path) -> Path:
    """``shared``'s FER+ folder; a usage error (exit 2) when it holds no fer2013new.csv."""
    root = shared / "data" / "ferplus"
    if not (root / "fer2013new.csv").is_file():
        parser.error(f"no FER+ data at {root} (no fer2013new.csv); pass --shared or set MAEUM_SHARED")
    return root


def majority_accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of ``probs`` (N, K) against FER+ majority labels, faces without one (-1) left out."""
    keep = labels >= 0
    return float((probs.argmax(1)[keep] == labels[keep]).mean())


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


def cpu_description() -> str:
    """The CPU's model name, core count and whether it has VNNI (int8 runs several times faster with it)."""
    name, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name == "unknown CPU":
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:  # not Linux
        import platform

        name = platform.processor() or name
    vnni = "VNNI" if flags & {"avx512_vnni", "avx_vnni"} else "no VNNI" if flags else "VNNI unknown"
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else ""
    return f"{name}, {os.cpu_count()} cores, " + ", ".join(x for x in (simd, vnni) if x)


def throughput(fn: Callable[[np.ndarray], object], faces: np.ndarray, seconds: float = 3.0) -> float:
    """Faces per second of ``fn`` called on the batch ``faces`` again and again for ``seconds`` (after one call)."""
    fn(faces)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        fn(faces)
        n += len(faces)
    return n / (time.perf_counter() - t)
