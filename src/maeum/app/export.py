"""Taking data out: a user's whole diary as a zip, and confirmed emotions as a training dataset.

The dataset is a folder ``maeum train --data`` reads: ``manifest.parquet`` plus face crops,
one row per post whose emotion its owner confirmed or corrected.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from maeum.app.models import ChatMessage, CompanionProfile, ImportedTrack, MusicRating, Post, User
from maeum.app.uploads import ImageStore
from maeum.data.crop import square_region
from maeum.data.split import SPLITS, assign_splits, seeded_key
from maeum.errors import OutputError

# The fewest labelled posts that make a dataset ``maeum train`` accepts: one to train on, one to validate on.
MIN_DATASET_POSTS = 2
CROP_SIZE = 224
CROP_MARGIN = 0.2  # as ``maeum data prepare``'s box mode
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


def post_record(post: Post) -> dict[str, Any]:
    comment = post.comment
    return {
        "id": post.id,
        "day": post.day.isoformat(),
        "text": post.text,
        "label": post.label,
        "predicted": post.predicted,
        "feedback": post.feedback,
        "scores": post.scores,
        "face_box": post.face_box,
        "face_count": post.face_count,
        "model": post.model,
        "image": f"images/{post.id}.jpg",
        "created_at": post.created_at.isoformat() + "Z",
        "edited_at": post.edited_at.isoformat() + "Z" if post.edited_at is not None else None,
        "comment": {"text": comment.text, "source": comment.source, "text_emotion": comment.text_emotion}
        if comment is not None and comment.status == "done"
        else None,
    }


def _companion_record(db: DbSession, user: User) -> dict[str, Any]:
    settings = db.get(CompanionProfile, user.id)
    chat = db.scalars(select(ChatMessage).where(ChatMessage.user_id == user.id).order_by(ChatMessage.id))
    ratings = db.scalars(select(MusicRating).where(MusicRating.user_id == user.id).order_by(MusicRating.id))
    tracks = db.scalars(select(ImportedTrack).where(ImportedTrack.owner_id == user.id).order_by(ImportedTrack.id))
    return {
        "settings": None
        if settings is None
        else {
            "attitude": settings.attitude,
            "composition": settings.composition,
            "intensity": settings.intensity,
            "length": settings.length,
            "endpoint_url": settings.endpoint_url,
            "endpoint_model": settings.endpoint_model,
            "genres": settings.genres,
        },
        "chat": [{"day": m.day.isoformat(), "role": m.role, "text": m.text} for m in chat],
        "song_ratings": [{"emotion": r.emotion, "track_id": r.track_id, "rating": r.rating} for r in ratings],
        "imported_songs": [
            {
                "id": t.track_id,
                "title": t.title,
                "artist": t.artist,
                "valence": t.valence,
                "energy": t.energy,
                "genre": t.genre,
                "language": t.language,
            }
            for t in tracks
        ],
    }


def write_user_archive(db: DbSession, store: ImageStore, user: User, out: IO[bytes]) -> None:
    """Everything stored about ``user`` as a zip: profile.json, posts.json (with the companion's comments),
    companion.json (settings without the API key, chat, song ratings, imported songs) and images/ID.jpg."""
    posts = list(db.scalars(select(Post).where(Post.user_id == user.id).order_by(Post.day, Post.id)))
    profile = {
        "username": user.username,
        "name": user.name,
        "intro": user.intro,
        "lang": user.lang,
        "share_labels": user.share_labels,
        "created_at": user.created_at.isoformat() + "Z",
    }
    companion = _companion_record(db, user)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("profile.json", json.dumps(profile, ensure_ascii=False, indent=2))
        z.writestr("posts.json", json.dumps([post_record(p) for p in posts], ensure_ascii=False, indent=2))
        z.writestr("companion.json", json.dumps(companion, ensure_ascii=False, indent=2))
        for post in posts:
            z.writestr(f"images/{post.id}.jpg", store.read(post.image), compress_type=zipfile.ZIP_STORED)


def labelled_posts(db: DbSession, users: Sequence[User]) -> list[Post]:
    """Posts whose emotion the owner confirmed or corrected."""
    ids = [u.id for u in users]
    query = select(Post).where(Post.user_id.in_(ids), Post.feedback.is_not(None)).order_by(Post.id)
    return list(db.scalars(query))


def labelled_count(db: DbSession, user: User) -> int:
    """How many of ``user``'s posts have an emotion the owner confirmed or corrected."""
    query = select(func.count()).select_from(Post).where(Post.user_id == user.id, Post.feedback.is_not(None))
    return db.scalar(query) or 0


def write_dataset(posts: Iterable[Post], store: ImageStore, labels: Sequence[str], out: Path) -> int:
    """Write face crops and ``manifest.parquet`` for ``posts`` into folder ``out``; return the row count.

    Splits keep each user's posts together when there are at least three users; a single
    user's posts are split by a seeded hash of the post id.
    """
    from maeum.data.manifest import MANIFEST_NAME, ManifestWriter

    posts = list(posts)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        reason = "it is a file" if out.is_file() else e.strerror
        raise OutputError(f"cannot write the dataset into {out} ({reason}); the dataset needs a folder") from None
    split_of = _splits(posts)
    index = {label: i for i, label in enumerate(labels)}
    meta = {"dataset": "maeum-diary", "labels": list(labels), "crop": {"size": CROP_SIZE, "margin": CROP_MARGIN}}
    writer = ManifestWriter(out / MANIFEST_NAME, meta)
    try:
        for post in posts:
            if post.label not in index:
                continue
            rel = f"crops/{post.label}/{post.id}.jpg"
            region = _save_crop(store.read(post.image), post.face_box, out / rel)
            votes = [0] * len(labels)
            votes[index[post.label]] = 1
            writer.write(
                {
                    "name": f"post-{post.id}",
                    "path": rel,
                    "source": f"post:{post.id}",
                    "split": split_of[post.id],
                    "label": post.label,
                    "votes": votes,
                    "annotator_emotions": None,
                    "boxes": None,
                    "crop_box": list(region),
                    "person": f"user-{post.user_id}",
                    "gender": None,
                    "age": None,
                    "background": None,
                    "uploader_emotion": post.label,
                    "width": post.width,
                    "height": post.height,
                    "mask_path": None,
                }
            )
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return len(posts)


def zip_folder(folder: Path, out: IO[bytes]) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder).as_posix())


def _splits(posts: Sequence[Post]) -> dict[int, str]:
    people = {p.user_id for p in posts}
    if len(people) >= 3:
        counts: dict[str, Counter] = {}
        for p in posts:
            counts.setdefault(str(p.user_id), Counter())[p.label] += 1
        person_split = assign_splits(counts, SPLIT_FRACTIONS)
        return {p.id: person_split[str(p.user_id)] for p in posts}
    ordered = sorted(posts, key=lambda p: seeded_key(0, str(p.id)))
    # Every tenth post to val, the next to test, the rest to train; val is filled first so
    # even two labelled posts make a dataset ``maeum train`` accepts.
    return {
        p.id: SPLITS[1] if i % 10 == 0 else SPLITS[2] if i % 10 == 1 and len(posts) > 2 else SPLITS[0]
        for i, p in enumerate(ordered)
    }


def _save_crop(jpeg: bytes, box: list[float], path: Path) -> tuple[float, float, float, float]:
    x, y, w, h = box
    region = square_region((x, y, x + w, y + h), CROP_MARGIN)
    with Image.open(io.BytesIO(jpeg)) as im:
        crop = im.convert("RGB").crop(tuple(round(v) for v in region)).resize((CROP_SIZE, CROP_SIZE))
    path.parent.mkdir(parents=True, exist_ok=True)
    crop.save(path, "JPEG", quality=95)
    return region
