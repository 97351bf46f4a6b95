"""Songs for a post: each user's catalogue, the picks shown with a post, and likes and skips.

A user's catalogue is maeum's default one, plus the songs the server's operator imported for
everyone (``maeum app import-music``), plus the user's own imported CSV. The picks for a post are
made on its first view and kept, so the list does not change under the user; a like or skip is
stored per emotion and moves later recommendations; a skipped song leaves the list at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DbSession

from maeum.app.errors import UserError
from maeum.app.models import ImportedTrack, MusicPick, MusicRating, Post, User
from maeum.music import (
    MELON_GENRE_DEFAULTS,
    Catalogue,
    CatalogueError,
    Feedback,
    Recommender,
    Track,
    default_catalogue,
    make_track,
    read_melon_csv,
    read_spotify_csv,
)
from maeum.music.recommend import TARGETS

log = logging.getLogger(__name__)

RECENT_PICKS = 30  # songs picked for a user's last posts are not picked again
CatalogueFormat = Literal["spotify", "melon"]
MAX_IMPORTED_TRACKS = 50_000
MAX_TRACK_ID_CHARS = 200  # the column's length; other text is cut to its column's length
# The genres the import form offers for a Melon file without a genre column: (key of MELON_GENRE_DEFAULTS,
# Korean name, English name).
UPLOAD_GENRES: tuple[tuple[str, str, str], ...] = (
    ("발라드", "발라드", "Ballad"),
    ("댄스", "댄스", "Dance"),
    ("idol", "아이돌", "Idol"),
    ("k-pop", "K-pop", "K-pop"),
    ("인디음악", "인디음악", "Indie"),
    ("pop", "팝", "Pop"),
    ("성인가요", "성인가요", "Korean adult pop (seong-in gayo)"),
    ("트로트", "트로트", "Trot"),
    ("알앤비/소울", "R&B/소울", "R&B/Soul"),
    ("랩/힙합", "랩/힙합", "Rap/Hip-hop"),
    ("록/메탈", "록/메탈", "Rock/Metal"),
    ("포크/블루스", "포크/블루스", "Folk/Blues"),
    ("ost", "OST", "Soundtrack (OST)"),
    ("일렉트로니카", "일렉트로니카", "Electronica"),
    ("jazz", "재즈", "Jazz"),
    ("classical", "클래식", "Classical"),
)


def read_catalogue(path: Path, fmt: str, genre: str = "") -> Catalogue:
    """A catalogue CSV in the Spotify-features or the Melon layout; CatalogueError names the bad line.

    ``genre``: for the Melon layout, the genre of rows that name none (it sets their valence and energy).
    """
    if fmt == "spotify":
        if genre:
            raise CatalogueError("a genre for the whole file applies to the melon format only")
        return read_spotify_csv(path, on_duplicate="keep_first")
    if fmt == "melon":
        if genre and genre.lower() not in MELON_GENRE_DEFAULTS:
            known = ", ".join(sorted(MELON_GENRE_DEFAULTS))
            raise CatalogueError(f"genre {genre!r} has no valence and energy in maeum; choose one of {known}")
        return read_melon_csv(path, genre=genre)
    raise CatalogueError(f"unknown catalogue format {fmt!r}; choose spotify or melon")


def replace_imported(db: DbSession, owner: User | None, catalogue: Catalogue) -> int:
    """Make ``catalogue`` the imported songs of ``owner`` (None: everyone's), replacing earlier imports."""
    if len(catalogue) > MAX_IMPORTED_TRACKS:
        raise CatalogueError(f"{len(catalogue)} tracks is more than the {MAX_IMPORTED_TRACKS} one import may hold")
    for t in catalogue:  # an id is never cut (two could become one); PostgreSQL refuses longer ones
        if len(t.id) > MAX_TRACK_ID_CHARS:
            raise CatalogueError(f"track {t.title!r}: its id is longer than {MAX_TRACK_ID_CHARS} characters")
    owner_id = owner.id if owner else None
    db.execute(delete(ImportedTrack).where(_owned_by(owner_id)))
    db.add_all(
        ImportedTrack(
            owner_id=owner_id,
            track_id=t.id,
            title=t.title[:300],
            artist=t.artist[:300],
            valence=t.valence,
            energy=t.energy,
            genre=t.genre[:64],
            language=t.language[:16],
            mood=t.mood[:16] if t.mood else None,
            lyrics_emotion=t.lyrics_emotion[:32] if t.lyrics_emotion else None,
        )
        for t in catalogue
    )
    return len(catalogue)


def _owned_by(owner_id: int | None):  # type: ignore[no-untyped-def]
    return ImportedTrack.owner_id.is_(None) if owner_id is None else ImportedTrack.owner_id == owner_id


def imported_count(db: DbSession, owner: User | None) -> int:
    return db.scalar(select(func.count()).select_from(ImportedTrack).where(_owned_by(owner.id if owner else None)))


class Music:
    """Picks songs for posts. The shared part of the catalogue is cached until an import changes it."""

    def __init__(self, picks: int) -> None:
        self.n = picks
        self._default = default_catalogue()
        self._lock = threading.Lock()
        self._shared: tuple[tuple[int, int], list[Track]] = ((-1, -1), [])

    def catalogue(self, db: DbSession, user: User) -> Catalogue:
        """Default songs, then everyone's imports, then the user's own; a repeated id keeps the first."""
        tracks = list(self._default)
        tracks += self._shared_tracks(db)
        tracks += [_track(row) for row in db.scalars(select(ImportedTrack).where(ImportedTrack.owner_id == user.id))]
        seen: set[str] = set()
        unique = [t for t in tracks if not (t.id in seen or seen.add(t.id))]  # type: ignore[func-returns-value]
        return Catalogue(unique)

    def _shared_tracks(self, db: DbSession) -> list[Track]:
        version = tuple(db.execute(select(func.count(), func.max(ImportedTrack.id)).where(_owned_by(None))).one())
        version = (int(version[0] or 0), int(version[1] or 0))
        with self._lock:
            if self._shared[0] == version:
                return self._shared[1]
        tracks = [_track(row) for row in db.scalars(select(ImportedTrack).where(_owned_by(None)))]
        with self._lock:
            self._shared = (version, tracks)
        return tracks

    def genres(self, db: DbSession, user: User) -> list[str]:
        return self.catalogue(db, user).genres()

    def feedback(self, db: DbSession, user: User) -> Feedback:
        feedback = Feedback()
        rows = db.scalars(select(MusicRating).where(MusicRating.user_id == user.id).order_by(MusicRating.at))
        for row in rows:
            if row.emotion in TARGETS:
                (feedback.like if row.rating == "like" else feedback.skip)(row.emotion, row.track_id)
        return feedback

    def ratings(self, db: DbSession, user: User, emotion: str) -> dict[str, str]:
        rows = db.scalars(select(MusicRating).where(MusicRating.user_id == user.id, MusicRating.emotion == emotion))
        return {r.track_id: r.rating for r in rows}

    def picks(self, db: DbSession, user: User, post: Post, genres: dict[str, list[str]]) -> list[Track]:
        """The songs shown with ``post``: stored ones, or new picks for its emotion (stored now)."""
        catalogue = self.catalogue(db, user)
        stored = self._stored(db, post)
        if stored:
            return [catalogue.get(p.track_id) for p in stored if p.track_id in catalogue]
        if post.label not in TARGETS:  # a custom model's label with no music target
            return []
        tracks = self._recommend(db, user, post, catalogue, genres, self.n, exclude=())
        self._store(db, user, post, tracks, start=0)
        return tracks

    def refresh(self, db: DbSession, user: User, post: Post, genres: dict[str, list[str]]) -> None:
        """Replace the post's picks with new ones, none of the current ones among them."""
        current = [p.track_id for p in self._stored(db, post)]
        db.execute(delete(MusicPick).where(MusicPick.post_id == post.id))
        if post.label in TARGETS:
            catalogue = self.catalogue(db, user)
            tracks = self._recommend(db, user, post, catalogue, genres, self.n, exclude=current)
            self._store(db, user, post, tracks, start=0)

    def forget(self, db: DbSession, post: Post) -> None:
        """Drop the post's picks (e.g. its emotion was corrected): they are made again on the next view."""
        db.execute(delete(MusicPick).where(MusicPick.post_id == post.id))

    def rate(
        self, db: DbSession, user: User, post: Post, track_id: str, rating: str, genres: dict[str, list[str]]
    ) -> None:
        """Store a like or skip of a song shown with ``post``; a skipped song is replaced by the next pick."""
        if rating not in ("like", "skip"):
            raise UserError("bad_request")
        stored = self._stored(db, post)
        if track_id not in {p.track_id for p in stored}:
            raise UserError("not_found", 404)
        row = db.scalar(
            select(MusicRating).where(
                MusicRating.user_id == user.id, MusicRating.emotion == post.label, MusicRating.track_id == track_id
            )
        )
        if row is None:
            db.add(MusicRating(user_id=user.id, emotion=post.label, track_id=track_id, rating=rating))
        else:
            row.rating = rating
        if rating == "skip":
            db.flush()
            db.execute(delete(MusicPick).where(MusicPick.post_id == post.id, MusicPick.track_id == track_id))
            keep = [p.track_id for p in stored if p.track_id != track_id]
            catalogue = self.catalogue(db, user)
            more = self._recommend(db, user, post, catalogue, genres, 1, exclude=[*keep, track_id])
            self._store(db, user, post, more, start=max((p.rank for p in stored), default=0) + 1)

    def _stored(self, db: DbSession, post: Post) -> list[MusicPick]:
        return list(db.scalars(select(MusicPick).where(MusicPick.post_id == post.id).order_by(MusicPick.rank)))

    def _recommend(
        self,
        db: DbSession,
        user: User,
        post: Post,
        catalogue: Catalogue,
        genres: dict[str, list[str]],
        n: int,
        exclude: Iterable[str],
    ) -> list[Track]:
        recent = db.scalars(
            select(MusicPick.track_id)
            .where(MusicPick.user_id == user.id, MusicPick.post_id != post.id)
            .order_by(MusicPick.id.desc())
            .limit(RECENT_PICKS)
        )
        exclude = set(exclude)
        feedback = self.feedback(db, user)
        recommender = Recommender(catalogue)
        tracks = recommender.recommend(
            post.label, n, genres, exclude_ids=exclude | set(recent), feedback=feedback, seed=post.id
        )
        if len(tracks) < n:  # a small catalogue: allow recent songs again rather than show too few
            more = recommender.recommend(
                post.label, n, genres, exclude_ids=exclude | {t.id for t in tracks}, feedback=feedback, seed=post.id
            )
            tracks += more[: n - len(tracks)]
        return tracks

    def _store(self, db: DbSession, user: User, post: Post, tracks: list[Track], start: int) -> None:
        for i, track in enumerate(tracks):
            db.add(MusicPick(post_id=post.id, user_id=user.id, emotion=post.label, track_id=track.id, rank=start + i))


def _track(row: ImportedTrack) -> Track:
    return make_track(
        row.track_id,
        row.title,
        row.artist,
        row.valence,
        row.energy,
        genre=row.genre,
        language=row.language,
        mood=row.mood,
        lyrics_emotion=row.lyrics_emotion,
    )
