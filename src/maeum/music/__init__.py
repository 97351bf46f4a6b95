"""Music for a mood: a track catalogue, CSV importers and an emotion-aware recommender.

>>> from maeum.music import Recommender, default_catalogue
>>> tracks = Recommender(default_catalogue()).recommend("sadness", n=3)
"""

from maeum.music.catalogue import Catalogue, CatalogueError, Track, listen_links, make_track
from maeum.music.default_catalogue import default_catalogue
from maeum.music.importers import MELON_GENRE_DEFAULTS, read_melon_csv, read_spotify_csv
from maeum.music.recommend import TARGETS, EmotionTarget, Feedback, Recommender

__all__ = [
    "MELON_GENRE_DEFAULTS",
    "TARGETS",
    "Catalogue",
    "CatalogueError",
    "EmotionTarget",
    "Feedback",
    "Recommender",
    "Track",
    "default_catalogue",
    "listen_links",
    "make_track",
    "read_melon_csv",
    "read_spotify_csv",
]
