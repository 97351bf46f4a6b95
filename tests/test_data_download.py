"""AI Hub layout B: reading the TSV, and downloading from a real loopback HTTP server that fails on purpose."""

from __future__ import annotations

import collections
import http.server
import threading
import time
import unicodedata
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import EXAMPLES
from maeum.data.download import FAILURES_NAME, DownloadSummary, download, parse_box, read_tsv, safe_name
from maeum.data.records import DataError, Record

JPEG = (EXAMPLES / "astronaut.jpg").read_bytes()
HEADER = (
    "name\turl\tTaskA_emotion\tTaskB_emotion\tTaskC_emotion\tTaskA_background\tTaskB_background\t"
    "TaskC_background\tTaskA_result\tTaskB_result\tTaskC_result"
)
NAME = "3f2a9c_여_20_기쁨_공공시설_20201012.jpg"
BOX_JSON = '{"minX": 10.5, "minY": 20, "maxX": 110, "maxY": 140}'


class Errors(list):
    def __call__(self, where: str, reason: str) -> None:
        self.append((where, reason))


def _row(
    name: str = NAME, url: str = "http://example.com/a.jpg", emotions: str = "기쁨\t기쁨\t당황", box: str = BOX_JSON
) -> str:
    return f"{name}\t{url}\t{emotions}\t실내\t실내\t야외\t{box}\t[1, 2, 3, 4]\t5,6,7,8"


def _write(tmp_path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path = tmp_path / "labels.tsv"
    path.write_bytes("\r\n".join(lines).encode(encoding) + b"\r\n")
    return path


# --------------------------------------------------------------------------- TSV


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949"])
def test_reads_every_encoding(tmp_path: Path, encoding: str) -> None:
    path = _write(tmp_path, [HEADER, _row(), _row(name="b7e1_남_35_분노_거리_20201013.png")], encoding)
    errors = Errors()
    records = list(read_tsv(path, errors))
    assert errors == []
    assert [r.name for r in records] == [NAME, "b7e1_남_35_분노_거리_20201013.png"]
    first = records[0]
    assert first.person == "3f2a9c" and first.gender == "여" and first.age == 20
    assert first.uploader_emotion == "happiness" and first.background == "공공시설"
    assert first.url == "http://example.com/a.jpg"
    assert [a.emotion for a in first.annotations] == ["happiness", "happiness", "embarrassment"]
    assert [a.background for a in first.annotations] == ["실내", "실내", "야외"]
    assert [a.box for a in first.annotations] == [
        (10.5, 20.0, 110.0, 140.0),
        (1.0, 2.0, 3.0, 4.0),
        (5.0, 6.0, 7.0, 8.0),
    ]
    assert records[1].gender == "남" and records[1].age == 35 and records[1].uploader_emotion == "anger"


def test_names_become_nfc_and_odd_names_keep_a_person(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", NAME)
    assert nfd != NAME
    path = _write(tmp_path, [HEADER, _row(name=nfd), _row(name="plainname.jpg"), _row(name="x_y.jpg")])
    records = list(read_tsv(path, Errors()))
    assert records[0].name == NAME and records[0].gender == "여"
    assert (records[1].person, records[1].gender, records[1].age, records[1].background) == (
        "plainname.jpg",
        None,
        None,
        None,
    )
    assert records[2].person == "x" and records[2].uploader_emotion is None


def test_box_formats_and_unreadable_boxes(tmp_path: Path) -> None:
    bad = ["{'minX': 1}", '{"minX": 1, "minY": 2}', "[1, 2, 3]", "1,2,three,4", "[1, 2, NaN, 4]", "abc", "", " "]
    lines = [HEADER, *(_row(name=f"p{i}_a.jpg", box=b) for i, b in enumerate(bad))]
    path = _write(tmp_path, lines)
    errors = Errors()
    records = list(read_tsv(path, errors))
    assert len(records) == len(bad)
    assert all(r.annotations[0].box is None for r in records)
    assert all(r.annotations[1].box == (1.0, 2.0, 3.0, 4.0) for r in records)
    # the empty cells (the last two) are no box, without a report
    assert [w for w, _ in errors] == [f"{path}:{i}" for i in range(2, len(bad))]
    assert all(reason.startswith("invalid box from annotator A: ") for _, reason in errors)
    assert "'1,2,three,4'" in errors[3][1]
    assert parse_box(" 1, 2 ,3,4 ") == (1.0, 2.0, 3.0, 4.0)
    assert parse_box('{"minX": "1", "minY": 2, "maxX": 3, "maxY": 4, "extra": 0}') == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(ValueError):
        parse_box("[true, 2, 3, 4]")


def test_bad_rows_are_reported_with_line_numbers(tmp_path: Path) -> None:
    lines = [
        HEADER,
        _row(name="good_1.jpg"),
        "short\trow",
        _row(name=""),
        _row(name="nourl.jpg", url=""),
        _row(name="good_1.jpg"),  # duplicate
        "",
        _row(name="odd_2.jpg", emotions="기쁨\t모름\tsad"),
    ]
    path = _write(tmp_path, lines)
    errors = Errors()
    records = list(read_tsv(path, errors))
    assert [r.name for r in records] == ["good_1.jpg", "odd_2.jpg"]
    assert [a.emotion for a in records[1].annotations] == ["happiness", None, "sadness"]
    where = [w.rsplit(":", 1)[1] for w, _ in errors]
    assert where == ["3", "4", "5", "6", "8"]
    assert all(reason.startswith("malformed record: ") for _, reason in errors[:4])
    assert "columns" in errors[0][1] and "no name" in errors[1][1] and "no url" in errors[2][1]
    assert "duplicate" in errors[3][1]
    assert errors[4][1] == "unknown emotion '모름' from annotator B"


def test_missing_columns_and_unreadable_files(tmp_path: Path) -> None:
    path = _write(tmp_path, ["name\turl\tTaskA_emotion", "a.jpg\thttp://x/a.jpg\t기쁨"])
    with pytest.raises(DataError, match=r"TaskB_emotion.*TaskC_result"):
        list(read_tsv(path, Errors()))
    (tmp_path / "bin.tsv").write_bytes(b"\xff\xfe\xff\x00\x81")
    with pytest.raises(DataError, match="neither UTF-8 nor CP949"):
        list(read_tsv(tmp_path / "bin.tsv", Errors()))
    with pytest.raises(DataError, match="no such file"):
        list(read_tsv(tmp_path / "absent.tsv", Errors()))


# --------------------------------------------------------------------------- download


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that time out leave broken pipes behind; that is the point


class _Site:
    """Serves JPEG under /<kind>/<name>; kind picks the failure. Counts requests per path."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = urllib.parse.unquote(self.path)
                with site.lock:
                    site.counts[path] += 1
                    n = site.counts[path]
                kind = path.split("/")[1]
                if kind == "flaky" and n <= 2:
                    self._status(503)
                elif kind == "limited" and n == 1:
                    self._status(429, {"Retry-After": "0"})
                elif kind == "drop" and n == 1:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(JPEG)))
                    self.end_headers()
                    self.wfile.write(JPEG[: len(JPEG) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                elif kind == "missing":
                    self._status(404)
                elif kind == "slow":
                    time.sleep(2.0)
                    self._send(JPEG)
                elif kind == "empty":
                    self._send(b"")
                else:
                    self._send(JPEG)

            def _status(self, code: int, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def record(self, kind: str, name: str) -> Record:
        return Record(name=name, person=name.split("_")[0], url=f"{self.url}/{kind}/{name}")


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Site]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    s = _Site()
    thread = threading.Thread(target=s.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


FAST = {"workers": 4, "retries": 3, "backoff": 0.01, "timeout": 0.5, "progress": False}


def test_first_run_retries_then_second_run_asks_only_for_failures(site: _Site, tmp_path: Path) -> None:
    good = [site.record("ok", f"ok{i}_여_20_기쁨_실내_1.jpg") for i in range(6)]
    transient = [site.record(k, f"{k}_1.jpg") for k in ("flaky", "limited", "drop")]
    bad = [site.record("missing", "missing_1.jpg"), site.record("slow", "slow_1.jpg")]
    records = good + transient + bad
    dest = tmp_path / "images"
    errors = Errors()

    summary = download(records, dest, on_error=errors, **FAST)

    assert (summary.fetched, summary.already_present, summary.failed) == (9, 0, 2)
    reasons = dict(summary.failures)
    assert reasons.keys() == {"missing_1.jpg", "slow_1.jpg"} and dict(errors) == reasons
    assert reasons["missing_1.jpg"].startswith("HTTP 404") and "timed out" in reasons["slow_1.jpg"]
    for r in good + transient:
        assert (dest / r.name).read_bytes() == JPEG
    assert sorted(p.name for p in dest.iterdir()) == sorted([FAILURES_NAME] + [r.name for r in good + transient])
    log = (dest / FAILURES_NAME).read_text(encoding="utf-8").splitlines()
    assert log[0] == "name\turl\treason"
    assert sorted(line.split("\t")[:2] for line in log[1:]) == sorted([r.name, r.url] for r in bad)

    counts = dict(site.counts)
    path = {r.name: r.url.split(site.url, 1)[1] for r in records if r.url}
    assert counts[path["flaky_1.jpg"]] == 3 and counts[path["limited_1.jpg"]] == 2
    assert counts[path["drop_1.jpg"]] == 2 and counts[path["missing_1.jpg"]] == 1
    assert counts[path["slow_1.jpg"]] == 4  # retries + 1
    assert all(counts[path[r.name]] == 1 for r in good)

    second = download(records, dest, **FAST)

    assert (second.fetched, second.already_present, second.failed) == (0, 9, 2)
    asked = {p: site.counts[p] - counts.get(p, 0) for p in site.counts}
    assert {p for p, n in asked.items() if n} == {path["missing_1.jpg"], path["slow_1.jpg"]}
    assert asked[path["missing_1.jpg"]] == 1 and asked[path["slow_1.jpg"]] == 4
    assert (dest / FAILURES_NAME).is_file()


def test_a_run_without_failures_removes_the_old_failure_log(site: _Site, tmp_path: Path) -> None:
    (tmp_path / FAILURES_NAME).write_text("name\turl\treason\nold\thttp://x/old\tHTTP 404\n", encoding="utf-8")
    (tmp_path / "empty_1.jpg").write_bytes(b"")  # an empty file is not a download: fetched again
    summary = download([site.record("ok", "empty_1.jpg")], tmp_path, **FAST)
    assert summary == DownloadSummary(fetched=1, already_present=0, failed=0)
    assert (tmp_path / "empty_1.jpg").read_bytes() == JPEG
    assert not (tmp_path / FAILURES_NAME).exists()


def test_permanent_failures_are_not_retried_and_leave_no_files(site: _Site, tmp_path: Path) -> None:
    records = [site.record("ok", "big_1.jpg"), site.record("empty", "empty_1.jpg"), site.record("missing", "m_1.jpg")]
    summary = download(records, tmp_path / "d", max_bytes=1000, **FAST)
    reasons = dict(summary.failures)
    assert summary.failed == 3 and summary.fetched == 0
    assert "too large" in reasons["big_1.jpg"] and "empty" in reasons["empty_1.jpg"]
    assert all(n == 1 for n in site.counts.values()) and len(site.counts) == 3
    assert [p.name for p in (tmp_path / "d").iterdir()] == [FAILURES_NAME]


def test_unsafe_names_and_urls_are_refused_without_a_request(site: _Site, tmp_path: Path) -> None:
    names = ["../escape.jpg", "a/b.jpg", "a\\b.jpg", "..", ".", "", "nul\0.jpg", "C:evil.jpg", FAILURES_NAME]
    records = [Record(name=n, person="p", url=f"{site.url}/ok/x.jpg") for n in names]
    urls = ["file:///etc/passwd", "ftp://127.0.0.1/x.jpg", "javascript:alert(1)", "http:///nohost.jpg", None]
    records += [Record(name=f"u{i}.jpg", person="p", url=u) for i, u in enumerate(urls)]
    dest = tmp_path / "inside" / "dest"
    summary = download(records, dest, **FAST)
    assert summary.failed == len(records) and summary.fetched == 0
    assert site.counts == {}
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dest", FAILURES_NAME, "inside"]
    for name in names:
        with pytest.raises(DataError):
            safe_name(name)
    assert safe_name(NAME) == NAME and safe_name("a..b.jpg") == "a..b.jpg"


def test_records_are_read_lazily_in_a_bounded_window(site: _Site, tmp_path: Path) -> None:
    workers, total, ahead = 2, 40, []

    def records() -> Iterator[Record]:
        for i in range(total):
            done = sum(1 for p in tmp_path.iterdir() if not p.name.startswith("."))
            ahead.append(i - done)
            yield site.record("ok", f"lazy{i}_1.jpg")

    summary = download(records(), tmp_path, **{**FAST, "workers": workers})
    assert summary.fetched == total
    assert max(ahead) <= workers * 4


def test_hangul_urls_are_encoded_once(site: _Site, tmp_path: Path) -> None:
    raw = site.record("ok", NAME)
    quoted = Record(name="quoted_1.jpg", person="q", url=f"{site.url}/ok/{urllib.parse.quote(NAME)}")
    summary = download([raw, quoted], tmp_path, **FAST)
    assert summary.fetched == 2
    assert site.counts == {f"/ok/{NAME}": 2}


def test_an_interrupted_run_stops_soon_and_leaves_no_partial_files(site: _Site, tmp_path: Path) -> None:
    def records() -> Iterator[Record]:
        yield from (site.record("slow", f"slow{i}_1.jpg") for i in range(4))
        time.sleep(0.1)  # the slow requests are in flight
        raise RuntimeError("stop")  # what Ctrl-C does, as far as download can tell

    start = time.monotonic()
    with pytest.raises(RuntimeError, match="stop"):
        download(records(), tmp_path, **{**FAST, "retries": 10, "backoff": 1.0})
    # Each worker notices at its next chance: here when its request times out (0.5 s), not after 10 retries.
    assert time.monotonic() - start < 1.5
    assert list(tmp_path.iterdir()) == []


def test_logs_a_one_line_summary(site: _Site, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="maeum.data.download"):
        download([site.record("ok", "a_1.jpg"), site.record("missing", "b_1.jpg")], tmp_path, **FAST)
    assert [r.getMessage().count("\n") for r in caplog.records] == [0]
    assert "1 fetched, 0 already present, 1 failed" in caplog.records[0].getMessage()
