"""``maeum data prepare``: a dataset download to crops, a manifest, an errors file and a report.

Stages, each resumable, with their state in ``OUT/.work/state.sqlite``:
1. scan: index the images (inside zips or folders), read the label files one record at a
   time, apply the label policy, note every bad record; nothing is held in memory per image.
2. split: cap classes if asked, then assign whole persons to train/val/test.
3. crop: shards of the records not yet cropped go to worker processes (or Ray); each shard's
   results are committed together, so a killed run redoes at most the shards in flight.
4. finish: ``manifest.parquet``, ``errors.jsonl``, ``summary.json`` and ``report.md``.
When the source changes (a zip added or replaced), it is read again, and a record whose image,
mask and annotations are as before keeps its crop; only new and changed records are cropped.
The same source and settings always give byte-identical outputs, resumed or not.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from maeum.data import archive
from maeum.data.crop import IMAGE_FORMATS, Crop, CropConfig, crop_face
from maeum.data.engine import run_jobs
from maeum.data.manifest import MANIFEST_NAME, ManifestWriter
from maeum.data.policy import DEFAULT_TIEBREAK, POLICIES, AgreementStats, resolve, votes_per_class
from maeum.data.records import DataError, Record
from maeum.data.sources import Source, open_source
from maeum.data.split import SPLITS, assign_splits, seeded_key
from maeum.errors import ImageError, OutputError
from maeum.progress import Progress

log = logging.getLogger(__name__)

WORK_DIR = ".work"
ERRORS_NAME, SUMMARY_NAME = "errors.jsonl", "summary.json"
# Error kinds, found from the start of a reader's reason text; anything else is "bad_record".
_KINDS: tuple[tuple[str, str], ...] = (
    ("malformed JSON", "malformed_json"),
    ("malformed record", "malformed_record"),
    ("unknown emotion", "unknown_emotion"),
    ("invalid box", "invalid_box"),
    ("box outside", "box_outside_image"),
    ("segmentation mask", "bad_mask"),
    ("mask of shape", "bad_mask"),
    ("unreadable segmentation mask", "bad_mask"),
    ("download failed", "download_failed"),
    ("corrupt archive", "corrupt_archive"),
    ("duplicate record", "duplicate_record"),
    ("cannot read the file", "read_failed"),
)
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, val, test when --split is not given
_SETTINGS_VERSION = "2"  # 2: effective values and the resolved source (1, unmarked: the options as typed)
# Crop-stage errors that leave a record out (the others are warnings about a kept crop).
_CROP_LOSSES: tuple[str, ...] = ("no_box", "no_face", "corrupt_image", "corrupt_archive", "read_failed", "write_failed")
# Losses after which a record counts as cropped (write_failed is tried again on the next run), and
# those the same image always gives again, so that an unchanged record keeps them when the source changes.
_DONE_LOSSES: tuple[str, ...] = tuple(k for k in _CROP_LOSSES if k != "write_failed")
_LASTING_LOSSES: tuple[str, ...] = ("no_box", "no_face", "corrupt_image")
_DERIVED: tuple[str, ...] = ("images", "masks")  # folders of OUT that hold crops


@dataclass(frozen=True)
class PrepareConfig:
    kind: str  # a source kind: aihub, fer2013, ferplus, folder
    source: Path
    out: Path
    policy: str = "majority"
    tiebreak: tuple[str, ...] = DEFAULT_TIEBREAK
    crop: str | None = None  # None: the source's usual mode
    size: int | None = None
    color: str | None = None
    margin: float = 0.2
    image_format: str = "png"
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    resplit: bool = False  # ignore splits the source gives (FER2013, FER+) and split anew
    seed: int = 0
    cap: int | None = None  # at most this many images per class
    detector: str = "retinaface"
    aligner: str = "similarity"
    reduced_decode: bool = True
    # How the work runs; none of these change the outputs.
    workers: int = field(default_factory=lambda: os.cpu_count() or 1, compare=False)
    engine: str = field(default="local", compare=False)
    ray_address: str | None = field(default=None, compare=False)
    shard_size: int = field(default=128, compare=False)
    report: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise DataError(f"unknown label policy {self.policy!r}; choose one of {', '.join(POLICIES)}")
        if self.image_format not in IMAGE_FORMATS:
            raise DataError(f"unknown image format {self.image_format!r}; choose one of {', '.join(IMAGE_FORMATS)}")
        if self.cap is not None and self.cap < 1:
            raise DataError(f"--cap must be at least 1, got {self.cap}")
        bad = [s for s in self.tiebreak if s not in ("uploader", "A", "B", "C")]
        if bad:
            raise DataError(f"unknown tie-break source(s) {bad}; use uploader, A, B, C")
        if self.policy != "tiebreak" and tuple(self.tiebreak) != DEFAULT_TIEBREAK:
            raise DataError(f"--tiebreak applies to --policy tiebreak only (the policy is {self.policy})")
        if self.workers < 1 or self.shard_size < 1:
            raise DataError(f"--workers and --shard-size must be at least 1, got {self.workers} and {self.shard_size}")

    def settings(self, source: Source, crop: CropConfig) -> dict[str, Any]:
        """What decides the outputs, as applied (saved with them; a resumed run must match).

        Values are the effective ones, so a default written out matches it left out, and the
        source is its resolved path, so the run resumes from any working directory.
        """
        return {
            "kind": self.kind,
            "source": str(self.source.resolve()),
            "policy": self.policy,
            "tiebreak": list(self.tiebreak) if self.policy == "tiebreak" else None,
            "crop": crop.mode,
            "size": crop.size,
            "color": crop.color,
            "margin": crop.margin if crop.mode == "box" else None,
            "image_format": self.image_format,
            "fractions": list(self.fractions) if self.resplit or not source.splits_given else None,
            "resplit": self.resplit,
            "seed": self.seed,
            "cap": self.cap,
            "detector": crop.detector if crop.mode == "detect" else None,
            "aligner": crop.aligner if crop.mode == "detect" else None,
            "reduced_decode": crop.reduced_decode,
        }


def prepare(cfg: PrepareConfig) -> dict[str, Any]:
    """Run (or resume) every stage; returns the summary also written to ``summary.json``.

    Everything that can be checked is checked before ``cfg.out`` is touched. A run that fails
    before preparing anything leaves no work state behind, so a corrected command starts afresh.
    """
    # Absolute paths: the work state, the manifest's `source` column and errors.jsonl name files
    # that a run resumed from another working directory (or a reader elsewhere) still finds.
    cfg = replace(cfg, source=Path(os.path.abspath(cfg.source)), out=Path(os.path.abspath(cfg.out)))
    source = open_source(cfg.kind, cfg.source, cfg.out / WORK_DIR)
    _refuse_out_inside_source(cfg)
    _check_options(cfg, source)
    crop_cfg = _crop_config(cfg, source)
    _check_detect_names(crop_cfg)
    settings = cfg.settings(source, crop_cfg)
    _refuse_foreign_out(cfg.out)
    work = cfg.out / WORK_DIR
    out_existed = cfg.out.exists()
    try:
        work.mkdir(parents=True, exist_ok=True)
        lock = _lock(work)
    except OSError as e:
        raise _stopped(cfg.out, e) from None
    with lock:
        try:
            with _State(work / "state.sqlite") as state:
                state.check_settings(settings, cfg.out, lambda saved: _upgrade_settings(saved, source, cfg.out))
                summary = _run(state, cfg, source, crop_cfg, settings)
        except DataError:
            _discard_unfinished(cfg.out, out_existed)
            raise
        except (OSError, sqlite3.Error) as e:  # a full disk, a read-only --out
            raise _stopped(cfg.out, e) from None
        if cfg.report:
            try:
                from maeum.data.report import write_report

                write_report(cfg.out, summary)
            except DataError as e:  # matplotlib missing: the data is ready all the same
                log.warning("no report: %s", e)
            except OSError as e:
                raise _stopped(cfg.out, e) from None
    return summary


def _lock(work: Path) -> IO[str]:
    """Hold ``work/lock`` for the run (released when the returned file is closed): two runs into one --out
    would cut the same crops into the same files and each commit half of them."""
    f = (work / "lock").open("a+", encoding="utf-8")
    try:
        if sys.platform == "win32":  # a lock on the file's first byte; closing the file releases it
            import msvcrt

            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise DataError(
            f"another `maeum data prepare` is writing into {work.parent}; wait for it to finish (or stop it), "
            "or pass another --out"
        ) from None
    return f


def _stopped(out: Path, e: OSError | sqlite3.Error) -> OutputError:
    """The one-line error for a run stopped by its own outputs: what failed, and that a rerun resumes."""
    if isinstance(e, sqlite3.Error):
        what = f"cannot write the work state {out / WORK_DIR / 'state.sqlite'}: {e}"
    else:
        what = f"cannot write into {out}: {e.strerror or e}" + (f" ({e.filename})" if e.filename else "")
    return OutputError(
        f"{what}; the work done so far is kept: free disk space (or make {out} writable) and run the same command "
        "again to finish"
    )


# What `maeum data prepare` writes into --out; a folder holding any of these is one it prepared.
_OWN_MARKERS: tuple[str, ...] = (WORK_DIR, MANIFEST_NAME, ERRORS_NAME)


def _refuse_foreign_out(out: Path) -> None:
    """Refuse an --out that holds files of its own: a rerun deletes every file under ``images/`` and ``masks/``
    that is no crop of the run (and both folders when settings change), so a user's files there would be lost."""
    if not out.is_dir():
        return

    def counts(p: Path) -> bool:  # hidden files (.DS_Store) and empty folders hold nothing to lose
        if p.name.startswith(".") and p.name != WORK_DIR:
            return False
        return not p.is_dir() or p.is_symlink() or next(p.iterdir(), None) is not None

    try:
        names = sorted(p.name for p in out.iterdir() if counts(p))
    except OSError as e:
        raise DataError(f"--out {out}: cannot list it ({e.strerror}); check the folder and its permissions") from None
    if not names or any(name in names for name in _OWN_MARKERS):
        return
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    raise DataError(
        f"--out {out} already holds other files ({shown}), which maeum would mix with its crops and may delete on "
        "a later run; pass a new or empty folder, or one `maeum data prepare` wrote"
    )


def _check_detect_names(crop: CropConfig) -> None:
    """With --crop detect, refuse an unknown --detector or --aligner now, not image by image once cropping starts."""
    if crop.mode != "detect":
        return
    from maeum.align import list_aligners
    from maeum.detect import list_detectors

    for flag, name, known in (
        ("--detector", crop.detector, list_detectors()),
        ("--aligner", crop.aligner, list_aligners()),
    ):
        if name not in known:
            raise DataError(f"{flag} {name!r} is unknown; choose one of: {', '.join(known)}")


def _run(
    state: _State, cfg: PrepareConfig, source: Source, crop_cfg: CropConfig, settings: dict[str, Any]
) -> dict[str, Any]:
    fingerprint = _source_fingerprint(cfg.source)
    if state.get("scanned"):
        failed = state.failed_downloads() if source.download is not None else 0
        changed = state.get("fingerprint") not in (None, fingerprint)
        if failed:
            # Layout B: fetch what failed last time (the downloader skips what it has), then
            # read and split again, since the set of usable records has changed.
            log.info("%d downloads failed last time: trying them again", failed)
        elif changed:
            log.info(
                "%s changed since it was last read (files added, replaced or removed): reading it again; "
                "only new and changed images are cropped",
                cfg.source,
            )
        if failed or changed:
            _remember_cropped(state)
    if not state.get("scanned"):
        _scan(state, cfg, source)
    state.put("fingerprint", fingerprint)
    if state.get("split") is None:
        _split(state, cfg)
    if state.get("rescanned"):
        _keep_unchanged(state, cfg)
    _crop_all(state, cfg, crop_cfg, source)
    return _finish(state, cfg, crop_cfg, source, settings)


def _upgrade_settings(saved: dict[str, Any], source: Source, out: Path) -> dict[str, Any] | None:
    """Settings saved by an earlier maeum (the options as typed, the source relative to the working
    directory) as they are saved now, so its folders resume; None if they do not read as options."""
    try:
        as_typed = {k: tuple(saved[k]) for k in ("tiebreak", "fractions")}
        old = PrepareConfig(**{**saved, **as_typed, "source": Path(saved["source"]), "out": out})
        return old.settings(source, _crop_config(old, source))
    except (TypeError, KeyError, ValueError, DataError):
        return None


def _refuse_out_inside_source(cfg: PrepareConfig) -> None:
    """An --out inside the source folder would be read as part of the dataset on the next run
    (its crops as images, its folders as classes)."""
    source, out = cfg.source.resolve(), cfg.out.resolve()
    if source.is_dir() and (out == source or source in out.parents):
        raise DataError(
            f"--out {cfg.out} is inside the source folder {cfg.source}, whose every file and folder is read "
            f"as data; choose an --out outside it, e.g. {source.parent / (source.name + '-prepared')}"
        )


def _check_options(cfg: PrepareConfig, source: Source) -> None:
    """Refuse options this kind of source would ignore, rather than record them as applied."""
    if cfg.policy not in source.policies:
        raise DataError(
            f"--policy {cfg.policy} does not apply to {source.kind} data; "
            f"its policies: {', '.join(source.policies)} (docs/datasets.md, Label policies)"
        )
    if source.splits_given and not cfg.resplit and tuple(cfg.fractions) != DEFAULT_FRACTIONS:
        raise DataError(f"{source.kind} data keeps its own splits: --split needs --resplit")


def _discard_unfinished(out: Path, out_existed: bool) -> None:
    """After a failure: drop the work state if nothing was prepared yet (and ``out`` if this run made it empty).

    Crops noted before the source was read again (``previous``) count as prepared: the state that
    says which to keep stays, for the corrected run.
    """
    work = out / WORK_DIR
    db = work / "state.sqlite"
    if db.exists():
        try:
            with sqlite3.connect(db) as con:
                if con.execute("SELECT (SELECT COUNT(*) FROM results) + (SELECT COUNT(*) FROM previous)").fetchone()[0]:
                    return
        except sqlite3.Error:
            return
    shutil.rmtree(work, ignore_errors=True)
    if not out_existed:
        with contextlib.suppress(OSError):
            out.rmdir()  # only when empty


def _source_fingerprint(path: Path) -> str:
    """A digest of the names, sizes and modification times of the source's files.

    Cheap (no file is read), and it changes when a zip is added, replaced or finished
    downloading, so a rerun after downloading more parts reads them.
    """
    h = hashlib.sha1()
    path = Path(path)
    if path.is_file():
        st = path.stat()
        h.update(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode(errors="surrogateescape"))
        return h.hexdigest()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for filename in sorted(filenames):
            file = Path(dirpath) / filename
            try:
                st = file.stat()
            except OSError:
                continue
            rel = file.relative_to(path).as_posix()
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode(errors="surrogateescape"))
    return h.hexdigest()


def _crop_config(cfg: PrepareConfig, source: Source) -> CropConfig:
    try:
        return CropConfig(
            mode=cfg.crop or source.crop,
            size=cfg.size if cfg.size is not None else source.size,
            color=cfg.color or source.color,
            margin=cfg.margin,
            detector=cfg.detector,
            aligner=cfg.aligner,
            reduced_decode=cfg.reduced_decode,
        )
    except ValueError as e:
        raise DataError(str(e)) from None


def _finished_settings(out: Path) -> dict[str, Any] | None:
    """The settings in ``out``'s summary.json (a finished run's), or None where there is none to read."""
    try:
        saved = json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))["settings"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return saved if isinstance(saved, dict) else None


def _settings_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {old.get(k)!r} -> {v!r}" for k, v in new.items() if old.get(k) != v)


def _other_settings(out: Path, old: dict[str, Any], new: dict[str, Any]) -> DataError:
    return DataError(
        f"{out} holds a preparation with other settings ({_settings_diff(old, new)}); "
        "use another --out folder, or delete this one to start over"
    )


class _State:
    """The work database: records, splits, crops and errors, committed stage by stage."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS images(name TEXT PRIMARY KEY, location TEXT);
            CREATE TABLE IF NOT EXISTS masks(stem TEXT PRIMARY KEY, location TEXT);
            CREATE TABLE IF NOT EXISTS records(
                seq INTEGER PRIMARY KEY, name TEXT UNIQUE, person TEXT, label TEXT, key TEXT,
                split TEXT, status TEXT, data TEXT);
            CREATE TABLE IF NOT EXISTS errors(
                id INTEGER PRIMARY KEY AUTOINCREMENT, stage INTEGER, ord INTEGER, item TEXT, kind TEXT, reason TEXT);
            CREATE INDEX IF NOT EXISTS errors_by_record ON errors(stage, ord);
            CREATE TABLE IF NOT EXISTS results(seq INTEGER PRIMARY KEY, row TEXT);
            CREATE TABLE IF NOT EXISTS sizes(seq INTEGER PRIMARY KEY, bytes INTEGER);
            -- What each cropped record was cut from (_input_key), to tell whether it changed.
            CREATE TABLE IF NOT EXISTS inputs(seq INTEGER PRIMARY KEY, key TEXT);
            -- While the source is read again: each cropped record's inputs and outcome, by name.
            CREATE TABLE IF NOT EXISTS previous(
                name TEXT PRIMARY KEY, data TEXT, key TEXT, row TEXT, bytes INTEGER, errors TEXT);
            """
        )

    def check_settings(
        self, settings: dict[str, Any], out: Path, upgrade: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> None:
        """Save ``settings``, or refuse other ones than those saved, unless nothing was prepared with those.

        ``upgrade`` reads settings saved before they were saved as applied (no ``settings_version``).
        """
        saved = self.get("settings")
        text = json.dumps(settings, sort_keys=True, ensure_ascii=False)
        if saved is None:  # a new folder, or one whose .work was deleted after its run
            finished = _finished_settings(out)
            if finished is not None and settings not in (finished, upgrade(finished)):
                raise _other_settings(out, finished, settings)
        if saved is not None and self.get("settings_version") is None:
            upgraded = upgrade(json.loads(saved))
            if upgraded is not None:
                saved = json.dumps(upgraded, sort_keys=True, ensure_ascii=False)
        if saved == text:
            self.put("settings", text)
            self.put("settings_version", _SETTINGS_VERSION)
            return
        if saved is not None:
            prepared = self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0] or (out / MANIFEST_NAME).exists()
            old = json.loads(saved)
            if prepared:
                raise _other_settings(out, old, settings)
            log.info("%s: an earlier run with other settings prepared nothing (%s); starting over", out,
                     _settings_diff(old, settings))  # fmt: skip
            self.db.execute("BEGIN")
            for table in ("meta", "images", "masks", "records", "errors", "results", "sizes", "inputs", "previous"):
                self.db.execute(f"DELETE FROM {table}")
            self.db.execute("COMMIT")
            for derived in _DERIVED:  # crops of a killed run, never committed
                shutil.rmtree(out / derived, ignore_errors=True)
        self.put("settings", text)
        self.put("settings_version", _SETTINGS_VERSION)

    def __enter__(self) -> _State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def failed_downloads(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM errors WHERE kind = 'download_failed'").fetchone()[0]

    def error(self, stage: int, ord_: int, item: str, reason: str, kind: str | None = None) -> None:
        if kind is None:
            kind = next((k for prefix, k in _KINDS if reason.startswith(prefix)), "bad_record")
        self.db.execute(
            "INSERT INTO errors(stage, ord, item, kind, reason) VALUES (?, ?, ?, ?, ?)",
            (stage, ord_, item, kind, reason),
        )


def _scan(state: _State, cfg: PrepareConfig, source: Source) -> None:
    db = state.db
    log.info("scanning %s", cfg.source)
    counter = iter(range(1 << 62))
    reported: set[tuple[str, str]] = set()

    def on_error(item: str, reason: str) -> None:
        if reason.startswith("corrupt archive"):  # the walks of images, masks and labels meet the same zip
            if (item, reason) in reported:
                return
            reported.add((item, reason))
        state.error(1, next(counter), item, reason)

    db.execute("BEGIN")
    db.execute("DELETE FROM errors")  # a record cropped before and unchanged gets its crop's back (_keep_unchanged)
    for table in ("images", "masks", "records"):
        db.execute(f"DELETE FROM {table}")
    if source.download is not None:
        db.execute("COMMIT")  # a download may take hours and resumes by itself
        source.download(on_error)
        db.execute("BEGIN")
    for name, location in source.images(on_error):
        if db.execute("INSERT OR IGNORE INTO images VALUES (?, ?)", (name, location)).rowcount == 0:
            on_error(location, "duplicate image name: another file with this name was found first")
    for stem, location in source.masks(on_error):
        db.execute("INSERT OR IGNORE INTO masks VALUES (?, ?)", (stem, location))
    stats = AgreementStats(source.labels, source.policies if source.kind == "aihub" else [])
    progress = Progress(None, "records")
    for seq, record in enumerate(source.records(on_error)):
        progress.update(seq + 1, seq + 1)
        label = resolve(record, cfg.policy, source.labels, cfg.tiebreak)
        status = "ok" if label is not None else "no_label"
        row = (seq, record.name, record.person, label, seeded_key(cfg.seed, record.name), record.split, status)
        if (
            db.execute(
                "INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*row, record.to_json())
            ).rowcount
            == 0
        ):
            state.error(
                1,
                next(counter),
                record.where or record.name,
                f"a second record for {record.name}; kept the first",
                "duplicate_record",
            )
            continue
        stats.add(record)  # duplicates are left out of the counts, as they are of the data
        if record.label is not None and label is None:
            on_error(
                record.where or record.name,
                f"malformed record: label {record.label!r} is not one of {list(source.labels)}",
            )
    progress.close()
    for (data,) in db.execute(
        "SELECT data FROM records WHERE name NOT IN (SELECT name FROM images) "
        "AND name NOT IN (SELECT item FROM errors WHERE kind = 'download_failed') ORDER BY seq"
    ).fetchall():
        record = Record.from_json(data)
        state.error(
            1,
            next(counter),
            record.where or record.name,
            f"missing image: {record.name} is not in the source",
            "missing_image",
        )
    db.execute("UPDATE records SET status = 'no_image' WHERE name NOT IN (SELECT name FROM images)")
    for (location,) in db.execute(
        "SELECT location FROM images WHERE name NOT IN (SELECT name FROM records) ORDER BY name"
    ).fetchall():
        state.error(1, next(counter), location, "image without a record: no label file mentions it", "no_record")
    state.put("stats", json.dumps(stats.summary(), ensure_ascii=False))
    state.put("scanned", "1")
    for table in ("results", "sizes", "inputs"):
        db.execute(f"DELETE FROM {table}")
    db.execute("DELETE FROM meta WHERE key = 'split'")
    db.execute("COMMIT")


def _split(state: _State, cfg: PrepareConfig) -> None:
    db = state.db
    db.execute("BEGIN")
    db.execute("UPDATE records SET status = 'ok' WHERE status = 'capped'")
    if cfg.cap:
        for (label,) in db.execute("SELECT DISTINCT label FROM records WHERE status = 'ok'").fetchall():
            db.execute(
                "UPDATE records SET status = 'capped' WHERE seq IN (SELECT seq FROM records WHERE status = 'ok' "
                "AND label = ? ORDER BY key LIMIT -1 OFFSET ?)",
                (label, cfg.cap),
            )
    given = db.execute("SELECT COUNT(*) FROM records WHERE status = 'ok' AND split IS NOT NULL").fetchone()[0]
    total = db.execute("SELECT COUNT(*) FROM records WHERE status = 'ok'").fetchone()[0]
    if total == 0:
        db.execute("ROLLBACK")
        _no_usable_record(state, cfg)
    if given == total and not cfg.resplit and tuple(cfg.fractions) != DEFAULT_FRACTIONS:
        log.warning("every image comes with its split (train/val/test folders): --split is not used; add --resplit")
    if cfg.resplit or given < total:
        person_counts: dict[str, Counter] = {}
        for person, label, n in db.execute(
            "SELECT person, label, COUNT(*) FROM records WHERE status = 'ok' GROUP BY person, label"
        ):
            person_counts.setdefault(person, Counter())[label] = n
        assignment = assign_splits(person_counts, cfg.fractions, cfg.seed)
        db.execute("CREATE TEMP TABLE IF NOT EXISTS person_split(person TEXT PRIMARY KEY, split TEXT)")
        db.execute("DELETE FROM person_split")
        db.executemany("INSERT INTO person_split VALUES (?, ?)", assignment.items())
        db.execute(
            "UPDATE records SET split = (SELECT split FROM person_split WHERE person_split.person = records.person) "
            "WHERE status = 'ok'"
        )
        log.info("split %d persons into %s", len(assignment), "/".join(SPLITS))
    per_split = dict(db.execute("SELECT split, COUNT(*) FROM records WHERE status = 'ok' GROUP BY split"))
    assigned = cfg.resplit or given < total
    empty = [s for s, f in zip(SPLITS, cfg.fractions, strict=True) if (f > 0 or not assigned) and not per_split.get(s)]
    if empty:
        what = f"the {' and '.join(empty)} split{' is' if len(empty) == 1 else 's are'} empty"
        if assigned:
            persons = db.execute("SELECT COUNT(DISTINCT person) FROM records WHERE status = 'ok'").fetchone()[0]
            fractions = ",".join(f"{f:g}" for f in cfg.fractions)
            log.warning("%s: %d persons are too few to split %s by person", what, persons, fractions)
        else:
            log.warning("%s: the source puts no image in %s", what, "it" if len(empty) == 1 else "them")
    state.put("split", "1")
    db.execute("COMMIT")


def _remember_cropped(state: _State) -> None:
    """Before the source is read again: note by name what each cropped record was cut from and what
    it gave (manifest row, crop size, crop-stage errors), for ``_keep_unchanged`` to keep.

    Committed with the order to read the source again: a run killed while reading keeps the notes.
    """
    db = state.db
    db.execute("BEGIN")
    cropped = db.execute(
        "SELECT r.seq, r.name, r.data, i.key, res.row, s.bytes FROM records r JOIN inputs i ON i.seq = r.seq "
        "LEFT JOIN results res ON res.seq = r.seq LEFT JOIN sizes s ON s.seq = r.seq WHERE r.status = 'ok'"
    )
    for seq, name, data, key, row, size in cropped:
        errors = db.execute(
            "SELECT item, kind, reason FROM errors WHERE stage = 2 AND ord = ? ORDER BY id", (seq,)
        ).fetchall()
        if row is None and not any(kind in _LASTING_LOSSES for _, kind, _ in errors):
            continue  # unreadable last time: tried again in any case
        db.execute(
            "INSERT OR REPLACE INTO previous VALUES (?, ?, ?, ?, ?, ?)",
            (name, _crop_inputs(data), key, row, size, json.dumps(errors, ensure_ascii=False)),
        )
    state.put("scanned", "")
    state.put("rescanned", "1")
    db.execute("COMMIT")


def _keep_unchanged(state: _State, cfg: PrepareConfig) -> None:
    """After the source was read again: a record with the same annotations, image and mask as before
    (``_input_key``) gets back its crop, moved if its person changed split, and its crop-stage errors;
    every other file under ``images/`` and ``masks/`` is deleted. The crop stage cuts the rest."""
    db = state.db
    db.execute("BEGIN")
    db.execute("CREATE TEMP TABLE IF NOT EXISTS kept_paths(path TEXT PRIMARY KEY)")
    db.execute("DELETE FROM kept_paths")
    kept = moved = 0
    matches = db.execute(
        "SELECT r.seq, r.name, r.data, r.split, i.location, p.data, p.key, p.row, p.bytes, p.errors "
        "FROM records r JOIN previous p ON p.name = r.name JOIN images i ON i.name = r.name "
        "WHERE r.status = 'ok' ORDER BY r.seq"
    )
    for seq, name, data, split, location, old_data, old_key, old_row, size, errors in matches:
        mask = db.execute("SELECT location FROM masks WHERE stem = ?", (name.rsplit(".", 1)[0],)).fetchone()
        key = _input_key(location, mask[0] if mask else None)
        if key is None or key != old_key or _crop_inputs(data) != old_data:
            continue
        if old_row is not None:
            before = json.loads(old_row)
            row = _move_crop(cfg.out, before, split, size)
            if row is None:
                continue  # its crop was deleted or overwritten since: cut again
            moved += row["split"] != before["split"]
            db.execute("INSERT INTO results VALUES (?, ?)", (seq, json.dumps(row, ensure_ascii=False)))
            db.execute("INSERT INTO sizes VALUES (?, ?)", (seq, size))
            for path in (row["path"], row.get("mask_path")):
                if path:
                    db.execute("INSERT OR IGNORE INTO kept_paths VALUES (?)", (path,))
        db.execute("INSERT INTO inputs VALUES (?, ?)", (seq, key))
        for item, kind, reason in json.loads(errors):
            state.error(2, seq, item, reason, kind)
        kept += 1
    ok = db.execute("SELECT COUNT(*) FROM records WHERE status = 'ok'").fetchone()[0]
    known = db.execute(
        "SELECT COUNT(*) FROM records r JOIN previous p ON p.name = r.name WHERE r.status = 'ok'"
    ).fetchone()[0]
    gone = "FROM previous WHERE name NOT IN (SELECT name FROM records WHERE status = 'ok')"
    removed = db.execute(f"SELECT COUNT(*) {gone}").fetchone()[0]
    examples = [n for (n,) in db.execute(f"SELECT name {gone} ORDER BY name LIMIT 5")]
    _delete_unkept(db, cfg.out)
    db.execute("DELETE FROM previous")
    db.execute("DELETE FROM meta WHERE key = 'rescanned'")
    db.execute("COMMIT")
    log.info(
        "%d new, %d changed, %d removed, %d kept%s",
        ok - known, known - kept, removed, kept, f" ({moved} moved to another split)" if moved else "",
    )  # fmt: skip
    if removed:
        more = f" and {removed - len(examples)} more" if removed > len(examples) else ""
        log.info("removed, as gone from the source or left out now: %s%s", ", ".join(examples), more)


def _move_crop(out: Path, row: dict[str, Any], split: str, size: int | None) -> dict[str, Any] | None:
    """``row`` with its crop (and mask) under ``split``, moved there if need be; None if the crop is gone."""
    paths = {k: row[k] for k in ("path", "mask_path") if row.get(k)}
    moved = {k: "/".join([p.split("/")[0], split, *p.split("/")[2:]]) for k, p in paths.items()}
    for k, rel in paths.items():
        src, dst = out / rel, out / moved[k]
        try:
            if src != dst and src.is_file():  # else moved by a run killed before it could commit
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
            if not dst.is_file() or (k == "path" and size is not None and dst.stat().st_size != size):
                return None
        except OSError:
            return None
    return {**row, "split": split, **moved}


def _delete_unkept(db: sqlite3.Connection, out: Path) -> None:
    """Delete every file under ``images/`` and ``masks/`` that no kept crop names (crops of changed
    and removed records, files a killed run never committed), then the folders left empty."""
    for derived in _DERIVED:
        for dirpath, _, filenames in os.walk(out / derived, topdown=False):
            for filename in filenames:
                path = Path(dirpath) / filename
                rel = path.relative_to(out).as_posix()
                if db.execute("SELECT 1 FROM kept_paths WHERE path = ?", (rel,)).fetchone() is None:
                    path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                Path(dirpath).rmdir()  # only when empty


def _input_key(location: str, mask_location: str | None) -> str | None:
    """What a record is cropped from: its image and mask and their ``archive.stamp``; None if unreadable."""
    try:
        stamps = [archive.stamp(location), archive.stamp(mask_location) if mask_location else None]
    except (*archive.READ_ERRORS, KeyError, ValueError):
        return None
    return json.dumps([location, stamps[0], mask_location, stamps[1]], ensure_ascii=False)


def _crop_inputs(data: str) -> str:
    """A record's JSON less where it was read and downloaded from: what its crop and manifest row depend on."""
    record = json.loads(data)
    for key in ("where", "url"):
        record.pop(key, None)
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def _no_usable_record(state: _State, cfg: PrepareConfig) -> None:
    """Raise DataError saying why no record is usable; the reasons go to ``errors.jsonl`` as well."""
    statuses = dict(state.db.execute("SELECT status, COUNT(*) FROM records GROUP BY status").fetchall())
    errors = _write_errors(state, cfg.out)
    if not statuses:
        why = "no record was read"
    else:
        parts = [f"{statuses.get('no_image', 0)} without their image", f"{statuses.get('no_label', 0)} without a label"]
        why = f"{sum(statuses.values())} records read: " + ", ".join(parts) + f" under --policy {cfg.policy}"
    if errors:
        why += "; errors: " + ", ".join(f"{kind} {n}" for kind, n in sorted(errors.items()))
        why += f" (each in {cfg.out / ERRORS_NAME})"
    raise DataError(f"{cfg.source}: no usable record ({why}); nothing to prepare")


def _crop_all(state: _State, cfg: PrepareConfig, crop_cfg: CropConfig, source: Source) -> None:
    db = state.db
    _redo_lost_crops(db, cfg.out)
    # To crop: every usable record without a crop or a crop-stage loss (a failed write is tried again).
    db.execute("DROP TABLE IF EXISTS temp.todo")
    db.execute("CREATE TEMP TABLE todo(seq INTEGER PRIMARY KEY)")
    db.execute(
        "INSERT INTO todo SELECT seq FROM records WHERE status = 'ok' AND seq NOT IN (SELECT seq FROM results) "
        f"AND seq NOT IN (SELECT ord FROM errors WHERE stage = 2 AND kind IN ({','.join('?' * len(_DONE_LOSSES))}))",
        _DONE_LOSSES,
    )
    remaining = db.execute("SELECT COUNT(*) FROM todo").fetchone()[0]
    total = db.execute("SELECT COUNT(*) FROM records WHERE status = 'ok'").fetchone()[0]
    if not remaining:
        return
    log.info(
        "cropping %d of %d images (%d shards, %s engine, %d workers)",
        remaining,
        total,
        -(-remaining // cfg.shard_size),
        cfg.engine,
        cfg.workers,
    )

    def payloads() -> Iterator[dict[str, Any]]:
        shard, last = 0, -1
        while True:
            items = db.execute(
                "SELECT r.seq, r.name, r.label, r.split, r.data, i.location FROM todo t JOIN records r "
                "ON r.seq = t.seq JOIN images i ON i.name = r.name WHERE t.seq > ? ORDER BY t.seq LIMIT ?",
                (last, cfg.shard_size),
            ).fetchall()
            if not items:
                return
            last = items[-1][0]
            jobs = []
            for seq, name, label, split, data, location in items:
                stem = name.rsplit(".", 1)[0]
                mask = db.execute("SELECT location FROM masks WHERE stem = ?", (stem,)).fetchone()
                jobs.append((seq, name, label, split, data, location, mask[0] if mask else None))
            yield {
                "shard": shard,
                "items": jobs,
                "out": str(cfg.out),
                "crop": asdict(crop_cfg),
                "labels": list(source.labels),
                "format": cfg.image_format,
            }
            shard += 1

    progress = Progress(remaining, "img")
    finished = 0
    jobs = run_jobs(_crop_shard, payloads(), cfg.engine, cfg.workers, cfg.ray_address)
    try:
        for result in jobs:
            db.execute("BEGIN")
            seqs = [r["seq"] for r in result["results"]]
            db.execute(f"DELETE FROM errors WHERE stage = 2 AND ord IN ({','.join('?' * len(seqs))})", seqs)
            for r in result["results"]:
                for note in r["warnings"]:
                    state.error(2, r["seq"], r["source"], note)
                if r["input"] is None or (r["error"] and r["error"][0] == "write_failed"):
                    db.execute("DELETE FROM inputs WHERE seq = ?", (r["seq"],))
                else:
                    db.execute("INSERT OR REPLACE INTO inputs VALUES (?, ?)", (r["seq"], r["input"]))
                if r["error"]:
                    kind, reason = r["error"]
                    state.error(2, r["seq"], r["source"], reason, kind)
                    db.execute("DELETE FROM results WHERE seq = ?", (r["seq"],))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO results VALUES (?, ?)",
                        (r["seq"], json.dumps(r["row"], ensure_ascii=False)),
                    )
                    db.execute("INSERT OR REPLACE INTO sizes VALUES (?, ?)", (r["seq"], r["bytes"]))
            db.execute("COMMIT")
            finished += len(result["results"])
            progress.update(finished, finished)
    finally:
        jobs.close()  # ends the workers now, on Ctrl-C too
        progress.close()


def _redo_lost_crops(db: sqlite3.Connection, out: Path) -> None:
    """Forget the crops (or masks) that are missing, or of another size than written, for the crop stage to redo.

    A cheap check (one ``stat`` per crop, nothing is read), so a rerun repairs crops deleted or
    overwritten since; a crop damaged in place at the same size is not noticed.
    """
    lost: list[int] = []
    for seq, row, size in db.execute(
        "SELECT r.seq, r.row, s.bytes FROM results r LEFT JOIN sizes s ON s.seq = r.seq ORDER BY r.seq"
    ):
        data = json.loads(row)
        try:
            ok = (out / data["path"]).stat().st_size == size if size is not None else (out / data["path"]).is_file()
            ok = ok and (not data.get("mask_path") or (out / data["mask_path"]).is_file())
        except OSError:
            ok = False
        if not ok:
            lost.append(seq)
    if not lost:
        return
    log.warning("%d crops are missing or changed since they were written: cropping them again", len(lost))
    db.execute("BEGIN")
    for table in ("results", "sizes", "inputs"):
        db.executemany(f"DELETE FROM {table} WHERE seq = ?", [(seq,) for seq in lost])
    db.execute("COMMIT")


# Worker side: runs in worker processes (or Ray tasks); keeps its detector between shards.
_worker_cache: dict[str, Any] = {}


def _crop_shard(payload: dict[str, Any]) -> dict[str, Any]:
    cfg = CropConfig(**payload["crop"])
    detector, template = _worker_models(cfg) if cfg.mode == "detect" else (None, None)
    out = Path(payload["out"])
    results = [_crop_one(item, cfg, detector, template, out, payload) for item in payload["items"]]
    return {"shard": payload["shard"], "results": results}


def _worker_models(cfg: CropConfig) -> tuple[Any, np.ndarray]:
    key = cfg.detector
    if key not in _worker_cache:
        from maeum.classify import EmotionClassifier
        from maeum.detect import create_detector

        info = EmotionClassifier(threads=1).info  # crops framed like maeum's own models' inputs
        _worker_cache[key] = (create_detector(cfg.detector), info.template / info.input.size)
    return _worker_cache[key]


def _crop_one(item: tuple, cfg: CropConfig, detector: Any, template: Any, out: Path, payload: dict) -> dict[str, Any]:
    seq, name, label, split, data, location, mask_location = item
    record = Record.from_json(data)
    result: dict[str, Any] = {"seq": seq, "source": location, "warnings": [], "error": None, "row": None}
    result["input"] = _input_key(location, mask_location)  # before reading: a file replaced meanwhile reads as changed
    try:
        raw = archive.read_location(location)
        mask = _load_mask(mask_location, result["warnings"]) if mask_location else None
        crop = crop_face(raw, [a.box for a in record.annotations], cfg, detector, template, mask)
    except ImageError as e:
        text = str(e)
        kind = "no_box" if text.startswith("no usable face box") else "no_face" if "face" in text else "corrupt_image"
        result["error"] = (kind, str(e))
        return result
    except (*archive.READ_ERRORS, KeyError, ValueError) as e:  # a damaged zip member, a file gone or unreadable
        result["error"] = archive.read_error(location, e)
        return result
    result["warnings"] = [*result["warnings"], *crop.warnings]
    digest = hashlib.sha1(name.encode()).hexdigest()[:16]
    rel = f"images/{split}/{label}/{digest}.{payload['format']}"
    mask_rel = f"masks/{split}/{label}/{digest}.png" if crop.mask is not None else None
    try:
        result["bytes"] = _write_image(out / rel, crop.image, payload["format"])
        if mask_rel:
            _write_image(out / mask_rel, crop.mask, "png")
    except OSError as e:
        result["error"] = ("write_failed", f"cannot write {rel}: {e}")
        return result
    result["row"] = _manifest_row(record, name, rel, location, label, split, crop, payload["labels"], mask_rel)
    return result


def _manifest_row(
    record: Record, name: str, rel: str, location: str, label: str, split: str, crop: Crop, labels: list[str], mask_rel
) -> dict[str, Any]:
    return {
        "name": name,
        "path": rel,
        "source": location,
        "split": split,
        "label": label,
        "votes": votes_per_class(record, labels),
        "annotator_emotions": [a.emotion for a in record.annotations],
        "boxes": [list(a.box) if a.box is not None else None for a in record.annotations],
        "crop_box": [round(v, 2) for v in crop.crop_box],
        "person": record.person,
        "gender": record.gender,
        "age": record.age,
        "background": record.background,
        "uploader_emotion": record.uploader_emotion,
        "width": crop.width,
        "height": crop.height,
        "mask_path": mask_rel,
    }


def _load_mask(location: str, warnings: list[str]) -> np.ndarray | None:
    try:
        with np.load(io.BytesIO(archive.read_location(location)), allow_pickle=False) as npz:
            arrays = [npz[k] for k in sorted(npz.files) if npz[k].ndim == 2]
    except (*archive.READ_ERRORS, ValueError, KeyError) as e:
        warnings.append(f"unreadable segmentation mask {location}: {e}")
        return None
    if not arrays:
        warnings.append(f"segmentation mask {location} holds no 2-D array")
        return None
    return arrays[0]


def _write_image(path: Path, image: np.ndarray, fmt: str) -> int:
    """Write atomically: a full disk leaves the old file (or none), never half a file. Returns its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        im = Image.fromarray(image)
        if fmt == "jpg":
            im.save(tmp, format="JPEG", quality=95)
        else:
            im.save(tmp, format="PNG")
        size = tmp.stat().st_size
        os.replace(tmp, path)
        return size
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_errors(state: _State, out: Path) -> Counter:
    """Write ``errors.jsonl`` from the work state; return the count per kind."""
    errors: Counter = Counter()
    lines = []
    for stage, item, kind, reason in state.db.execute(
        "SELECT stage, item, kind, reason FROM errors ORDER BY stage, ord, id"
    ):
        errors[kind] += 1
        record = {"stage": ("scan", "crop")[stage - 1], "file": item, "kind": kind, "reason": reason}
        lines.append(json.dumps(record, ensure_ascii=False))
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / ERRORS_NAME, "".join(line + "\n" for line in lines))
    return errors


def _finish(
    state: _State, cfg: PrepareConfig, crop_cfg: CropConfig, source: Source, settings: dict[str, Any]
) -> dict[str, Any]:
    db = state.db
    meta = {
        "dataset": source.kind,
        "labels": list(source.labels),
        "policy": cfg.policy,
        "crop": crop_cfg.mode,
        "size": crop_cfg.size,
        "color": crop_cfg.color,
        "margin": crop_cfg.margin if crop_cfg.mode == "box" else None,
        "image_format": cfg.image_format,
        "seed": cfg.seed,
        "fractions": list(cfg.fractions),
        "cap": cfg.cap,
        **source.notes,
    }
    writer = ManifestWriter(cfg.out / MANIFEST_NAME, meta)
    splits: dict[str, Counter] = {s: Counter() for s in SPLITS}
    try:
        for (row,) in db.execute("SELECT row FROM results ORDER BY seq"):
            data = json.loads(row)
            writer.write(data)
            splits.setdefault(data["split"], Counter())[data["label"]] += 1
        writer.close()
    except BaseException:
        writer.abort()
        raise
    errors = _write_errors(state, cfg.out)
    statuses = dict(db.execute("SELECT status, COUNT(*) FROM records GROUP BY status").fetchall())
    crop_losses = dict(
        db.execute(
            f"SELECT kind, COUNT(*) FROM errors WHERE stage = 2 AND kind IN ({','.join('?' * len(_CROP_LOSSES))}) "
            "GROUP BY kind",
            _CROP_LOSSES,
        ).fetchall()
    )
    summary: dict[str, Any] = {
        "dataset": source.kind,
        "labels": list(source.labels),
        "settings": settings,
        "records": sum(statuses.values()),
        "images": db.execute("SELECT COUNT(*) FROM images").fetchone()[0],
        # Every record read is prepared or left out for one of these reasons (records = prepared + left out).
        "left_out": {
            "no_label": statuses.get("no_label", 0),
            "no_image": statuses.get("no_image", 0),
            "capped": statuses.get("capped", 0),
            **{kind: crop_losses[kind] for kind in _CROP_LOSSES if crop_losses.get(kind)},
        },
        "prepared": sum(sum(c.values()) for c in splits.values()),
        "splits": {s: {label: c[label] for label in source.labels if c[label]} for s, c in splits.items()},
        "errors": dict(sorted(errors.items())),
        "policy": cfg.policy,
    }
    if source.kind == "aihub":
        summary.update(json.loads(state.get("stats") or "{}"))
    _write_text(cfg.out / SUMMARY_NAME, json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    retry = errors.get("write_failed", 0)
    damaged = errors.get("corrupt_archive", 0)
    log.info(
        "prepared %d images (%s) from %d records; %d errors in %s",
        summary["prepared"],
        ", ".join(f"{s} {sum(c.values())}" for s, c in splits.items()),
        summary["records"],
        sum(errors.values()),
        cfg.out / ERRORS_NAME,
    )
    if retry:
        log.warning("%d crops could not be written (disk full?); free space and run again to finish them", retry)
    if damaged:
        log.warning(
            "%d damaged zip archive(s) or members could not be read (see %s); download them again and run the "
            "same command: it reads the source again when its files change",
            damaged, cfg.out / ERRORS_NAME,
        )  # fmt: skip
    return summary


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
