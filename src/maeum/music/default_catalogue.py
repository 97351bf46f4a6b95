"""maeum's own curated starter catalogue: about 75 well-known songs, half Korean, half international.

The valence and energy of every song in ``data/default.csv`` are maeum's editorial
estimates on Spotify's 0..1 scale, written by hand from listening impressions; they are
not measured audio features and not taken from any data set. Genres are likewise coarse
editorial labels. Listen links are search URLs built from title and artist.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from maeum.music.catalogue import Catalogue
from maeum.music.importers import read_spotify_csv


@functools.lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    """The curated catalogue shipped with maeum (read once, then cached)."""
    with resources.as_file(resources.files("maeum.music") / "data" / "default.csv") as path:
        return read_spotify_csv(Path(path))
