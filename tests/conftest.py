"""Shared fixtures: real face photos from installed packages, bad files, the shared data folder."""

from __future__ import annotations

import csv
import os
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from maeum.analyzer import Analyzer
from maeum.classify import METADATA_KEY, EmotionClassifier, ModelInfo
from maeum.labels import FERPLUS7
from maeum.preprocess import InputSpec
from maeum.results import Box

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SHARED = Path(os.environ.get("MAEUM_SHARED", REPO.parent / "shared"))
YUNET = SHARED / "models" / "face_detection_yunet_2023mar.onnx"

# Reference face boxes measured by hand on the photos.
ASTRONAUT_FACE = Box(178, 60, 90, 115)
HOPPER_FACE = Box(175, 110, 180, 215)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def hopper() -> np.ndarray:
    import matplotlib.cbook

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def cat() -> np.ndarray:
    import skimage.data

    return skimage.data.chelsea()


@pytest.fixture(scope="session")
def analyzer() -> Analyzer:
    return Analyzer(threads=2)


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "data" / "ferplus" / "fer2013new.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED} (set MAEUM_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> dict[str, Path]:
    """Real broken inputs: empty, truncated JPEG, text named .jpg, a 30000x30000 PNG bomb."""
    d = tmp_path_factory.mktemp("bad")
    good = d / "good.jpg"
    Image.fromarray(astronaut).save(good, quality=90)
    data = good.read_bytes()
    (d / "empty.jpg").write_bytes(b"")
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (d / "text.jpg").write_text("this is not an image\n")
    (d / "bomb.png").write_bytes(_png_bomb(30000, 30000))
    return {
        name: d / f"{name}.{ext}"
        for name, ext in (("good", "jpg"), ("empty", "jpg"), ("truncated", "jpg"), ("text", "jpg"), ("bomb", "png"))
    }


def unprivileged(argv: list[str]) -> list[str]:
    """``argv`` run so that file permissions apply to it: as root (where chmod 000 stops nobody),
    without the capabilities that override them."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions cannot be tested")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", *argv]


def _png_bomb(w: int, h: int) -> bytes:
    """A valid gray PNG of w x h black pixels: a few hundred KB that decode to w*h bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    comp = zlib.compressobj(9)
    row = b"\x00" * (w + 1)  # filter byte + pixels
    idat = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ------------------------------------------------------------------------------------------------
# The diary app: the same tests run on SQLite and on PostgreSQL.

POSTGRES_ENV = "MAEUM_TEST_POSTGRES_URL"  # an admin URL; tools/test_services.sh prints one


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
    import io

    out = io.BytesIO()
    Image.fromarray(image).save(out, "JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} is not set: .ci/run starts PostgreSQL with tools/test_services.sh")
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (run tools/test_services.sh)")
    return url


@pytest.fixture(scope="session")
def postgres_database(postgres_admin_url: str) -> str:
    """A database of its own for this test run, dropped at the end."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"maeum_test_{os.getpid()}"
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        c.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or the run's PostgreSQL database with its schema wiped."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'diary.db'}"
    from sqlalchemy import create_engine, text

    url = request.getfixturevalue("postgres_database")
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture
def diary_settings(database_url: str, tmp_path: Path):  # -> AppSettings
    from maeum.app.settings import AppSettings

    return AppSettings(data_dir=tmp_path / "data", database_url=database_url, analysis_slots=2)


@pytest.fixture
def diary_app(diary_settings, analyzer: Analyzer):  # -> FastAPI
    from maeum.app.web import create_app

    app = create_app(diary_settings, analyzer)
    yield app
    app.state.diary.close()


@pytest.fixture(scope="session")
def selfie_jpeg(astronaut: np.ndarray) -> bytes:
    return jpeg_bytes(astronaut)


@pytest.fixture(scope="session")
def no_face_jpeg() -> bytes:
    import skimage.data

    return jpeg_bytes(skimage.data.coffee())


@pytest.fixture(scope="session")
def two_faces_jpeg(astronaut: np.ndarray, hopper: np.ndarray) -> bytes:
    """Two real people side by side: the astronaut and Grace Hopper, at similar face sizes."""
    right = np.asarray(Image.fromarray(hopper).resize((hopper.shape[1] // 2, hopper.shape[0] // 2)))
    h = max(astronaut.shape[0], right.shape[0])
    canvas = np.full((h, astronaut.shape[1] + right.shape[1], 3), 255, np.uint8)
    canvas[: astronaut.shape[0], : astronaut.shape[1]] = astronaut
    canvas[: right.shape[0], astronaut.shape[1] :] = right
    return jpeg_bytes(canvas)


def prepare_aihub(tmp_path_factory: pytest.TempPathFactory, size: int, color: str) -> Path:
    """AI Hub-style zips cut from real photos (tests/aihub_fixture.py), prepared into a manifest folder."""
    from aihub_fixture import build_layout_a, default_records
    from maeum.data.prepare import PrepareConfig, prepare

    src = build_layout_a(tmp_path_factory.mktemp("aihub-src"), default_records()).root
    out = tmp_path_factory.mktemp(f"aihub-{size}-{color}")
    prepare(PrepareConfig("aihub", src, out, size=size, color=color, policy="tiebreak", workers=1, report=False))
    return out


@pytest.fixture(scope="session")
def prepared_aihub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared manifest of 64 px colour crops, 7 Korean classes, split train/val/test."""
    return prepare_aihub(tmp_path_factory, 64, "rgb")


@pytest.fixture(scope="session")
def prepared_aihub_32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same crops at 32 px gray: the quickest data for real training runs."""
    pytest.importorskip("pyarrow")
    return prepare_aihub(tmp_path_factory, 32, "gray")


@pytest.fixture(scope="session")
def small_ferplus(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 60 rows of each FER+ split, with the original FER2013 labels: real images, quick to read."""
    source = shared / "data" / "ferplus"
    root = tmp_path_factory.mktemp("ferplus")
    with (source / "fer2013new.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        rows, seen = [], {}
        for row in reader:
            if row["Image name"] and seen.get(row["Usage"], 0) < 60:
                seen[row["Usage"]] = seen.get(row["Usage"], 0) + 1
                rows.append(row)
        fields = reader.fieldnames
    with (root / "fer2013new.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    folders = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    for row in rows:
        (root / folders[row["Usage"]]).mkdir(exist_ok=True)
        shutil.copy(source / folders[row["Usage"]] / row["Image name"], root / folders[row["Usage"]])
    shutil.copy(source / "fer2013_labels.csv", root)
    return root


def tiny_config(manifest: Path, out: Path, **settings: object) -> Any:
    """A ``TrainConfig`` for a seconds-long run of mini_xception on ``prepared_aihub_32``."""
    from maeum.training.config import TrainConfig

    base = {"model": "mini_xception", "epochs": 2, "batch_size": 8, "bf16": False, "threads": 1}
    spec = {"size": 32, "color": "gray", "mean": [0.5], "std": [0.5]}
    return TrainConfig(str(manifest), str(out), **{**base, "input": spec, **settings})


def read_metrics(run: Path) -> list[dict[str, str]]:
    """The rows of a run's metrics.csv."""
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def tiny_model(
    path: Path,
    labels: tuple[str, ...] | None = FERPLUS7,
    template: np.ndarray | None = None,
    opset: int = 13,
    extra: dict[str, object] | None = None,
) -> Path:
    """A 48 px gray model emitting logits: a 4x4 average pool, flattened, times fixed weights
    (so a mirror image changes its answer).

    ``labels=None`` writes it without maeum metadata; ``extra`` joins its metadata.
    """
    k, cells = 7, 12 * 12
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 48, 48])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", k])
    w = np.random.default_rng(2).normal(0, 3, (cells, k)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "w"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "tiny", [x], [y], [onnx.numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if labels is not None:
        info = ModelInfo(
            "tiny",
            labels,
            InputSpec(48, "gray", (0.4,), (0.25,)),
            EmotionClassifier().info.template if template is None else template,
            "logits",
            dict(extra or {}),
        )
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, info.to_metadata()
    onnx.save(model, str(path))
    return path
