"""The command line's image arguments (files, folders, globs) expanded into the files to read.

Every argument that yields nothing gives a one-line message instead, so one bad argument never
stops the others.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def expand_paths(args: Sequence[str], suffixes: Iterable[str]) -> Iterator[tuple[str, Path | None, str]]:
    """Yield (argument, file, "") for every file to read, or (argument, None, error) for a bad argument.

    A path that exists is taken as it is, even with ``[`` ``*`` ``?`` in its name; only a path
    that does not exist is tried as a glob. Folders are searched recursively for files whose
    suffix is one of ``suffixes``, skipping hidden files and folders (names starting with ``.``,
    such as macOS's ``._photo.jpg`` and ``.Trashes``) and not following links to folders. A file
    reached twice (the same argument twice, a link, a glob through a link loop) is read once.
    """
    suffixes = frozenset(s.lower() for s in suffixes)
    seen: set[str] = set()
    for arg in args:
        if os.path.lexists(arg) or not glob.has_magic(arg):
            matches = [arg]
        else:
            matches = _glob(arg)
            if not matches:
                yield arg, None, f"{arg}: no file matches this pattern"
                continue
        for match in matches:
            for path, error in _expand(match, suffixes):
                if path is None:
                    yield arg, None, error
                    continue
                real = os.path.realpath(path)
                if real in seen:
                    log.debug("%s: already read as %s", path, real)
                    continue
                seen.add(real)
                yield arg, path, ""


def _glob(pattern: str) -> list[str]:
    """The pattern's matches, sorted, each file once: ``**`` follows links to folders, loops included,
    so one file can match under many names; the shortest name of each stands for it."""
    best: dict[str, str] = {}
    for match in glob.iglob(pattern, recursive=True):
        real = os.path.realpath(match)
        if real not in best or (match.count(os.sep), match) < (best[real].count(os.sep), best[real]):
            best[real] = match
    return sorted(best.values())


def _expand(match: str, suffixes: frozenset[str]) -> Iterator[tuple[Path | None, str]]:
    path = Path(match)
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # a broken link too
        stdin = " (images are not read from stdin: save the image and pass its path)" if match == "-" else ""
        yield None, f"{path}: no such file or folder; check the path{stdin}"
        return
    except OSError as e:  # a folder on the way that cannot be entered, a link loop
        yield None, f"{path}: {_reason(e)}"
        return
    if not stat.S_ISDIR(mode):
        yield path, ""
        return
    found = _walk(path, suffixes)
    if not found:
        yield None, f"{path}: folder holds no images ({', '.join(sorted(suffixes))})"
    yield from found


def _walk(folder: Path, suffixes: frozenset[str]) -> list[tuple[Path | None, str]]:
    """The files under ``folder`` and a message per subfolder that cannot be read, in path order."""
    found: list[tuple[Path, Path | None, str]] = []

    def unreadable(e: OSError) -> None:
        where = Path(e.filename) if e.filename else folder
        found.append((where, None, f"{where}: {_reason(e)}"))

    for root, dirs, names in os.walk(folder, onerror=unreadable):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            path = Path(root) / name
            if name.startswith(".") or path.suffix.lower() not in suffixes:
                continue
            try:
                if path.is_file():  # not a broken link, a socket or a pipe
                    found.append((path, path, ""))
            except OSError as e:
                found.append((path, None, f"{path}: {_reason(e)}"))
    return [(path, error) for _, path, error in sorted(found, key=lambda item: item[0])]


def _reason(e: OSError) -> str:
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; check the permissions of the file and its folders"
    return f"cannot read it ({e.strerror or e})"
