"""AI Hub layout B: a TSV of image URLs and annotations, and a downloader for the images.

``read_tsv`` reads the TSV into ``Record`` (with ``url`` set); ``download`` fetches the images
into one folder, concurrently, retrying what may succeed later. A re-run skips every file already
there, so it fetches only what failed before; ``download_failures.tsv`` in the folder lists those.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import http.client
import io
import json
import logging
import math
import os
import random
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from maeum.data.archive import text_encoding
from maeum.data.records import AIHUB7, Annotation, Box, DataError, ErrorSink, Record, class_key, label_key, nfc
from maeum.progress import Progress

log = logging.getLogger(__name__)

ANNOTATORS: tuple[str, ...] = ("A", "B", "C")
COLUMNS: tuple[str, ...] = (
    "name",
    "url",
    *(f"Task{a}_emotion" for a in ANNOTATORS),
    *(f"Task{a}_background" for a in ANNOTATORS),
    *(f"Task{a}_result" for a in ANNOTATORS),
)
FAILURES_NAME = "download_failures.tsv"

_GENDERS = frozenset({"여", "남"})
_BOX_KEYS = ("minX", "minY", "maxX", "maxY")
_CHUNK = 1 << 16
_TEMP_PREFIX, _TEMP_SUFFIX = ".maeum-", ".part"
_STALE_TEMP_S = 3600.0  # temp files older than this are left over from a killed run
_MAX_RETRY_AFTER_S = 60.0  # a 429 asking to wait longer gives up for this run
_MAX_BACKOFF_S = 60.0
_USER_AGENT = "maeum-download/1"


# --------------------------------------------------------------------------- TSV


def read_tsv(path: Path, on_error: ErrorSink) -> Iterator[Record]:
    """Records from an AI Hub layout B TSV (UTF-8, UTF-8 with BOM or CP949), one per good row.

    Bad rows (wrong column count, no name or URL, a name seen before) are reported to
    ``on_error`` as ``"<path>:<line>"`` and skipped; an unknown emotion or unreadable face region
    is reported and kept as None (an empty region cell is None without a report). Reasons start
    like layout A's: "malformed record", "unknown emotion", "invalid box". Raises DataError for an
    unreadable file or missing columns.
    """
    path = Path(path)
    encoding = _detect_encoding(path)
    with path.open(encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty file, expected a header row with {', '.join(COLUMNS)}")
        columns = {nfc(h).strip().lower(): i for i, h in enumerate(header)}
        missing = [c for c in COLUMNS if c.lower() not in columns]
        if missing:
            raise DataError(f"{path}: missing columns {', '.join(missing)} (header: {', '.join(header)})")
        index = {c: columns[c.lower()] for c in COLUMNS}
        known = set(index.values())
        extras = [(i, nfc(h).strip()) for i, h in enumerate(header) if i not in known]
        seen: set[str] = set()
        last_line = reader.line_num
        for row in _rows(reader, path):
            lineno, last_line = last_line + 1, reader.line_num  # a quoted field may span lines
            if not row:
                continue  # blank line
            where = f"{path}:{lineno}"
            if len(row) != len(header):
                on_error(where, f"malformed record: {len(row)} columns, expected {len(header)}; row skipped")
                continue
            name, url = nfc(row[index["name"]]).strip(), row[index["url"]].strip()
            if not name or not url:
                on_error(where, f"malformed record: no {'name' if not name else 'url'}; row skipped")
                continue
            if name in seen:
                on_error(where, f"malformed record: duplicate name {name!r}; row skipped")
                continue
            seen.add(name)
            yield _record(row, index, extras, name, url, where, on_error)


def _rows(reader: Iterator[list[str]], path: Path) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as e:  # a field over csv's size limit, a NUL byte
        raise DataError(f"{path}: unreadable TSV: {e}") from None


def _record(
    row: list[str],
    index: dict[str, int],
    extras: list[tuple[int, str]],
    name: str,
    url: str,
    where: str,
    on_error: ErrorSink,
) -> Record:
    annotations = []
    for a in ANNOTATORS:
        text = nfc(row[index[f"Task{a}_emotion"]]).strip()
        emotion, why = class_key(text, AIHUB7)
        if why is not None:
            on_error(where, f"{why} from annotator {a}")
        box_text = row[index[f"Task{a}_result"]].strip()
        box = None
        if box_text:  # an empty cell is no box, as a missing box is in layout A
            try:
                box = parse_box(box_text)
            except ValueError as e:
                on_error(where, f"invalid box from annotator {a}: {box_text!r} ({e})")
        background = nfc(row[index[f"Task{a}_background"]]).strip() or None
        annotations.append(Annotation(emotion, box, background))
    person, gender, age, uploader_emotion, background = _parse_name(name)
    if uploader_emotion not in AIHUB7:  # a file name's word maeum knows that is no AI Hub class
        uploader_emotion = None
    return Record(
        name=name,
        person=person,
        annotations=tuple(annotations),
        uploader_emotion=uploader_emotion,
        gender=gender,
        age=age,
        background=background,
        url=url,
        extra={key: row[i] for i, key in extras},
        where=where,
    )


def parse_box(text: str) -> Box:
    """A face region as written in layout B: ``{"minX":..,"minY":..,"maxX":..,"maxY":..}``,
    ``[x0, y0, x1, y1]`` or ``x0,y0,x1,y1``. Raises ValueError for anything else.

    The geometry is not checked (x0 < x1 and so on); that is for whoever crops.
    """
    text = text.strip()
    if text.startswith(("{", "[")):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"not JSON: {e}") from None
        if isinstance(value, dict):
            if not all(k in value for k in _BOX_KEYS):
                raise ValueError(f"needs keys {', '.join(_BOX_KEYS)}")
            parts = [value[k] for k in _BOX_KEYS]
        elif isinstance(value, list):
            parts = value
        else:
            raise ValueError("neither an object nor a list")
    else:
        parts = text.split(",")
    if len(parts) != 4:
        raise ValueError(f"{len(parts)} numbers, expected 4")
    x0, y0, x1, y1 = (_number(p) for p in parts)
    return (x0, y0, x1, y1)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not a number: {value!r}")
    number = float(value)  # raises ValueError for a string that is not a number
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def _parse_name(name: str) -> tuple[str, str | None, int | None, str | None, str | None]:
    """(person, gender, age, uploader emotion key, background) from ``<hash>_여_20_기쁨_<배경>_<time>.jpg``."""
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    fields = stem.split("_")
    person = name.split("_", 1)[0]  # as maeum.data.aihub.person_id, so layouts A and B agree
    if len(fields) < 4 or fields[1] not in _GENDERS or not (fields[2].isascii() and fields[2].isdigit()):
        return person, None, None, None, None
    background = fields[4] if len(fields) > 4 and fields[4] else None
    age = int(fields[2]) if len(fields[2]) <= 3 and int(fields[2]) <= 150 else None  # the manifest's age is int32
    return person, fields[1], age, label_key(fields[3]), background


def _detect_encoding(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    encoding = text_encoding(str(path))
    if encoding is None:
        raise DataError(f"{path}: neither UTF-8 nor CP949 text")
    return encoding


# --------------------------------------------------------------------------- download


@dataclass(frozen=True)
class DownloadSummary:
    """What one ``download`` run did: files fetched, files already there, failures (name, reason)."""

    fetched: int
    already_present: int
    failed: int
    failures: tuple[tuple[str, str], ...] = ()


def safe_name(name: str) -> str:
    """``name`` when it is a plain file name that stays inside the download folder; else DataError."""
    if not name or "\0" in name or "/" in name or "\\" in name or name in (".", ".."):
        raise DataError(f"unsafe file name {name!r}")
    if PureWindowsPath(name).name != name or PurePosixPath(name).name != name or name == FAILURES_NAME:
        raise DataError(f"unsafe file name {name!r}")  # a drive letter ("C:x"), or our own failure log
    return name


class _Transient(Exception):
    """A failure that may go away: retry."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class _Permanent(Exception):
    """A failure that will not go away by asking again."""


class _Stopped(Exception):
    """The run is being interrupted."""


@dataclass(frozen=True)
class _Options:
    dest: Path
    retries: int
    backoff: float
    timeout: float
    max_bytes: int
    opener: urllib.request.OpenerDirector
    stop: threading.Event


def download(
    records: Iterable[Record],
    dest: Path,
    *,
    workers: int = 8,
    retries: int = 4,
    backoff: float = 0.5,
    timeout: float = 30.0,
    max_bytes: int = 50_000_000,
    on_error: ErrorSink | None = None,
    progress: bool = True,
) -> DownloadSummary:
    """Fetch each record's ``url`` to ``dest / record.name``; files already there are not asked for.

    Transient failures (HTTP 5xx, 408, 429, timeouts, dropped connections, short bodies) are retried
    up to ``retries`` times with exponential backoff and jitter; others fail at once. Files are
    written under a temporary name and renamed when complete. ``timeout`` is per socket operation.
    Failures go to ``on_error(name, reason)`` (called from this thread) and to
    ``dest / "download_failures.tsv"``, rewritten each run (removed when nothing failed).
    """
    if workers < 1 or retries < 0 or backoff < 0 or timeout <= 0 or max_bytes < 1:
        raise DataError(
            f"bad download options: workers={workers} retries={retries} backoff={backoff} "
            f"timeout={timeout} max_bytes={max_bytes}"
        )
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(dest)
    options = _Options(dest, retries, backoff, timeout, max_bytes, _opener(), threading.Event())
    total = len(records) if isinstance(records, Sized) else None
    bar = Progress(total=total, unit="img") if progress else None
    fetched = present = done = 0
    failures: list[tuple[str, str, str]] = []  # name, url, reason

    def finish(record: Record, outcome: str, reason: str = "") -> None:
        nonlocal fetched, present, done
        done += 1
        if outcome == "fetched":
            fetched += 1
        elif outcome == "present":
            present += 1
        else:
            failures.append((record.name, record.url or "", reason))
            if on_error is not None:
                on_error(record.name, reason)
        if bar is not None:
            bar.update(done, done)

    def collect(pending: dict[cf.Future[tuple[str, str]], Record], how: str) -> None:
        finished, _ = cf.wait(pending, return_when=how)
        for future in finished:
            finish(pending.pop(future), *future.result())

    window = workers * 4
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="maeum-download")
    pending: dict[cf.Future[tuple[str, str]], Record] = {}
    try:
        for record in records:
            early = _precheck(record, dest)
            if early is not None:
                finish(record, *early)
                continue
            pending[pool.submit(_fetch, record, options)] = record
            if len(pending) >= window:
                collect(pending, cf.FIRST_COMPLETED)
        while pending:
            collect(pending, cf.ALL_COMPLETED)
    except BaseException:
        options.stop.set()  # workers drop their downloads (and temp files) at the next chance
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        if bar is not None:
            bar.close()
    _write_failures(dest, failures)
    summary = DownloadSummary(fetched, present, len(failures), tuple((n, r) for n, _, r in failures))
    log.info(
        "download to %s: %d fetched, %d already present, %d failed%s",
        dest,
        fetched,
        present,
        len(failures),
        f" (listed in {dest / FAILURES_NAME})" if failures else "",
    )
    return summary


def _precheck(record: Record, dest: Path) -> tuple[str, str] | None:
    """The outcome for a record that needs no request: a bad name or URL, or a file already there."""
    try:
        target = dest / safe_name(record.name)
    except DataError as e:
        return "failed", str(e)
    if not record.url:
        return "failed", "no url"
    parts = urllib.parse.urlsplit(record.url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "failed", f"not an http(s) URL: {record.url!r}"
    with contextlib.suppress(OSError):
        if target.is_file() and target.stat().st_size > 0:
            return "present", ""
        if target.exists() and not target.is_file():
            return "failed", f"{target} exists and is not a file"
    return None


def _fetch(record: Record, options: _Options) -> tuple[str, str]:
    """("fetched", "") or ("failed", reason), after up to ``retries`` retries."""
    assert record.url is not None  # checked by _precheck
    target = options.dest / record.name
    for attempt in range(options.retries + 1):
        try:
            _fetch_once(record.url, target, options)
            return "fetched", ""
        except _Permanent as e:
            return "failed", str(e)
        except _Stopped:
            return "failed", "interrupted"
        except _Transient as e:
            if attempt == options.retries:
                return "failed", f"{e.reason} (after {attempt + 1} attempts)"
            if e.retry_after is not None:
                if e.retry_after > _MAX_RETRY_AFTER_S:
                    return "failed", f"{e.reason}; asked to wait {e.retry_after:.0f} s, not waiting"
                delay = e.retry_after
            else:
                delay = min(_MAX_BACKOFF_S, options.backoff * 2**attempt) * random.uniform(0.5, 1.5)
            log.debug("%s: %s; retry %d in %.2f s", record.name, e.reason, attempt + 1, delay)
            if options.stop.wait(delay):
                return "failed", "interrupted"
        except Exception as e:  # a URL http.client refuses, say: one record fails, not the whole run
            log.debug("%s: unexpected error", record.name, exc_info=True)
            return "failed", f"{type(e).__name__}: {e}"
    raise AssertionError("unreachable")


def _fetch_once(url: str, target: Path, options: _Options) -> None:
    """One request; the file appears under ``target`` complete or not at all."""
    request = urllib.request.Request(_ascii_url(url), headers={"User-Agent": _USER_AGENT})
    try:
        response = options.opener.open(request, timeout=options.timeout)
    except urllib.error.HTTPError as e:
        e.close()
        raise _http_error(e.code, e.reason, e.headers.get("Retry-After") if e.headers else None) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise _network_error(e) from None
    with response:
        if not 200 <= response.status < 300:
            raise _http_error(response.status, response.reason, response.headers.get("Retry-After"))
        length = _content_length(response.headers.get("Content-Length"))
        if length is not None and length > options.max_bytes:
            raise _Permanent(f"too large: {length} bytes > max_bytes {options.max_bytes}")
        try:
            fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=options.dest)
        except OSError as e:
            raise _Permanent(f"cannot write in {options.dest}: {e}") from None
        try:
            with os.fdopen(fd, "wb") as out:
                size = _copy(response, out, options)
            if length is not None and size != length:
                raise _Transient(f"truncated: {size} of {length} bytes")
            if size == 0:
                raise _Permanent("empty response")
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


def _copy(response: http.client.HTTPResponse, out: io.BufferedWriter, options: _Options) -> int:
    size = 0
    while True:
        if options.stop.is_set():
            raise _Stopped
        try:
            chunk = response.read(_CHUNK)
        except (OSError, http.client.HTTPException) as e:  # timeout, reset, IncompleteRead
            raise _network_error(e) from None
        if not chunk:
            return size
        size += len(chunk)
        if size > options.max_bytes:
            raise _Permanent(f"too large: more than max_bytes {options.max_bytes}")
        try:
            out.write(chunk)
        except OSError as e:
            raise _Permanent(f"cannot write in {options.dest}: {e}") from None


def _ascii_url(url: str) -> str:
    """``url`` as ASCII: Hangul file names percent-encoded (UTF-8), existing %XX escapes kept, IDNA host."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if not netloc.isascii():
        userinfo, at, hostport = netloc.rpartition("@")
        host, colon, port = hostport.partition(":")
        netloc = userinfo + at + host.encode("idna").decode("ascii") + colon + port
    safe = "/%:@!$&'()*+,;=~"
    return urllib.parse.urlunsplit(
        (
            parts.scheme,
            netloc,
            urllib.parse.quote(parts.path, safe=safe),
            urllib.parse.quote(parts.query, safe=safe + "?"),
            urllib.parse.quote(parts.fragment, safe=safe + "?"),
        )
    )


def _http_error(code: int, reason: object, retry_after: str | None) -> Exception:
    text = f"HTTP {code} {reason}".strip()
    if code == 429:
        return _Transient(text, _retry_after(retry_after))
    if code == 408 or code >= 500:
        return _Transient(text)
    return _Permanent(text)


def _network_error(error: BaseException) -> Exception:
    cause = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(cause, ssl.SSLCertVerificationError):
        return _Permanent(f"TLS certificate: {cause}")
    if isinstance(cause, TimeoutError):
        return _Transient("timed out")
    if isinstance(cause, http.client.IncompleteRead):
        return _Transient(f"truncated: {len(cause.partial)} bytes then the connection closed")
    return _Transient(f"{type(cause).__name__}: {cause}")  # reset, refused, DNS, bad status line


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds; None when absent or an HTTP date (then the usual backoff applies)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _content_length(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http and https only (the default also follows ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect to a non-http URL {newurl!r}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    """http and https only (no file:, ftp: or data:), with the environment's proxies."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        _RedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def _remove_stale_temps(dest: Path) -> None:
    """Temp files a killed run left behind (only old ones: another run may be writing the new)."""
    now = time.time()
    for temp in dest.glob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if now - temp.stat().st_mtime > _STALE_TEMP_S:
                temp.unlink()


def _write_failures(dest: Path, failures: list[tuple[str, str, str]]) -> None:
    path = dest / FAILURES_NAME
    if not failures:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    clean = str.maketrans({"\t": " ", "\n": " ", "\r": " "})
    temp = path.with_name(path.name + _TEMP_SUFFIX)
    with temp.open("w", encoding="utf-8", newline="\n") as f:
        f.write("name\turl\treason\n")
        for row in failures:
            f.write("\t".join(field.translate(clean) for field in row) + "\n")
    os.replace(temp, path)
