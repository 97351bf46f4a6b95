"""``maeum analyze`` over a folder: one process against ``--workers N`` and ``--engine ray``.

    python benchmarks/batch.py [--images 96] [--workers 2] [--repeat 2]

Copies the README's three photos (two with a face, one without) into a temporary folder until it
holds ``--images`` files, then times the whole command, Python's start and the models' loading
included, as a user runs it: ``maeum analyze FOLDER --format jsonl`` in one process, with
``--workers N``, and with ``--engine ray --workers N`` (a local Ray cluster it starts, when Ray is
installed). Each output is checked to be the same as the one process's. Prints the median wall
time of ``--repeat`` runs and images per second.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import REPO, cpu_description, out, positive, run, table

PHOTOS = ("astronaut.jpg", "grace_hopper.jpg", "chelsea_no_face.jpg")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=positive(int), default=96, help="files in the folder (default 96)")
    p.add_argument("--workers", type=positive(int), default=2, help="worker processes (default 2)")
    p.add_argument("--repeat", type=positive(int), default=2, help="runs of each way; the median counts (default 2)")
    args = p.parse_args()
    ways = [("one process", []), (f"--workers {args.workers}", ["--workers", str(args.workers)])]
    if importlib.util.find_spec("ray") is not None:
        ways.append((f"--engine ray --workers {args.workers}", ["--engine", "ray", "--workers", str(args.workers)]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for k in range(args.images):
            name = PHOTOS[k % len(PHOTOS)]
            shutil.copy(REPO / "examples" / name, folder / f"{k:04d}-{name}")
        rows, first = [], None
        for label, options in ways:
            times = []
            for _ in range(args.repeat):
                cmd = [sys.executable, "-m", "maeum", "analyze", str(folder), "--format", "jsonl", *options]
                start = time.perf_counter()
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                times.append(time.perf_counter() - start)
                if done.returncode != 0:
                    raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-500:]}")
                first = first or done.stdout
                if done.stdout != first:
                    raise SystemExit(f"{label}: the output differs from the one process's")
            wall = statistics.median(times)
            rows.append([label, f"{wall:.1f}", f"{args.images / wall:.1f}"])
    out(f"CPU: {cpu_description()}; {args.images} images (2 of every 3 with one face), median of {args.repeat}")
    out()
    out(table(rows, ["maeum analyze FOLDER", "wall s (start included)", "images/s"]))


if __name__ == "__main__":
    run(main)
