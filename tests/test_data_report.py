"""The dataset report: counts, agreement numbers and charts from a small hand-made manifest."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("matplotlib")

from maeum import fonts  # noqa: E402
from maeum.data import report  # noqa: E402
from maeum.data.manifest import MANIFEST_NAME, schema  # noqa: E402
from maeum.data.records import AIHUB7, DataError  # noqa: E402
from maeum.data.report import mean_pairwise_iou, write_report  # noqa: E402

A = [0.0, 0.0, 10.0, 10.0]
HALF = [5.0, 0.0, 15.0, 10.0]  # IoU with A: 50 / 150

# (split, label, boxes, gender, age): hand-counted below.
ROWS = [
    ("train", "happiness", [A, A, HALF], "남", 23),  # mean IoU (1 + 1/3 + 1/3) / 3 = 5/9
    ("train", "happiness", [A, A, None], "여", 31),  # one valid pair: 1.0
    ("train", "happiness", [A, None, None], None, None),  # one box: skipped
    ("train", "anger", [A, HALF], "여", 45),  # 1/3
    ("val", "happiness", None, "남", 27),
    ("val", "neutral", [A], None, None),
    ("test", "sadness", [HALF, HALF, HALF], "남", 19),  # 1.0
    ("test", "anger", None, None, 52),
]
SUMMARY = {
    "records": 10,
    "policy": "majority",
    "policies": {"majority": {"kept": 8, "dropped": 2}, "unanimous": {"kept": 5, "dropped": 5}},
    "agreement": {
        "per_class": {
            "happiness": {"images": 4, "unanimous": 0.5, "majority": 0.25, "all_different": 0.25},
            "anger": {"images": 2, "unanimous": 0.0, "majority": 1.0, "all_different": 0.0},
        },
        "fleiss_kappa": 0.4213,
        "uploader_matches_majority": 0.875,
    },
    "errors": {"no annotations": 1, "image missing": 1},
}


def _write_dataset(out: Path, astronaut: np.ndarray, rows: list[tuple] = ROWS, dataset: str = "aihub") -> None:
    meta = {"dataset": dataset, "labels": list(AIHUB7), "size": 64, "color": "rgb"}
    table = []
    for i, (split, label, boxes, gender, age) in enumerate(rows):
        path = f"crops/{split}/{label}/{i:03d}.png"
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        crop = astronaut[20 * i : 20 * i + 200, 10 * i : 10 * i + 200]
        Image.fromarray(crop).resize((64, 64), Image.Resampling.BILINEAR).save(out / path)
        table.append(
            {
                "name": f"{i:03d}.jpg",
                "path": path,
                "split": split,
                "label": label,
                "boxes": boxes,
                "gender": gender,
                "age": age,
                "person": f"p{i}",
            }
        )
    pq.write_table(pa.Table.from_pylist(table, schema=schema(meta)), out / MANIFEST_NAME)


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in [out / "report.md", *(out / "report").glob("*")]}


def test_mean_pairwise_iou() -> None:
    assert mean_pairwise_iou([A, A, HALF]) == pytest.approx(5 / 9)
    assert mean_pairwise_iou([A, None]) is None
    assert mean_pairwise_iou(None) is None
    assert mean_pairwise_iou([A, [20.0, 20.0, 30.0, 30.0]]) == 0.0


def test_report(tmp_path: Path, astronaut: np.ndarray) -> None:
    _write_dataset(tmp_path, astronaut)
    path = write_report(tmp_path, SUMMARY)
    assert path == tmp_path / "report.md"
    text = path.read_text(encoding="utf-8")

    overview = _section(text, "Overview")
    assert "- Images: 8" in overview and "- Per split: train 4, val 2, test 2" in overview
    assert "| size | 64 |" in overview
    assert "manifest_version" not in overview  # the file's layout version, not a preparation setting

    classes = _section(text, "Class counts per split")
    assert "| class | train | val | test | total |" in classes
    assert "| 기쁨 (happiness) | 3 | 1 | 0 | 4 |" in classes
    assert "| 분노 (anger) | 1 | 0 | 1 | 2 |" in classes
    assert "| 중립 (neutral) | 0 | 1 | 0 | 1 |" in classes
    assert "| 상처 (hurt) | 0 | 0 | 0 | 0 |" in classes
    assert "| total | 4 | 2 | 2 | 8 |" in classes
    rows = [line.split(" | ")[0][2:] for line in classes.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:8] == [
        "기쁨 (happiness)",
        "당황 (embarrassment)",
        "분노 (anger)",
        "불안 (anxiety)",
        "상처 (hurt)",
        "슬픔 (sadness)",
        "중립 (neutral)",
    ]

    policies = _section(text, "Label policies and annotator agreement")
    assert "Records read: 10" in policies and "| **majority** (chosen) | 8 | 2 |" in policies
    assert "| 기쁨 (happiness) | 4 | 50.0% | 25.0% | 25.0% |" in policies
    assert "Fleiss' kappa: 0.421" in policies and "uploader's emotion matches the majority: 87.5%" in policies
    assert policies.index("| image missing | 1 |") < policies.index("| no annotations | 1 |")

    boxes = _section(text, "Box agreement between annotators")
    values = sorted([5 / 9, 1.0, 1 / 3, 1.0])
    stats = f"| 4 | {np.mean(values):.3f} | {np.median(values):.3f} | {np.percentile(values, 10):.3f} |"
    assert stats == "| 4 | 0.722 | 0.778 | 0.400 |" and stats in boxes
    assert f"| 기쁨 (happiness) | 2 | {(5 / 9 + 1) / 2:.3f} |" in boxes
    assert "| 분노 (anger) | 1 | 0.333 |" in boxes and "| 슬픔 (sadness) | 1 | 1.000 |" in boxes

    people = _section(text, "Gender and age balance")
    assert "| 남 (male) | 1 | 1 | 1 | 3 |" in people and "| unknown | 1 | 1 | 1 | 3 |" in people
    assert "| 10s | 0 | 0 | 1 | 1 |" in people and "| 20s | 1 | 1 | 0 | 2 |" in people
    age = people.split("### Age", 1)[1]
    assert age.index("| 50s | 0 | 0 | 1 | 1 |") < age.index("| unknown | 1 | 1 | 0 | 2 |")

    samples = _section(text, "Sample crops")
    assert "| 기쁨 (happiness) | ![happiness](report/samples_00_happiness.png) |" in samples
    assert "embarrassment" not in samples  # no images of that class
    with Image.open(tmp_path / "report/samples_00_happiness.png") as im:
        assert im.size == (4 * 96, 96)  # train rows first, then val

    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {"report/classes.png", "report/agreement.png", "report/box_iou.png", "report/age.png"} <= set(images)
    for rel in images:
        with Image.open(tmp_path / rel) as im:
            im.verify()

    first = _snapshot(tmp_path)
    write_report(tmp_path, SUMMARY)
    assert _snapshot(tmp_path) == first


def test_report_without_summary_or_annotators(tmp_path: Path, astronaut: np.ndarray) -> None:
    rows = [("train", "happiness", None, None, None), ("test", "sadness", None, None, None)]
    _write_dataset(tmp_path, astronaut, rows, dataset="fer2013")
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert "| happiness | 1 | 0 | 0 | 1 |" in text and "기쁨" not in text
    for title in ("Label policies", "Box agreement", "Gender and age"):
        assert f"## {title}" not in text
    assert "## Sample crops" in text


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no manifest"):
        write_report(tmp_path)


def test_policy_rows_keep_their_order_through_summary_json(tmp_path: Path, astronaut: np.ndarray) -> None:
    # `maeum data report` reads summary.json, written with sorted keys; prepare passes its dict as built.
    _write_dataset(tmp_path, astronaut)
    policies = {p: {"kept": 8 - i, "dropped": 2 + i} for i, p in enumerate(("majority", "unanimous", "uploader"))}
    write_report(tmp_path, {**SUMMARY, "policies": policies})
    built = (tmp_path / "report.md").read_text(encoding="utf-8")
    write_report(tmp_path, {**SUMMARY, "policies": dict(sorted(policies.items(), reverse=True))})
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == built
    table = built.split("### Label policies\n", 1)[1].split("###", 1)[0]
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| ")]
    assert rows == ["| policy", "| **majority** (chosen)", "| unanimous", "| uploader"]


# -- chart text: Korean names for AI Hub data in a Hangul font, English without one ----------------


def _record_charts(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every chart's matplotlib figure by file name, as write_report saves it."""
    charts: dict[str, Any] = {}
    save = report._Ctx.save

    def record(self: Any, fig: Any, name: str) -> str:
        charts[name] = fig
        return save(self, fig, name)

    monkeypatch.setattr(report._Ctx, "save", record)
    return charts


def _ticks(fig: Any) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_xticklabels()]


def test_charts_of_korean_data_name_classes_and_genders_in_korean(
    tmp_path: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.ft2font import FT2Font

    font = fonts.hangul_font()
    if font is None:
        pytest.skip("no Hangul font installed (Debian: apt install fonts-nanum)")
    assert ord("쁨") in FT2Font(font.props.get_file()).get_charmap()
    charts = _record_charts(monkeypatch)
    _write_dataset(tmp_path, astronaut)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of each glyph missing from the font it draws with
        write_report(tmp_path, SUMMARY)
    assert _ticks(charts["classes.png"]) == ["기쁨", "당황", "분노", "불안", "상처", "슬픔", "중립"]
    assert _ticks(charts["agreement.png"]) == ["기쁨", "분노"]
    assert _ticks(charts["gender.png"]) == ["남성", "여성", "unknown"]
    assert _ticks(charts["age.png"]) == ["10s", "20s", "30s", "40s", "50s", "unknown"]
    for name in ("classes.png", "agreement.png", "gender.png"):
        for label in charts[name].axes[0].get_xticklabels():
            assert label.get_fontproperties().get_file() == font.props.get_file(), name
    legend = [t.get_text() for t in charts["classes.png"].axes[0].get_legend().get_texts()]
    assert legend == ["train", "val", "test"]  # as the Markdown's columns


def test_charts_fall_back_to_english_without_a_hangul_font(
    tmp_path: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(report, "hangul_font", lambda: None)
    charts = _record_charts(monkeypatch)
    _write_dataset(tmp_path, astronaut, [*ROWS, ("train", "neutral", None, "기타", 40)])
    with caplog.at_level(logging.WARNING, logger="maeum.data.report"), warnings.catch_warnings():
        warnings.simplefilter("error")
        text = write_report(tmp_path, SUMMARY).read_text(encoding="utf-8")
    assert "no Hangul font found (e.g. apt install fonts-nanum)" in caplog.text
    assert _ticks(charts["classes.png"]) == list(AIHUB7)
    assert _ticks(charts["agreement.png"]) == ["happiness", "anger"]
    assert _ticks(charts["gender.png"]) == ["gita", "male", "female", "unknown"]  # 기타 romanised
    assert all(t.isascii() for name in ("classes.png", "agreement.png", "gender.png") for t in _ticks(charts[name]))
    assert "| 기쁨 (happiness) | 3 | 1 | 0 | 4 |" in text and "| 남 (male) |" in text  # the Markdown keeps Korean


def test_chart_names_only_use_characters_the_font_has(tmp_path: Path) -> None:
    from matplotlib import font_manager

    dejavu = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"), fallback_to_default=False)
    hangul = fonts.ChartFont(font_manager.FontProperties(fname=dejavu), frozenset(map(ord, "남성기쁨")))
    ctx = report._Ctx(tmp_path, lambda **_: None, list(AIHUB7), ["train"], True, hangul)
    assert [ctx.chart_name(v) for v in ("남", "happiness", "train")] == ["남성", "기쁨", "train"]
    assert ctx.chart_name("여자") == "female" and ctx.chart_name("sadness") == "sadness"  # 여성, 슬픔: no glyphs
    assert ctx.chart_name("기타") == "gita" and ctx.chart_name("\N{SLIGHTLY SMILING FACE}") == "\\U0001f642"
    english = report._Ctx(tmp_path, lambda **_: None, list(AIHUB7), ["train"], False, hangul)  # FER data
    assert [english.chart_name(v) for v in ("남", "happiness")] == ["male", "happiness"]


def test_a_font_without_hangul_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib import font_manager

    dejavu = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"), fallback_to_default=False)
    monkeypatch.setattr(fonts, "font_files", lambda: iter([dejavu, "/nonexistent/font.ttf"]))
    assert fonts.hangul_font() is None


@pytest.mark.parametrize("text", ["{truncated", "[1, 2]", "\udcff"])
def test_the_report_command_reads_past_a_damaged_summary(tmp_path: Path, astronaut: np.ndarray, capsys, text) -> None:
    from maeum.cli import main

    _write_dataset(tmp_path, astronaut)
    (tmp_path / "summary.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    assert main(["data", "report", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "summary.json is unreadable" in err and "Traceback" not in err
    assert (tmp_path / "report.md").is_file()
