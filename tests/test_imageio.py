from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import unprivileged
from maeum.errors import ImageError
from maeum.imageio import as_rgb_array, load_image


def _save(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def test_loads_jpeg_as_rgb_uint8(bad_files: dict[str, Path]) -> None:
    img = load_image(bad_files["good"])
    assert img.dtype == np.uint8 and img.shape == (512, 512, 3)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F", "1"])
def test_every_mode_becomes_rgb(astronaut: np.ndarray, mode: str) -> None:
    base = Image.fromarray(astronaut)
    if mode == "I;16":
        im = Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257)
        fmt = "PNG"
    else:
        im = base.convert(mode)
        fmt = {"CMYK": "JPEG", "F": "TIFF", "I": "TIFF"}.get(mode, "PNG")
    out = load_image(_save(im, fmt))
    assert out.shape == (512, 512, 3) and out.dtype == np.uint8
    assert 40 < out.mean() < 220  # content survived, not a blank or clipped image


def test_sixteen_bit_is_scaled_not_clipped(astronaut: np.ndarray) -> None:
    gray = np.asarray(Image.fromarray(astronaut).convert("L"))
    im16 = Image.fromarray(gray.astype(np.uint16) * 257)
    out = load_image(_save(im16, "PNG"))
    assert np.abs(out[..., 0].astype(int) - gray).max() <= 1


def test_rgba_is_composited_on_white() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    out = load_image(_save(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (out == 255).all()


def test_exif_orientation_is_applied(astronaut: np.ndarray) -> None:
    wide = astronaut[:256]  # 256 x 512, top half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = _save(Image.fromarray(wide), "JPEG", exif=exif, quality=95)
    out = load_image(data)
    assert out.shape == (512, 256, 3)
    expected = np.rot90(wide, k=-1)
    assert np.abs(out.astype(int) - expected).mean() < 4


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("empty", "empty file"),
        ("truncated", "corrupt or truncated"),
        ("text", "not an image"),
        ("bomb", "image too large"),
    ],
)
def test_bad_files_raise_clear_errors(bad_files: dict[str, Path], name: str, words: str) -> None:
    with pytest.raises(ImageError) as err:
        load_image(bad_files[name])
    message = str(err.value)
    assert str(bad_files[name]) in message and words in message
    assert "\n" not in message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="empty data"):
        load_image(b"")


def test_max_pixels_is_configurable(bad_files: dict[str, Path]) -> None:
    with pytest.raises(ImageError, match=r"image too large.*--max-pixels"):
        load_image(bad_files["good"], max_pixels=100 * 100)


def test_as_rgb_array_checks_types() -> None:
    assert as_rgb_array(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    assert as_rgb_array(np.zeros((5, 6, 4), np.uint8)).shape == (5, 6, 3)
    with pytest.raises(TypeError, match="numpy array"):
        as_rgb_array("photo.jpg")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="uint8"):
        as_rgb_array(np.zeros((5, 6, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        as_rgb_array(np.zeros((5, 6, 2), np.uint8))


def test_large_photos_under_the_limit_are_read(tmp_path: Path) -> None:
    # 100 MP (a phone's 108 MP mode is similar): above Pillow's own warning level, under maeum's limit.
    path = tmp_path / "big.png"
    Image.new("L", (12500, 8000), 128).save(path)
    img = load_image(path)
    assert img.shape == (8000, 12500, 3)


def test_max_pixels_above_pillows_own_limit_takes_effect(
    bad_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pillow refuses more than twice Image.MAX_IMAGE_PIXELS (179 MP by default) whatever max_pixels
    # says; here its limit is lowered so a 512 x 512 photo stands for a 200 MP one.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)
    assert load_image(bad_files["good"], max_pixels=300_000).shape == (512, 512, 3)
    assert Image.MAX_IMAGE_PIXELS == 50_000  # put back
    with pytest.raises(ImageError, match=r"image too large \(over 100,000 pixels, limit 100,000\).*--max-pixels"):
        load_image(bad_files["good"], max_pixels=100_000)


def test_unreadable_files_say_permission_denied(bad_files: dict[str, Path], tmp_path: Path) -> None:
    locked, noperm = tmp_path / "locked", tmp_path / "noperm.jpg"
    locked.mkdir()
    noperm.write_bytes(bad_files["good"].read_bytes())
    noperm.chmod(0)
    locked.chmod(0)
    probe = (
        "import sys\nfrom maeum.imageio import load_image\nfrom maeum.errors import ImageError\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n        load_image(path)\n    except ImageError as e:\n        print(e)\n"
    )
    try:
        done = subprocess.run(
            unprivileged([sys.executable, "-c", probe, str(locked / "x.jpg"), str(noperm)]),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        locked.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{locked / 'x.jpg'}: permission denied; a folder on its path cannot be entered",
        f"{noperm}: permission denied; check the file's permissions",
    ]


def test_rgba_arrays_are_composited_on_white_like_rgba_files(astronaut: np.ndarray) -> None:
    alpha = np.zeros(astronaut.shape[:2], np.uint8)
    alpha[:, :200] = 255
    alpha[:, 200:300] = 128  # half transparent
    rgba = np.dstack([astronaut, alpha])
    from_file = load_image(_save(Image.fromarray(rgba), "PNG"))
    assert (from_file[:, 300:] == 255).all()
    np.testing.assert_allclose(as_rgb_array(rgba), from_file, atol=1)
    np.testing.assert_array_equal(as_rgb_array(np.dstack([astronaut, np.full_like(alpha, 255)])), astronaut)


def test_gray_with_a_channel_axis_and_channels_first_arrays(astronaut: np.ndarray) -> None:
    gray = astronaut[..., :1]
    np.testing.assert_array_equal(as_rgb_array(gray), np.repeat(gray, 3, axis=2))
    with pytest.raises(ValueError, match=r"channels first; pass image\.transpose\(1, 2, 0\)"):
        as_rgb_array(astronaut.transpose(2, 0, 1))


def test_load_image_takes_paths_and_bytes_and_says_what_to_do_with_anything_else(
    bad_files: dict[str, Path], astronaut: np.ndarray
) -> None:
    data = bad_files["good"].read_bytes()
    expected = load_image(data)
    np.testing.assert_array_equal(load_image(bytearray(data)), expected)
    np.testing.assert_array_equal(load_image(memoryview(data)), expected)
    with bad_files["good"].open("rb") as f, pytest.raises(TypeError, match=r"load_image\(f\.read\(\)\)"):
        load_image(f)  # type: ignore[arg-type]
    with Image.open(bad_files["good"]) as im, pytest.raises(TypeError, match=r"a PIL image"):
        load_image(im)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="decoded already"):
        load_image(astronaut)  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="empty path"):  # not "." is a folder
        load_image("")


def _jpeg_with_damaged_exif(image: np.ndarray) -> bytes:
    """A JPEG whose EXIF names a Make tag stored past the end of the EXIF block (the image itself is fine)."""
    import struct

    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + struct.pack(">HHII", 0x010F, 2, 20, 1000) + b"\x00" * 4
    return _save(Image.fromarray(image), "JPEG", exif=b"Exif\x00\x00" + tiff)


def test_a_decoder_warning_is_one_log_line_naming_the_image(
    astronaut: np.ndarray, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import warnings

    path = tmp_path / "phone photo.jpg"
    path.write_bytes(_jpeg_with_damaged_exif(astronaut))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping load_image fails the test
        image = load_image(path)
    assert image.shape == astronaut.shape
    lines = [r.getMessage() for r in caplog.records if r.name == "maeum.imageio"]
    assert len(lines) == 1 and lines[0].startswith(f"{path}: read, with a warning from the decoder: "), lines
