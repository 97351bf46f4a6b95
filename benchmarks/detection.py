"""Detection quality on real photos shipped in packages: faces found vs faces a person sees.

    python benchmarks/detection.py [--save DIR]

For each photo and each detector: faces found, missed and extra (found - expected, when
positive), and the time. ``--save`` writes each photo with the boxes and landmarks drawn, for
checking by eye that every box sits on a real face.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import SHARED, out, run, table
from _photos import real_photos
from maeum import create_detector, load_image
from maeum.errors import ModelError

YUNET = Path(os.environ.get("MAEUM_YUNET_MODEL", SHARED / "models" / "face_detection_yunet_2023mar.onnx"))


def draw(image: np.ndarray, faces: list, path: Path) -> None:
    canvas = np.ascontiguousarray(image[..., ::-1])
    for f in faces:
        x, y, w, h = (round(v) for v in f.box.as_list())
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 255, 0), max(1, w // 60))
        for px, py in f.landmarks:
            cv2.circle(canvas, (int(px), int(py)), max(1, w // 40), (0, 0, 255), -1)
    cv2.imwrite(str(path), canvas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", type=Path, help="folder for annotated copies of the photos")
    args = parser.parse_args()
    detectors = {"retinaface": create_detector("retinaface", threads=2), "haar": create_detector("haar")}
    for name in ("hog", "mtcnn"):  # the hog and mtcnn extras
        try:
            detectors[name] = create_detector(name)
        except ModelError as e:
            out(f"({name} left out: {e})")
    if YUNET.is_file():
        detectors["yunet"] = create_detector("yunet", model_path=str(YUNET))
    photos = real_photos()
    rows, totals = [], {name: [0, 0, 0] for name in detectors}
    for photo in photos:
        image = load_image(photo.path)
        expected = str(photo.faces) if photo.faces_max is None else f"{photo.faces}-{photo.faces_max}"
        row: list[object] = [photo.name, f"{image.shape[1]}x{image.shape[0]}", expected]
        for name, det in detectors.items():
            t = time.perf_counter()
            faces = det.detect(image)
            ms = 1000 * (time.perf_counter() - t)
            missed, extra = max(0, photo.faces - len(faces)), max(0, len(faces) - photo.max_faces)
            totals[name][0] += missed
            totals[name][1] += extra
            totals[name][2] += photo.faces
            row.append(f"{len(faces)} ({'ok' if not missed and not extra else f'-{missed} +{extra}'}, {ms:.0f} ms)")
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                draw(image, faces, args.save / f"{photo.name}_{name}.jpg")
        rows.append(row)
    out(table(rows, ["photo", "size", "faces", *detectors]))
    out("\nFaces: clear faces a person sees, or a range when some are borderline (cut by the edge, blurred).")
    out("\nTotals (missed / extra of all faces)\n")
    out(table([[n, f"{m} / {e} of {t}"] for n, (m, e, t) in totals.items()], ["detector", "missed / extra"]))
    out("\nSources\n")
    out(table([[p.name, p.source, p.licence, p.note] for p in photos], ["photo", "source", "licence", "note"]))


if __name__ == "__main__":
    run(main)
