"""Finding and reading dataset files inside zip archives and folders, without extracting.

AI Hub ships hundreds of gigabytes as zips; maeum reads members in place. A location is a
string: a file path, or ``archive.zip::member`` for a zip member.
"""

from __future__ import annotations

import codecs
import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from maeum.data.records import ErrorSink, nfc

_SEP = "::"
# What reading a file or a zip member raises when it is damaged or cut short.
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zipfile.BadZipFile, zlib.error)
# Per process: archives stay open between reads, with their members by decoded name and the
# (size, mtime) they had when opened, so a zip replaced since (downloaded again) is opened anew.
_open_zips: dict[str, tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo], tuple[int, int]]] = {}


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's real name. Zips written on Korean Windows store CP949 names without the
    UTF-8 flag, which ``zipfile`` decodes as CP437; undo that, and normalise to NFC."""
    name = info.filename
    if not info.flag_bits & 0x800:
        raw = name.encode("cp437")
        for encoding in ("utf-8", "cp949"):
            try:
                name = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    return nfc(name)


def walk(root: Path, suffixes: frozenset[str], on_error: ErrorSink | None = None) -> Iterator[tuple[str, str]]:
    """Every (NFC name, location) under ``root`` (a folder, a zip, or a folder of zips) whose
    name ends in one of ``suffixes`` (lower case, with the dot), in a stable sorted order.

    A zip that cannot be opened (a download cut short) is skipped and reported to ``on_error``
    as a "corrupt archive"; the other files are still walked.
    """
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() == ".zip":
            yield from _walk_zip(root, suffixes, on_error)
        elif root.suffix.lower() in suffixes:
            yield nfc(root.name), str(root)
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            suffix = path.suffix.lower()
            if suffix == ".zip":
                yield from _walk_zip(path, suffixes, on_error)
            elif suffix in suffixes and not filename.startswith("._"):  # "._x" are macOS resource forks
                yield nfc(filename), str(path)


def _walk_zip(path: Path, suffixes: frozenset[str], on_error: ErrorSink | None) -> Iterator[tuple[str, str]]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = sorted(zf.infolist(), key=lambda i: i.filename)
    except READ_ERRORS as e:
        if on_error is not None:
            on_error(str(path), f"corrupt archive: cannot open it ({e}); download it again, then run again")
        return
    for info in infos:
        if info.is_dir():
            continue
        name = member_name(info)
        base = name.rsplit("/", 1)[-1]
        if Path(base).suffix.lower() in suffixes and not base.startswith("._") and "__MACOSX/" not in name:
            yield base, f"{path}{_SEP}{name}"


def open_location(location: str):  # -> binary file object
    """Open a location for reading bytes (a zip member streams; nothing is extracted)."""
    if _SEP in location:
        zf, info = _member(location)
        return zf.open(info)
    return open(location, "rb")


def stamp(location: str) -> str:
    """What tells whether a location's content changed, without reading it: a zip member's size
    and CRC-32 (a replaced zip with the same member gives the same stamp), a file's size and
    modification time. Raises what reading would (a file or member gone, a damaged zip)."""
    if _SEP in location:
        _, info = _member(location)
        return f"{info.file_size}:{info.CRC:08x}"
    st = os.stat(location)
    return f"{st.st_size}:{st.st_mtime_ns}"


def _member(location: str) -> tuple[zipfile.ZipFile, zipfile.ZipInfo]:
    archive, member = location.split(_SEP, 1)
    st = os.stat(archive)
    key = (st.st_size, st.st_mtime_ns)
    cached = _open_zips.get(archive)
    if cached is None or cached[2] != key:
        if cached is not None:
            cached[0].close()
        zf = zipfile.ZipFile(archive)
        cached = _open_zips[archive] = (zf, {member_name(i): i for i in zf.infolist()}, key)
    zf, members, _ = cached
    if member not in members:
        raise FileNotFoundError(f"{location}: no such member")
    return zf, members[member]


def read_location(location: str) -> bytes:
    with open_location(location) as f:
        return f.read()


def read_error(location: str, error: BaseException) -> tuple[str, str]:
    """(error kind, reason) for a location that could not be read: a damaged zip member is a
    "corrupt_archive", anything else (a file gone, no permission) "read_failed"."""
    if is_member(location) and not isinstance(error, FileNotFoundError):
        archive_path = location.split(_SEP, 1)[0]
        return "corrupt_archive", f"corrupt archive: cannot read this member of {archive_path} ({error})"
    return "read_failed", f"cannot read the file: {error}"


def is_member(location: str) -> bool:
    """Whether ``location`` names a zip member (``archive.zip::member``)."""
    return _SEP in location


def text_encoding(location: str) -> str | None:
    """UTF-8 (with or without a BOM) or CP949, whichever decodes the whole file; None if neither.

    Korean label files come in all three; the file is streamed once, never held whole.
    """
    for encoding in ("utf-8-sig", "cp949"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with open_location(location) as f:
                while chunk := f.read(1 << 20):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    return None
