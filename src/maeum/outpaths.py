"""Output paths checked before any work: a command refuses a file where it writes a folder, and the
reverse, at once, not after minutes of inference with a traceback."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from maeum.errors import ConfigError, MaeumError, OutputError


def _check_parents(path: Path, flag: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {path}: {parent} is a file, not a folder; pass a path in a folder")
            return


def output_file(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a file to (over)write: refused if it is a folder or lies under a file."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; pass the path of the file to write")
    _check_parents(path, flag)
    return path


def output_folder(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a folder to write into (made if missing): refused if it is a file or lies under one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: is a file; pass a folder (new or existing)")
    _check_parents(path, flag)
    return path


def writable_file(path: str | Path, flag: str = "--out") -> Path:
    """``output_file``, and proven writable now by opening it to append (a file made for the test is
    removed again): a path that cannot be written fails before the work, not after it."""
    path = output_file(path, flag)
    existed = os.path.lexists(path)
    try:
        with path.open("ab"):
            pass
    except OSError as e:
        raise ConfigError(
            f"{flag} {path}: cannot write it ({e.strerror}); check the folder and its permissions"
        ) from None
    if not existed:
        path.unlink()
    return path


def refuse_overwriting(outputs: Iterable[tuple[str, str | Path | None]], inputs: Iterable[str | Path] = ()) -> None:
    """Raise ConfigError when an output is one of the ``inputs``, or two outputs are one file.

    Writing would destroy the input (an output is truncated when opened, before the input is
    read), or mix two outputs into one corrupt file. ``outputs`` are (flag, path) pairs; None and
    ``-`` (stdout) are left out. Paths are compared as files (links, hard links and ``..`` lead to
    the same file) when they exist, else as resolved paths.
    """
    named = [(flag, Path(path), _identity(path)) for flag, path in outputs if path is not None and str(path) != "-"]
    for i, (flag, path, ident) in enumerate(named):
        for other_flag, other, other_ident in named[:i]:
            if ident == other_ident:
                raise ConfigError(
                    f"{flag} {path}: {other_flag} {other} is the same file; give each output its own path"
                )
    if not named:
        return
    for source in inputs:
        ident = _identity(source)
        for flag, path, out_ident in named:
            if ident == out_ident:
                raise ConfigError(
                    f"{flag} {path}: is the input {source}, which writing would destroy; choose another output path"
                )


def _identity(path: str | Path) -> tuple[int, int] | str:
    """The file ``path`` names: (device, inode) when it exists, else its resolved path."""
    try:
        info = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return info.st_dev, info.st_ino


def open_text(path: str | Path, name: str, error: type[MaeumError] = ConfigError, bom: bool = False) -> TextOutput:
    """``path`` opened for writing text (``-``: stdout). ``bom`` starts the file with a UTF-8 byte order
    mark, which Excel needs to read UTF-8 Hangul. ``error``, naming ``name``, for a file that cannot be opened."""
    if str(path) == "-":
        return TextOutput(sys.stdout, "stdout")
    try:
        return TextOutput(Path(path).open("w", encoding="utf-8-sig" if bom else "utf-8", newline=""), str(path))
    except OSError as e:
        raise error(f"{name}: cannot write it ({e.strerror}); check the folder and its permissions") from None


class TextOutput:
    """A text file or stdout whose write failures (a full disk, an I/O error) raise OutputError naming it.

    A closed pipe (``| head``) still raises BrokenPipeError, which the command line ends quietly.
    """

    def __init__(self, file: IO[str], name: str) -> None:
        self.file, self.name = file, name

    def write(self, text: str) -> None:
        with self._failing_as_output_error():
            self.file.write(text)

    def flush(self) -> None:
        with self._failing_as_output_error():
            self.file.flush()

    def close(self) -> None:
        """Flush stdout, close a file."""
        with self._failing_as_output_error():
            if self.file is sys.stdout:
                self.file.flush()
            else:
                self.file.close()

    @contextlib.contextmanager
    def _failing_as_output_error(self) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputError(f"cannot write {self.name}: {e.strerror or e}") from None
