from __future__ import annotations

import numpy as np
import pytest

from maeum.align import align_face, estimate_similarity, square_crop

TEMPLATE = np.array([[15.5, 18.7], [32.5, 18.7], [24.0, 28.5], [17.3, 36.5], [30.7, 36.5]])


@pytest.mark.parametrize(
    ("angle", "scale", "shift"), [(0.0, 1.0, (0, 0)), (25.0, 3.5, (100, 40)), (-40.0, 0.4, (-5, 9))]
)
def test_similarity_recovers_a_known_transform(angle: float, scale: float, shift: tuple[float, float]) -> None:
    a = np.radians(angle)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    src = TEMPLATE
    dst = src @ rot.T + shift
    m = estimate_similarity(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


def test_align_puts_landmarks_on_the_template() -> None:
    # Draw five bright dots on a big, rotated, scaled "face" and check they land on the template.
    rng = np.random.default_rng(0)
    a = np.radians(30)
    m = 6 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    points = TEMPLATE @ m.T + [300, 200]
    image = (rng.random((600, 700, 3)) * 30).astype(np.uint8)
    for x, y in points:
        image[round(y) - 12 : round(y) + 13, round(x) - 12 : round(x) + 13] = 255
    crop = align_face(image, points, TEMPLATE, 48)
    assert crop.shape == (48, 48, 3) and crop.dtype == np.uint8
    for x, y in TEMPLATE:
        assert crop[round(y), round(x)].min() > 200  # a dot is under every template point


def test_align_levels_a_tilted_face() -> None:
    # A face tilted by 45 degrees (with noisy landmarks) comes out with level eyes.
    a = np.radians(45)
    rot = 4 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    lm = TEMPLATE @ rot.T + [200, 100] + np.random.default_rng(1).normal(0, 1.0, (5, 2))
    m = estimate_similarity(lm, TEMPLATE)
    eyes = np.c_[lm[:2], np.ones(2)] @ m.T
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1.0


def test_square_crop_centres_and_resizes() -> None:
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 100:200] = 255  # the centre square is white
    out = square_crop(image, 48)
    assert out.shape == (48, 48, 3) and out.min() == 255


def test_aligner_registry() -> None:
    from maeum.align import create_aligner, list_aligners
    from maeum.errors import UnknownNameError

    assert list_aligners() == ["similarity", "upright"]
    with pytest.raises(UnknownNameError, match="similarity"):
        create_aligner("affine3d")


def test_upright_keeps_the_tilt_and_similarity_removes_it() -> None:
    from maeum.align import create_aligner, estimate_scale_shift

    a = np.radians(30)
    rot = 3 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    lm = TEMPLATE @ rot.T + [150, 120]
    m = estimate_scale_shift(lm, TEMPLATE)
    assert m[0, 1] == 0 and m[1, 0] == 0 and m[0, 0] == pytest.approx(1 / 3, rel=0.2)
    image = np.zeros((400, 400, 3), np.uint8)
    for x, y in lm[:2]:  # two bright eyes
        image[round(y) - 8 : round(y) + 9, round(x) - 8 : round(x) + 9] = 255
    level = create_aligner("similarity")(image, lm, TEMPLATE, 48)
    tilted = create_aligner("upright")(image, lm, TEMPLATE, 48)

    def eye_rows(crop: np.ndarray) -> tuple[float, float]:
        ys, xs = np.nonzero(crop[..., 0] > 100)
        left, right = ys[xs < 24], ys[xs >= 24]
        return float(left.mean()), float(right.mean())

    l_row, r_row = eye_rows(level)
    assert abs(l_row - r_row) < 1.5
    l_row, r_row = eye_rows(tilted)
    assert r_row - l_row > 4  # the right-hand eye stays lower, as in the photo
