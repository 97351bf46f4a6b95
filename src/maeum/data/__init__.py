"""Datasets: from a download (AI Hub, FER2013, FER+, image folders) to crops and a manifest.

>>> from maeum.data import PrepareConfig, prepare
>>> summary = prepare(PrepareConfig("aihub", Path("~/aihub"), Path("data/aihub-224")))

Stages, one module each: ``sources`` (reading each dataset kind; ``aihub``, ``download``
and ``archive`` underneath), ``policy`` (labels from votes), ``split`` (person-disjoint
splits), ``crop`` (face crops from big photos), ``engine`` (local processes or Ray),
``manifest`` (the Parquet file training reads) and ``report``; ``prepare`` runs them.
"""

from maeum.data.crop import CropConfig, crop_face
from maeum.data.manifest import read_manifest
from maeum.data.policy import POLICIES, resolve
from maeum.data.prepare import PrepareConfig, prepare
from maeum.data.records import AIHUB7, Annotation, DataError, Record
from maeum.data.sources import list_sources, open_source
from maeum.data.split import assign_splits

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
