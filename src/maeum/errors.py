"""maeum's exceptions: one base class, messages that say what to do."""

from __future__ import annotations


class MaeumError(Exception):
    """Base class of every error maeum raises on purpose."""


class ImageError(MaeumError):
    """An image that cannot be read: missing, empty, corrupt, not an image, or too large."""


class ImageTooLargeError(ImageError):
    """An image with more pixels than the limit it is read under (``max_pixels``)."""


class ModelError(MaeumError):
    """A model file that cannot be used: missing, unreadable, or without maeum metadata."""


class VideoError(MaeumError):
    """A video that cannot be read or written: missing, corrupt, no video stream, a camera that fails."""


class UnknownNameError(MaeumError, ValueError):
    """A registry lookup with a name that is not registered."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(known)}")
        self.kind, self.name, self.known = kind, name, known


class MissingFileError(MaeumError, FileNotFoundError):
    """A file or folder a setting names that is not there (a training run's data, teacher, --init)."""


class ConfigError(MaeumError, ValueError):
    """A setting that cannot be used: an unknown key, a wrong type or value, an unreadable config file."""


class OutputError(MaeumError):
    """An output that could not be written once the work was under way: a full disk, an I/O error."""
