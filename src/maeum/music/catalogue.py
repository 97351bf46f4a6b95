"""Music tracks with their mood features, and the catalogue maeum recommends from.

A `Track` places a song on the valence-energy plane (both 0..1, Spotify's audio-feature
scale): valence is how positive it sounds, energy how intense. Listen links are search URLs
built from title and artist, so they work without any streaming-service API key.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from maeum.errors import MaeumError


class CatalogueError(MaeumError):
    """A music catalogue that cannot be used: an unreadable or malformed file, a bad or duplicate track."""


@dataclass(frozen=True)
class Track:
    """One song: identity, position on the valence-energy plane (0..1 each), genre, language and listen links."""

    id: str
    title: str
    artist: str
    valence: float
    energy: float
    genre: str = ""
    language: str = ""
    links: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    mood: str | None = None
    lyrics_emotion: str | None = None

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise CatalogueError(f"track {self.title!r}: empty id; give every track a unique id")
        if not self.title.strip():
            raise CatalogueError(f"track {self.id!r}: empty title")
        for name in ("valence", "energy"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise CatalogueError(f"track {self.id!r}: {name} {value} is outside 0..1")

    @property
    def features(self) -> tuple[float, float]:
        """(valence, energy)."""
        return (self.valence, self.energy)


def listen_links(title: str, artist: str) -> dict[str, str]:
    """Search URLs on Melon, YouTube and Spotify for ``title`` by ``artist``, URL-encoded."""
    query = f"{title} {artist}".strip()
    return {
        "melon": "https://www.melon.com/search/total/index.htm?q=" + urllib.parse.quote_plus(query),
        "youtube": "https://www.youtube.com/results?search_query=" + urllib.parse.quote_plus(query),
        "spotify": "https://open.spotify.com/search/" + urllib.parse.quote(query, safe=""),
    }


def make_track(
    id: str,
    title: str,
    artist: str,
    valence: float,
    energy: float,
    genre: str = "",
    language: str = "",
    mood: str | None = None,
    lyrics_emotion: str | None = None,
) -> Track:
    """A `Track` with its listen links filled in from title and artist."""
    return Track(id, title, artist, float(valence), float(energy), genre, language,
                 listen_links(title, artist), mood, lyrics_emotion)  # fmt: skip


class Catalogue:
    """An ordered collection of tracks with unique ids; iterable, sized, and indexable by id."""

    def __init__(self, tracks: Iterable[Track]) -> None:
        self._tracks: tuple[Track, ...] = tuple(tracks)
        self._by_id: dict[str, Track] = {}
        for track in self._tracks:
            if track.id in self._by_id:
                raise CatalogueError(f"duplicate track id {track.id!r} ({track.title!r}); ids must be unique")
            self._by_id[track.id] = track

    def __len__(self) -> int:
        return len(self._tracks)

    def __iter__(self) -> Iterator[Track]:
        return iter(self._tracks)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._by_id

    @property
    def tracks(self) -> tuple[Track, ...]:
        return self._tracks

    def get(self, track_id: str) -> Track:
        """The track with ``track_id``; CatalogueError if there is none."""
        try:
            return self._by_id[track_id]
        except KeyError:
            raise CatalogueError(f"no track with id {track_id!r} in this catalogue of {len(self)} tracks") from None

    def genres(self) -> list[str]:
        """The distinct genres, sorted."""
        return sorted({t.genre for t in self._tracks if t.genre})
