"""AI Hub's Korean emotion dataset, layout A: per-emotion JSON lists of records beside images.

Reads zips or extracted folders as shipped (``[라벨]EMOIMG_기쁨_TRAIN.zip`` holding
``img_emotion_training_data(기쁨).json``, ``[원천]EMOIMG_기쁨_TRAIN_01.zip`` holding the
JPEGs). JSON files may be UTF-8, UTF-8 with a BOM or CP949; they are parsed one record at
a time, so a file of any size costs the memory of one record.
"""

from __future__ import annotations

import codecs
import json
import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from maeum.data.archive import READ_ERRORS, open_location, read_error, text_encoding, walk
from maeum.data.records import AIHUB7, Annotation, Box, ErrorSink, Record, class_key, nfc

log = logging.getLogger(__name__)

ANNOTATORS: tuple[str, ...] = ("A", "B", "C")
# Both spellings of the annotator blocks seen in the wild.
_BLOCK_KEYS: tuple[str, ...] = ("annot_{}", "faceBB_{}")
_CHUNK = 1 << 20
_WS = re.compile(r"[\s,]*")


def iter_label_files(root: Path, on_error: ErrorSink | None = None) -> Iterator[tuple[str, str]]:
    """(name, location) of every JSON label file under ``root`` (folders and zips); a zip that
    cannot be opened goes to ``on_error``."""
    yield from walk(root, frozenset({".json"}), on_error)


def read_label_file(location: str, on_error: ErrorSink) -> Iterator[Record]:
    """The records of one JSON label file; bad records and bad files go to ``on_error``."""
    try:
        encoding = text_encoding(location)
        if encoding is None:
            on_error(location, "malformed JSON: neither UTF-8 nor CP949 text")
            return
        for index, obj in enumerate(_iter_json_array(location, encoding)):
            where = f"{location} [record {index}]"
            record = parse_record(obj, where, on_error)
            if record is not None:
                yield record
    except ValueError as e:
        on_error(location, f"malformed JSON: {e}")
    except READ_ERRORS as e:  # a damaged zip member: the records before the damage are kept
        on_error(location, read_error(location, e)[1])


def parse_record(obj: Any, where: str, on_error: ErrorSink) -> Record | None:
    """One layout-A record (a JSON object) as a ``Record``; None when it has no usable file name."""
    if not isinstance(obj, dict):
        on_error(where, f"malformed record: expected an object, got {type(obj).__name__}")
        return None
    filename = obj.get("filename")
    if not isinstance(filename, str) or not filename.strip():
        on_error(where, "malformed record: no filename")
        return None
    name = nfc(filename.strip().replace("\\", "/").rsplit("/", 1)[-1])
    where = f"{where} {name}"
    annotations = tuple(_annotation(obj, letter, where, on_error) for letter in ANNOTATORS)
    uploader_text = obj.get("faceExp_uploader")
    uploader, why = class_key(uploader_text, AIHUB7)
    if why is not None and uploader_text not in (None, ""):
        on_error(where, f"{why} from the uploader")
    return Record(
        name=name,
        person=person_id(name),
        annotations=annotations,
        uploader_emotion=uploader,
        gender=_text(obj.get("gender")),
        age=_int(obj.get("age")),
        background=_text(obj.get("bg_uploader")),
        where=where,
    )


def person_id(name: str) -> str:
    """The uploader hash that starts an AI Hub file name: it identifies the person."""
    return name.split("_", 1)[0]


def _annotation(obj: dict, letter: str, where: str, on_error: ErrorSink) -> Annotation:
    block = next((obj[k.format(letter)] for k in _BLOCK_KEYS if isinstance(obj.get(k.format(letter)), dict)), None)
    if block is None:
        on_error(where, f"malformed record: no annotator {letter} block (annot_{letter} or faceBB_{letter})")
        return Annotation(None)
    text = block.get("faceExp")
    emotion, why = class_key(text, AIHUB7)
    if why is not None:
        on_error(where, f"{why} from annotator {letter}")
    return Annotation(emotion, _box(block.get("boxes"), f"annotator {letter}", where, on_error), _text(block.get("bg")))


def _box(value: Any, who: str, where: str, on_error: ErrorSink) -> Box | None:
    if value is None:
        return None
    try:
        box = tuple(float(value[k]) for k in ("minX", "minY", "maxX", "maxY"))
    except (KeyError, TypeError, ValueError):
        on_error(where, f"invalid box from {who}: {value!r}")
        return None
    if not all(math.isfinite(v) for v in box):
        on_error(where, f"invalid box from {who}: not finite {box}")
        return None
    if box[0] >= box[2] or box[1] >= box[3]:
        on_error(where, f"invalid box from {who}: inverted or empty (min >= max) {box}")
        return None
    return box  # type: ignore[return-value]


def _text(value: Any) -> str | None:
    return nfc(str(value)).strip() or None if value is not None else None


def _int(value: Any, low: int = 0, high: int = 150) -> int | None:
    """An age as an int in ``low..high``; None for anything else (``"twenty"``, ``true``, ``1e300``, ``Infinity``),
    which would otherwise stop the run when the manifest is written."""
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if low <= number <= high else None


def _iter_json_array(location: str, encoding: str) -> Iterator[Any]:
    """Yield the elements of a top-level JSON list, reading the file in chunks."""
    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder(encoding)()
    with open_location(location) as f:
        buf, pos, eof = "", 0, False

        def more() -> bool:
            nonlocal buf, pos, eof
            if eof:
                return False
            chunk = f.read(_CHUNK)
            eof = not chunk
            buf = buf[pos:] + text_decoder.decode(chunk, final=eof)
            pos = 0
            return True

        more()
        while True:  # skip to the opening bracket
            pos = _WS.match(buf, pos).end()
            if pos < len(buf):
                break
            if not more():
                raise ValueError("empty file")
        if buf[pos] != "[":
            raise ValueError("expected a list of records ([...]) at the top level")
        pos += 1
        count = 0
        while True:
            pos = _WS.match(buf, pos).end()
            while pos >= len(buf):
                if not more():
                    raise ValueError("the list is not closed (truncated file?)")
                pos = _WS.match(buf, pos).end()
            if buf[pos] == "]":
                return
            while True:
                try:
                    obj, end = decoder.raw_decode(buf, pos)
                except json.JSONDecodeError as e:
                    if more():
                        continue
                    raise ValueError(f"{e.msg} after record {count} (truncated or edited file?)") from None
                # A number may continue in the next chunk; objects and strings cannot be cut.
                if end == len(buf) and not eof and not isinstance(obj, dict | list | str):
                    more()
                    continue
                break
            yield obj
            count += 1
            pos = end
