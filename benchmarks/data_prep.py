"""Dataset preparation: crop speed on phone-sized JPEGs, and memory as the dataset grows.

    python benchmarks/data_prep.py            # both parts (about 5 minutes on 2 cores)
    python benchmarks/data_prep.py --part speed

Speed: crop + resize of 3000x4000 JPEG selfies per core (one process), decoding at full
size versus libjpeg's reduced-size (DCT-scaled) decoding, for the two usual outputs.
Memory: `maeum data prepare` on generated AI Hub downloads of 1,000 and 10,000 images;
the peak resident memory of the main process and of the largest worker, sampled from /proc.
Datasets are generated from real face photos (tests/aihub_fixture.py) under a temp folder.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from _common import REPO, out, positive, run, table

sys.path.insert(0, str(REPO / "tests"))
from aihub_fixture import build_scaled
from maeum.data.archive import member_name
from maeum.data.crop import CropConfig, crop_face


def speed(tmp: Path, n: int = 24) -> None:
    info = build_scaled(tmp / "big", n, size=(3000, 4000))
    datas, boxes = [], []
    for zpath in sorted(info.root.glob("*원천*.zip")):
        with zipfile.ZipFile(zpath) as zf:
            for member in zf.infolist():
                name = member_name(member).rsplit("/", 1)[-1]
                if name.endswith(".jpg"):
                    datas.append(zf.read(member))
                    boxes.append(info.stored_face_box(name))
    out(f"{len(datas)} JPEGs of 3000x4000 ({sum(map(len, datas)) / len(datas) / 1e6:.1f} MB each), one process:\n")
    rows = []
    for size, color in ((224, "rgb"), (48, "gray")):
        rates = {}
        for reduced in (False, True):
            cfg = CropConfig(size=size, color=color, reduced_decode=reduced)
            crop_face(datas[0], [boxes[0]], cfg)  # warm-up
            t = time.perf_counter()
            for data, box in zip(datas, boxes, strict=True):
                crop_face(data, [box], cfg)
            rates[reduced] = len(datas) / (time.perf_counter() - t)
        rows.append(
            [
                f"{size} {color}",
                f"{rates[False]:.1f} img/s",
                f"{rates[True]:.1f} img/s",
                f"{rates[True] / rates[False]:.1f}x",
            ]
        )
    out(table(rows, ["crop", "full decode", "reduced decode", "speed-up"]))


def memory(tmp: Path, sizes: tuple[int, ...] = (1000, 10000)) -> None:
    rows = []
    for n in sizes:
        src = tmp / f"aihub-{n}"
        t = time.perf_counter()
        build_scaled(src, n, size=(1200, 1600))
        built = time.perf_counter() - t
        dest = tmp / f"out-{n}"
        cmd = [sys.executable, "-m", "maeum.cli", "data", "prepare", "aihub", str(src), "--out", str(dest),
               "--size", "112", "--no-report"]  # fmt: skip
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        main_peak, worker_peak = _watch(proc)
        elapsed = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"prepare failed on {n} images (exit {proc.returncode})")
        rows.append([f"{n:,}", f"{built:.0f} s", f"{elapsed:.0f} s", f"{n / elapsed:.0f} img/s",
                     f"{main_peak:.0f} MB", f"{worker_peak:.0f} MB"])  # fmt: skip
        subprocess.run(["rm", "-rf", str(src), str(dest)], check=True)
    out("\n`maeum data prepare aihub` (2 workers, 1200x1600 JPEGs in zips, 112 px colour crops):\n")
    out(table(rows, ["images", "fixture built", "prepare", "throughput", "peak RSS main", "peak RSS worker"]))


def _watch(proc: subprocess.Popen) -> tuple[float, float]:
    """Peak VmRSS (MB) of ``proc`` and of its largest descendant, polled every 50 ms until it ends."""
    main_peak = worker_peak = 0.0
    while proc.poll() is None:
        main_peak = max(main_peak, _rss(proc.pid))
        for child in _descendants(proc.pid):
            worker_peak = max(worker_peak, _rss(child))
        time.sleep(0.05)
    return main_peak, worker_peak


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(k) for t in Path(f"/proc/{p}/task").iterdir() for k in (t / "children").read_text().split()]
        except OSError:
            continue
        found += kids
        todo += kids
    return found


def _rss(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return int(status.split("VmRSS:")[1].split()[0]) / 1024 if "VmRSS:" in status else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("speed", "memory", "all"), default="all")
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(positive(int)(size) for size in text.split(",")),
        default=(1000, 10000),
        help="dataset sizes for the memory part, comma-separated (default: 1000,10000)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="maeum-bench-") as tmp:
        if args.part in ("speed", "all"):
            speed(Path(tmp))
        if args.part in ("memory", "all"):
            memory(Path(tmp), args.sizes)


if __name__ == "__main__":
    run(main)
