"""Recommend songs for a detected emotion, learning from each user's likes and skips.

Every emotion label maps to a target point on the valence-energy plane and a strategy that
says why: sadness gets songs that understand it, anger and fear get calm ones, happiness
gets songs that keep the mood up. Tracks are
ranked by Euclidean distance to the target; a seeded, tiny jitter breaks ties so results
vary between seeds yet are reproducible for one seed.

Feedback moves the target: toward the mean features of liked tracks, away from the mean of
skipped ones, and a skipped track is never recommended again for that emotion.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from maeum.errors import UnknownNameError
from maeum.music.catalogue import Catalogue, Track

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmotionTarget:
    """Where on the valence-energy plane (0..1 each) to look for music for one emotion, and why."""

    valence: float
    energy: float
    mood: str  # happy, energetic, sad or calm: the mood the target stands for
    strategy: str


# Each emotion aims at one mood. In Spotify's audio features, "calm" music (ambient, piano,
# acoustic) sits at low valence and low energy, "sad" at low valence and middling energy,
# "happy" at high valence and fairly high energy, "energetic" at high energy.
TARGETS: dict[str, EmotionTarget] = {
    "neutral": EmotionTarget(0.65, 0.65, "happy", "a gentle lift: pleasant, moderately lively"),
    "happiness": EmotionTarget(0.80, 0.75, "happy", "celebrate: high valence, high energy"),
    "surprise": EmotionTarget(0.50, 0.90, "energetic", "ride the spark: high energy"),
    "sadness": EmotionTarget(0.25, 0.40, "sad", "empathy: songs that understand, not forced cheer"),
    "anger": EmotionTarget(0.15, 0.15, "calm", "cool down: quiet, slow"),
    "disgust": EmotionTarget(0.75, 0.65, "happy", "reset: something pleasant"),
    "fear": EmotionTarget(0.20, 0.15, "calm", "reassure: quiet and soft"),
    "contempt": EmotionTarget(0.20, 0.20, "calm", "soften: mellow and quiet"),
    # The AI Hub Korean classes a face model trained on them emits, next to their nearest FER+ kin.
    "embarrassment": EmotionTarget(0.70, 0.60, "happy", "shake it off: light and pleasant"),
    "anxiety": EmotionTarget(0.20, 0.15, "calm", "reassure: quiet and soft"),
    "hurt": EmotionTarget(0.25, 0.40, "sad", "empathy: songs that understand, not forced cheer"),
}

# How far feedback may move the target: the full pull is reached after _SATURATE ratings.
_LIKE_PULL = 0.6
_SKIP_PUSH = 0.3
_SATURATE = 3
_JITTER = 0.02


class Feedback:
    """One user's likes and skips, per emotion. Mutable: call `like` and `skip` as they happen."""

    def __init__(self) -> None:
        self._liked: dict[str, list[str]] = {}
        self._skipped: dict[str, list[str]] = {}

    def like(self, emotion: str, track_id: str) -> None:
        """Record that the user liked ``track_id`` when feeling ``emotion`` (undoes an earlier skip)."""
        _check_emotion(emotion)
        _remove(self._skipped, emotion, track_id)
        if track_id not in self._liked.setdefault(emotion, []):
            self._liked[emotion].append(track_id)

    def skip(self, emotion: str, track_id: str) -> None:
        """Record that the user skipped ``track_id`` for ``emotion``: it will not be recommended for it again."""
        _check_emotion(emotion)
        _remove(self._liked, emotion, track_id)
        if track_id not in self._skipped.setdefault(emotion, []):
            self._skipped[emotion].append(track_id)

    def liked(self, emotion: str) -> tuple[str, ...]:
        return tuple(self._liked.get(emotion, ()))

    def skipped(self, emotion: str) -> tuple[str, ...]:
        return tuple(self._skipped.get(emotion, ()))

    def to_dict(self) -> dict[str, dict[str, list[str]]]:
        """A JSON-ready copy, for saving with the user's diary."""
        return {"liked": {k: list(v) for k, v in self._liked.items()},
                "skipped": {k: list(v) for k, v in self._skipped.items()}}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Sequence[str]]]) -> Feedback:
        """The inverse of `to_dict`."""
        feedback = cls()
        for emotion, ids in data.get("liked", {}).items():
            for track_id in ids:
                feedback.like(emotion, track_id)
        for emotion, ids in data.get("skipped", {}).items():
            for track_id in ids:
                feedback.skip(emotion, track_id)
        return feedback


def _remove(table: dict[str, list[str]], emotion: str, track_id: str) -> None:
    if track_id in table.get(emotion, ()):
        table[emotion].remove(track_id)


def _check_emotion(emotion: str) -> None:
    if emotion not in TARGETS:
        raise UnknownNameError("emotion", emotion, list(TARGETS))


class Recommender:
    """Ranks a catalogue's tracks for an emotion; stateless apart from the catalogue."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def target(self, emotion: str, feedback: Feedback | None = None) -> tuple[float, float]:
        """The (valence, energy) to aim for: the emotion's target moved by the user's feedback."""
        _check_emotion(emotion)
        base = np.array([TARGETS[emotion].valence, TARGETS[emotion].energy])
        if feedback is None:
            return (float(base[0]), float(base[1]))
        point = base.copy()
        liked = self._features(feedback.liked(emotion))
        if len(liked):
            point += _LIKE_PULL * min(1.0, len(liked) / _SATURATE) * (liked.mean(axis=0) - base)
        skipped = self._features(feedback.skipped(emotion))
        if len(skipped):
            point -= _SKIP_PUSH * min(1.0, len(skipped) / _SATURATE) * (skipped.mean(axis=0) - base)
        point = np.clip(point, 0.0, 1.0)
        return (float(point[0]), float(point[1]))

    def _features(self, ids: Iterable[str]) -> np.ndarray:
        rows = [self.catalogue.get(i).features for i in ids if i in self.catalogue]
        return np.array(rows, dtype=float).reshape(-1, 2)

    def recommend(
        self,
        emotion: str,
        n: int = 5,
        genres_for_emotion: Mapping[str, Sequence[str]] | None = None,
        exclude_ids: Iterable[str] = (),
        feedback: Feedback | None = None,
        seed: int = 0,
        genre_mode: Literal["first", "only"] = "first",
    ) -> list[Track]:
        """Up to ``n`` tracks for ``emotion``, best first.

        ``genres_for_emotion`` maps an emotion to the user's preferred genres for it; with
        ``genre_mode="first"`` tracks of those genres come before the rest, with ``"only"``
        nothing else is returned (so the list may be shorter than ``n``). ``exclude_ids``
        (e.g. recently recommended tracks) and tracks the user skipped for this emotion
        are never returned. A song a catalogue holds under several ids (a single and its album
        release, or the same song in two imports: same title and artist) is returned once, and
        excluding or skipping one of its ids excludes them all. The same arguments and ``seed``
        give the same list.
        """
        _check_emotion(emotion)
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        if genre_mode not in ("first", "only"):
            raise ValueError(f"genre_mode must be 'first' or 'only', not {genre_mode!r}")
        banned = set(exclude_ids) | set(feedback.skipped(emotion) if feedback else ())
        banned_songs = {_song(self.catalogue.get(i)) for i in banned if i in self.catalogue}
        candidates = [t for t in self.catalogue if _song(t) not in banned_songs]  # a banned id's song is banned
        preferred = {g.lower() for g in (genres_for_emotion or {}).get(emotion, ())}
        if preferred and genre_mode == "only":
            candidates = [t for t in candidates if t.genre.lower() in preferred]
        if not candidates:
            _log.info("no tracks left for %s after exclusions and genre preferences", emotion)
            return []
        target = np.array(self.target(emotion, feedback))
        features = np.array([t.features for t in candidates], dtype=float)  # (N, 2)
        distance = np.linalg.norm(features - target, axis=1)
        # Jitter from the seed and emotion only, so one seed reproduces one ranking.
        rng = np.random.default_rng([seed, *emotion.encode()])
        score = distance + rng.uniform(0.0, _JITTER, size=len(candidates))
        not_preferred = np.array([bool(preferred) and t.genre.lower() not in preferred for t in candidates])
        order = np.lexsort((score, not_preferred))  # preferred genres first, then by score
        picked: list[Track] = []
        seen: set[tuple[str, str]] = set()
        for i in order:
            song = _song(candidates[i])
            if song not in seen:
                seen.add(song)
                picked.append(candidates[i])
                if len(picked) == n:
                    break
        return picked


def _song(track: Track) -> tuple[str, str]:
    """What makes two tracks one song to a listener: title and artist, ignoring case and spacing."""
    return (" ".join(track.title.casefold().split()), " ".join(track.artist.casefold().split()))
