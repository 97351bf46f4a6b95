"""Read track lists from CSV files: Spotify audio-feature exports and Melon chart exports.

Both readers accept UTF-8 (with or without a byte-order mark) and CP949, the encoding Korean
Windows tools write. Column names are matched case-insensitively with spaces, dashes and
underscores treated alike, so ``Track Name``, ``track_name`` and ``track-name`` are one column.
Any problem raises `CatalogueError` naming the file, the line number (the header is line 1)
and what to fix.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from maeum.music.catalogue import Catalogue, CatalogueError, Track, make_track
from maeum.text.emotion import analyze_text

_log = logging.getLogger(__name__)

OnDuplicate = Literal["error", "keep_first"]

_TITLE = ("name", "track_name", "title", "song", "song_name")
_ARTIST = ("artists", "artist", "artist_name", "singer")
_ID = ("id", "track_id", "song_id")
_GENRE = ("genre", "track_genre", "genres")

# Valence and energy maeum assumes for a Melon genre when the file gives no audio features.
# These are editorial estimates of a typical song of the genre, not measurements; a file with
# valence and energy columns always wins. Keys are lower-case genre names as Melon lists them.
MELON_GENRE_DEFAULTS: dict[str, tuple[float, float]] = {
    "ballad": (0.30, 0.30),
    "발라드": (0.30, 0.30),
    "dance": (0.75, 0.80),
    "댄스": (0.75, 0.80),
    "idol": (0.70, 0.75),
    "k-pop": (0.65, 0.70),
    "indie": (0.50, 0.45),
    "인디음악": (0.50, 0.45),
    "pop": (0.60, 0.65),
    "adult pop": (0.45, 0.40),
    "성인가요": (0.55, 0.55),
    "trot": (0.65, 0.65),
    "트로트": (0.65, 0.65),
    "r&b": (0.45, 0.45),
    "r&b/soul": (0.45, 0.45),
    "알앤비/소울": (0.45, 0.45),
    "hip-hop": (0.50, 0.75),
    "rap/hip-hop": (0.50, 0.75),
    "랩/힙합": (0.50, 0.75),
    "rock": (0.50, 0.80),
    "rock/metal": (0.45, 0.85),
    "록/메탈": (0.45, 0.85),
    "folk": (0.45, 0.30),
    "folk/blues": (0.45, 0.30),
    "포크/블루스": (0.45, 0.30),
    "ost": (0.40, 0.40),
    "국내드라마": (0.40, 0.40),
    "electronica": (0.60, 0.80),
    "일렉트로니카": (0.60, 0.80),
    "jazz": (0.55, 0.35),
    "classical": (0.45, 0.20),
}
# Used when a Melon row has neither audio features nor a genre in MELON_GENRE_DEFAULTS.
MELON_UNKNOWN_DEFAULT: tuple[float, float] = (0.55, 0.55)

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
# Control characters other than tab and line breaks: invisible in a title, and PostgreSQL refuses NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _key(name: str) -> str:
    return re.sub(r"[\s\-_]+", "_", name.strip().lower())


def _decode(path: Path) -> str:
    """The file's text (UTF-8 or CP949) without control characters."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CatalogueError(f"{path}: cannot read the file ({e.strerror or e}); check the path") from None
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return _CONTROL.sub("", data.decode(encoding))
        except UnicodeDecodeError:
            continue
    raise CatalogueError(f"{path}: neither UTF-8 nor CP949 text; save the CSV as UTF-8")


class _Rows:
    """The CSV's rows as dicts keyed by normalised column names, each with its line number."""

    def __init__(self, path: Path) -> None:
        self.path = path
        text = _decode(path)
        # Spreadsheets set to a European locale save with semicolons (and decimal commas), others with tabs.
        first = text.split("\n", 1)[0]
        self.delimiter = "," if "," in first else ";" if ";" in first else "\t" if "\t" in first else ","
        if self.delimiter != ",":
            _log.info("%s: columns separated by %r", path, self.delimiter)
        self._reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        try:
            header = next(self._reader)
        except StopIteration:
            raise CatalogueError(f"{path}: the file is empty; it needs a header line and at least one track") from None
        except csv.Error as e:
            raise CatalogueError(f"{path}, line 1: unreadable header ({e})") from None
        self.columns = [_key(c) for c in header]

    def column(self, aliases: tuple[str, ...], required: bool, what: str) -> str | None:
        for alias in aliases:
            if alias in self.columns:
                return alias
        if required:
            raise CatalogueError(
                f"{self.path}, line 1: missing required column {what!r} (any of: {', '.join(aliases)}); "
                f"the header has: {', '.join(self.columns)}"
            )
        return None

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        while True:
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise CatalogueError(f"{self.path}, line {self._reader.line_num}: malformed CSV ({e})") from None
            line = self._reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(self.columns):
                raise CatalogueError(
                    f"{self.path}, line {line}: {len(cells)} fields but the header has {len(self.columns)}; "
                    f"quote fields that contain {self.delimiter!r}"
                )
            yield line, {k: v.strip() for k, v in zip(self.columns, cells, strict=True)}

    def fail(self, line: int, message: str) -> CatalogueError:
        return CatalogueError(f"{self.path}, line {line}: {message}")


def _unit(rows: _Rows, line: int, row: dict[str, str], column: str) -> float:
    text = row[column]
    try:
        value = float(text if rows.delimiter == "," else text.replace(",", "."))  # 0,5 beside semicolons
    except ValueError:
        raise rows.fail(line, f"{column} {text!r} is not a number; use a decimal between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise rows.fail(line, f"{column} {value} is outside 0..1")
    return value


def _text(rows: _Rows, line: int, row: dict[str, str], column: str, what: str) -> str:
    value = row[column]
    if not value:
        raise rows.fail(line, f"empty {what}")
    return value


def _artists(text: str) -> str:
    # Spotify exports write several artists as "['A', 'B']" or "A;B".
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        parts = [p.strip().strip("'\"") for p in text.split(",")]
    else:
        parts = [p.strip() for p in text.split(";")]
    return ", ".join(p for p in parts if p)


def _made_id(prefix: str, title: str, artist: str) -> str:
    return f"{prefix}:" + hashlib.sha1(f"{title}\x00{artist}".encode()).hexdigest()[:12]


def _add(rows: _Rows, line: int, track: Track, seen: dict[str, int], tracks: list[Track], on_duplicate: str) -> None:
    if track.id in seen:
        if on_duplicate == "error":
            raise rows.fail(line, f"duplicate id {track.id!r} (first on line {seen[track.id]}); ids must be unique")
        _log.debug("%s, line %d: skipping duplicate id %r", rows.path, line, track.id)
        return
    seen[track.id] = line
    tracks.append(track)


def _check_on_duplicate(on_duplicate: str) -> None:
    if on_duplicate not in ("error", "keep_first"):
        raise ValueError(f"on_duplicate must be 'error' or 'keep_first', not {on_duplicate!r}")


def read_spotify_csv(path: str | Path, language: str = "", on_duplicate: OnDuplicate = "error") -> Catalogue:
    """Read a Spotify audio-features CSV (e.g. Kaggle's data_moods.csv or a kpop tracks export).

    Required columns: a title (``name``/``track_name``/``title``), an artist
    (``artists``/``artist``), ``valence`` and ``energy`` (0..1). Optional: an id
    (``id``/``track_id``; otherwise one is made from title and artist), a genre
    (``genre``/``track_genre``), ``mood``, ``language`` (else ``language`` given here) and
    ``lyrics_emotion``. Other columns are ignored. A repeated id is an error unless
    ``on_duplicate="keep_first"``.
    """
    _check_on_duplicate(on_duplicate)
    rows = _Rows(Path(path))
    title_col = rows.column(_TITLE, True, "title")
    artist_col = rows.column(_ARTIST, True, "artist")
    valence_col = rows.column(("valence",), True, "valence")
    energy_col = rows.column(("energy",), True, "energy")
    id_col = rows.column(_ID, False, "id")
    genre_col = rows.column(_GENRE, False, "genre")
    mood_col = rows.column(("mood",), False, "mood")
    lang_col = rows.column(("language", "lang"), False, "language")
    lyrics_col = rows.column(("lyrics_emotion",), False, "lyrics_emotion")
    assert title_col and artist_col and valence_col and energy_col
    tracks: list[Track] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        title = _text(rows, line, row, title_col, "title")
        artist = _artists(_text(rows, line, row, artist_col, "artist"))
        if not artist:  # "[]" or ";": a list with no name in it
            raise rows.fail(line, f"empty artist ({row[artist_col]!r})")
        valence = _unit(rows, line, row, valence_col)
        energy = _unit(rows, line, row, energy_col)
        track_id = row[id_col] if id_col else ""
        if id_col and not track_id:
            raise rows.fail(line, f"empty {id_col}; give every track an id or drop the column")
        track = make_track(
            track_id or _made_id("spotify", title, artist), title, artist, valence, energy,
            genre=row[genre_col].lower() if genre_col else "",
            language=(row[lang_col] if lang_col else "") or language,
            mood=(row[mood_col] or None) if mood_col else None,
            lyrics_emotion=(row[lyrics_col] or None) if lyrics_col else None,
        )  # fmt: skip
        _add(rows, line, track, seen, tracks, on_duplicate)
    if not tracks:
        raise CatalogueError(f"{rows.path}: no tracks after the header")
    _log.info("read %d tracks from %s", len(tracks), rows.path)
    return Catalogue(tracks)


def read_melon_csv(path: str | Path, genre: str = "", on_duplicate: OnDuplicate = "keep_first") -> Catalogue:
    """Read a Melon chart CSV (``rank,title,singer,album,date,like``) or a Melon song list.

    Required columns: ``title`` and an artist (``singer``/``artist``/``artists``). A chart
    lists the same song on many dates; rows are keyed by an id made from title and artist
    (or the ``id``/``song_id`` column when present) and later repeats are skipped, unless
    ``on_duplicate="error"``.

    Melon exports carry no audio features, so valence and energy come, in order, from:
    ``valence``/``energy`` columns when the file has them; else the row's genre (a ``genre``
    column, or ``genre`` given here) looked up in `MELON_GENRE_DEFAULTS`, maeum's editorial
    estimate for a typical song of that genre (e.g. ballad 0.30/0.30, dance 0.75/0.80);
    else `MELON_UNKNOWN_DEFAULT` (0.55/0.55). Treat such tracks as coarsely placed.
    Language is the ``language`` column, else "ko" when title or artist contains Hangul,
    else "en" (a guess).
    """
    _check_on_duplicate(on_duplicate)
    rows = _Rows(Path(path))
    title_col = rows.column(("title", "song", "song_name", "name"), True, "title")
    artist_col = rows.column(("singer", "artist", "artists", "artist_name"), True, "artist")
    id_col = rows.column(_ID, False, "id")
    genre_col = rows.column(_GENRE, False, "genre")
    valence_col = rows.column(("valence",), False, "valence")
    energy_col = rows.column(("energy",), False, "energy")
    lang_col = rows.column(("language", "lang"), False, "language")
    lyrics_col = rows.column(("lyrics_emotion",), False, "lyrics_emotion")
    lyric_col = rows.column(("lyric", "lyrics"), False, "lyrics")
    if (valence_col is None) != (energy_col is None):
        raise rows.fail(1, "has only one of valence and energy; give both columns or neither")
    assert title_col and artist_col
    tracks: list[Track] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        title = _text(rows, line, row, title_col, "title")
        artist = _text(rows, line, row, artist_col, "artist")
        row_genre = ((row[genre_col] if genre_col else "") or genre).lower()
        if valence_col and energy_col:
            valence, energy = _unit(rows, line, row, valence_col), _unit(rows, line, row, energy_col)
        else:
            valence, energy = MELON_GENRE_DEFAULTS.get(row_genre, MELON_UNKNOWN_DEFAULT)
        language = (row[lang_col] if lang_col else "") or ("ko" if _HANGUL.search(title + artist) else "en")
        track_id = (row[id_col] if id_col else "") or _made_id("melon", title, artist)
        lyrics_emotion = (row[lyrics_col] or None) if lyrics_col else None
        if lyrics_emotion is None and lyric_col and row[lyric_col].strip():
            lyrics_emotion = tag_lyrics(row[lyric_col])
        track = make_track(track_id, title, artist, valence, energy, genre=row_genre, language=language,
                           lyrics_emotion=lyrics_emotion)  # fmt: skip
        _add(rows, line, track, seen, tracks, on_duplicate)
    if not tracks:
        raise CatalogueError(f"{rows.path}: no tracks after the header")
    _log.info("read %d tracks from %s", len(tracks), rows.path)
    return Catalogue(tracks)


def tag_lyrics(lyrics: str) -> str | None:
    """The Korean text emotion of a song's lyrics, or None when no emotion word was found."""
    result = analyze_text(lyrics)
    return result.label if result.evidence else None
