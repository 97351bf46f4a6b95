"""File names that are not valid UTF-8: written readably, and handed to OpenCV without a crash.

POSIX file names are bytes. Python decodes the ones that are not UTF-8 (a CP949 or EUC-KR name
from a Korean Windows zip, say) into lone surrogates, which no UTF-8 output can hold and which
OpenCV's Python bindings crash on (a segmentation fault, not an exception).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from maeum.errors import MaeumError

_PROC_FD = "/proc/self/fd"


def printable(text: str) -> str:
    """``text`` with the bytes of a non-UTF-8 file name written as ``\\xNN`` escapes.

    ``얼굴.jpg`` saved in EUC-KR becomes ``\\xbe\\xf3\\xb1\\xbc.jpg``; valid text is unchanged.
    """
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that stand for no byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def is_utf8(name: str | Path) -> bool:
    """Whether ``name`` can be passed to OpenCV as it is."""
    try:
        str(name).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@contextlib.contextmanager
def opencv_readable(path: str | Path, error: type[MaeumError]) -> Iterator[str]:
    """``path`` as a name OpenCV can open for reading, for the duration of the block.

    A non-UTF-8 name is opened here and passed as ``/proc/self/fd/N``, which OpenCV (and FFmpeg)
    open again; where there is no /proc, ``error`` asks for the file to be renamed.
    """
    name = str(path)
    if is_utf8(name):
        yield name
        return
    if not os.path.isdir(_PROC_FD):
        raise error(f"{printable(name)}: the file name is not valid UTF-8, which OpenCV cannot open; rename the file")
    try:
        fd = os.open(name, os.O_RDONLY)
    except OSError as e:
        raise error(f"{printable(name)}: cannot open it ({e.strerror})") from None
    try:
        yield f"{_PROC_FD}/{fd}"
    finally:
        os.close(fd)
