"""The manifest: one Parquet file, one row per prepared image, read by training and reports.

The file's key-value metadata ``maeum`` holds the preparation settings as JSON, including
``labels``, the class order of the ``votes`` column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maeum.data.records import DataError

MANIFEST_NAME = "manifest.parquet"
FORMAT_VERSION = 1

# Column name -> (Arrow type name, meaning). Built lazily so `import maeum` needs no pyarrow.
COLUMNS: dict[str, str] = {
    "name": "original file name (NFC) or path relative to the source",
    "path": "the prepared crop, relative to the manifest's folder",
    "source": "where the original image was read: a file, or 'archive.zip::member'",
    "split": "train, val or test",
    "label": "label key (English; see metadata labels)",
    "votes": "votes per class in metadata label order (annotators or FER+ raters)",
    "annotator_emotions": "each annotator's emotion key (null when unreadable)",
    "boxes": "each annotator's face box (x0, y0, x1, y1) in stored-pixel coordinates, null when invalid",
    "crop_box": "the region cropped, (x0, y0, x1, y1) in upright-image coordinates",
    "person": "person id; no person is in two splits",
    "gender": "as given by the source",
    "age": "as given by the source",
    "background": "as given by the source",
    "uploader_emotion": "the label the photographed person gave (AI Hub)",
    "width": "original image width (upright)",
    "height": "original image height (upright)",
    "mask_path": "the cropped segmentation mask (PNG), relative to the manifest's folder",
}


def schema(meta: dict[str, Any]):  # -> pyarrow.Schema
    pa = _pyarrow()
    box = pa.list_(pa.float64())
    types = {
        "name": pa.string(),
        "path": pa.string(),
        "source": pa.string(),
        "split": pa.string(),
        "label": pa.string(),
        "votes": pa.list_(pa.int32()),
        "annotator_emotions": pa.list_(pa.string()),
        "boxes": pa.list_(box),
        "crop_box": box,
        "person": pa.string(),
        "gender": pa.string(),
        "age": pa.int32(),
        "background": pa.string(),
        "uploader_emotion": pa.string(),
        "width": pa.int32(),
        "height": pa.int32(),
        "mask_path": pa.string(),
    }
    assert list(types) == list(COLUMNS)
    meta = {"manifest_version": FORMAT_VERSION, **meta}
    return pa.schema(list(types.items()), metadata={"maeum": json.dumps(meta, ensure_ascii=False, sort_keys=True)})


class ManifestWriter:
    """Writes rows to a Parquet manifest in batches, atomically: the file appears whole or not at all."""

    def __init__(self, path: Path, meta: dict[str, Any], batch: int = 1024) -> None:
        pa, pq = _pyarrow(), _pyarrow("parquet")
        self.path, self.batch, self._rows = path, batch, []
        self._schema = schema(meta)
        self._tmp = path.with_name(path.name + ".partial")
        self._writer = pq.ParquetWriter(self._tmp, self._schema, compression="zstd")
        self._pa = pa

    def write(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(self._pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()
        self._tmp.replace(self.path)

    def abort(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)


def read_manifest(path: Path, columns: Sequence[str] | None = None):  # -> (pyarrow.Table, dict)
    """The manifest table and its ``maeum`` metadata; ``path`` may be the file or its folder."""
    pq = _pyarrow("parquet")
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"{path}: no manifest; run `maeum data prepare` first")
    try:
        table = pq.read_table(path, columns=list(columns) if columns else None)
    except Exception as e:  # pyarrow raises its own types for corrupt files
        raise DataError(f"{path}: not a readable Parquet manifest ({e})") from None
    raw = (table.schema.metadata or {}).get(b"maeum")
    if raw is None:
        raise DataError(f"{path}: Parquet file without maeum metadata; was it written by `maeum data prepare`?")
    return table, json.loads(raw)


def _pyarrow(module: str = ""):
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise DataError("dataset manifests need pyarrow: pip install 'maeum[data]'") from None
    return pyarrow.parquet if module == "parquet" else pyarrow
