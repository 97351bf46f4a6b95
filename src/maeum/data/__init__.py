"""Datasets: from a download (AI Hub, FER2013, FER+, image folders) to crops and a manifest.

>>> from maeum.data import PrepareConfig, prepare
>>> summary = prepare(PrepareConfig("aihub", Path("~/aihub"), Path("data/aihub-224")))

Stages, one module each: ``sources`` (reading each dataset kind; ``aihub``, ``download``
and ``archive`` underneath), ``policy`` (labels from votes), ``split`` (person-disjoint
splits), ``crop`` (face crops from big photos), ``engine`` (local processes or Ray),
``manifest`` (the Parquet file training reads) and ``report``; ``prepare`` runs them.

The names below load their module on first use, so the ``maeum`` command, which reads a
few option lists from these modules, does not pay for the whole pipeline at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "AIHUB7": "records",
    "Annotation": "records",
    "DataError": "records",
    "Record": "records",
    "CropConfig": "crop",
    "crop_face": "crop",
    "read_manifest": "manifest",
    "POLICIES": "policy",
    "resolve": "policy",
    "PrepareConfig": "prepare",
    "prepare": "prepare",
    "list_sources": "sources",
    "open_source": "sources",
    "assign_splits": "split",
}

__all__ = [
    "AIHUB7",
    "POLICIES",
    "Annotation",
    "CropConfig",
    "DataError",
    "PrepareConfig",
    "Record",
    "assign_splits",
    "crop_face",
    "list_sources",
    "open_source",
    "prepare",
    "read_manifest",
    "resolve",
]

if TYPE_CHECKING:
    from maeum.data.crop import CropConfig, crop_face
    from maeum.data.manifest import read_manifest
    from maeum.data.policy import POLICIES, resolve
    from maeum.data.prepare import PrepareConfig, prepare
    from maeum.data.records import AIHUB7, Annotation, DataError, Record
    from maeum.data.sources import list_sources, open_source
    from maeum.data.split import assign_splits


assert sorted(__all__) == sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'maeum.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"maeum.data.{_EXPORTS[name]}"), name)
