"""The font for chart text in Korean (matplotlib): the first installed font that draws Hangul.

Used by the dataset report, the evaluation's confusion matrix and the video timeline plot; each
falls back to English names when ``hangul_font`` finds none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Fonts with Hangul, tried in order: matplotlib's family name, and the start of the file name, for a
# font installed after matplotlib cached its font list.
HANGUL_FONTS: tuple[tuple[str, str], ...] = (
    ("NanumGothic", "nanumgothic"),
    ("Noto Sans CJK KR", "notosanscjk"),
    ("Noto Sans KR", "notosanskr"),
    ("Malgun Gothic", "malgun"),
    ("AppleGothic", "applegothic"),
    ("UnDotum", "undotum"),
)
# A font must draw all of these to be used: every Korean class name maeum shows, and the genders.
PROBE = "기쁨당황분노불안상처슬픔중립놀람혐오공포경멸남성여성"
INSTALL_HINT = "apt install fonts-nanum"


@dataclass(frozen=True)
class ChartFont:
    """A font for matplotlib text, and the characters it has glyphs for."""

    props: Any  # matplotlib FontProperties
    chars: frozenset[int] = field(repr=False)

    def draws(self, text: str) -> bool:
        """Whether every character of ``text`` has a glyph (ASCII is taken as drawn)."""
        return all(c.isascii() or ord(c) in self.chars for c in text)

    def sized(self, size: float) -> Any:
        """Its FontProperties at ``size`` points."""
        props = self.props.copy()
        props.set_size(size)
        return props


def hangul_font() -> ChartFont | None:
    """The first of ``HANGUL_FONTS`` installed that draws ``PROBE``, or None (needs matplotlib)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.ft2font import FT2Font

    for path in font_files():
        try:
            chars = frozenset(FT2Font(path).get_charmap())
        except (OSError, RuntimeError, ValueError) as e:  # a damaged font file
            log.debug("%s: not usable (%s)", path, e)
            continue
        if all(ord(c) in chars for c in PROBE):
            return ChartFont(FontProperties(fname=path), chars)
    return None


def font_files() -> Iterator[str]:
    """Files of the ``HANGUL_FONTS`` installed: as matplotlib lists them, then by file name."""
    from matplotlib import font_manager

    for family, _ in HANGUL_FONTS:
        try:
            yield font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        except ValueError:
            continue
    files = sorted(font_manager.findSystemFonts(), key=lambda f: (Path(f).name.lower(), f))
    for _, stem in HANGUL_FONTS:
        for f in files:
            name = Path(f).name.lower()
            if name.startswith(stem) and "bold" not in name and "coding" not in name:
                yield f
