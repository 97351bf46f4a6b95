"""Output paths checked before any work: a command refuses a file where it writes a folder, and the
reverse, at once, not after minutes of inference with a traceback."""

from __future__ import annotations

from pathlib import Path

from maeum.errors import ConfigError


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
