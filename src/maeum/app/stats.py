"""Calendar months, emotion counts, weekly trends and streaks, with their charts as inline SVG."""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

COLORS: dict[str, str] = {
    "happiness": "#f4b400",
    "neutral": "#9e9e9e",
    "surprise": "#ab47bc",
    "sadness": "#4285f4",
    "anger": "#db4437",
    "disgust": "#0f9d58",
    "fear": "#5c6bc0",
    "contempt": "#8d6e63",
}


def color(label: str) -> str:
    return COLORS.get(label, "#607d8b")


@dataclass(frozen=True)
class DayCell:
    day: dt.date
    label: str | None  # the emotion of the day's latest post
    count: int
    post_id: int | None


def month_weeks(year: int, month: int, days: dict[dt.date, tuple[str, int, int]]) -> list[list[DayCell | None]]:
    """The month as weeks starting on Sunday; ``days`` maps a day to (label, post count, latest post id)."""
    weeks: list[list[DayCell | None]] = []
    # day numbers, 0 outside the month: no dates are made for the neighbouring months (none after 9999-12)
    for week in calendar.Calendar(firstweekday=6).monthdayscalendar(year, month):
        row: list[DayCell | None] = []
        for number in week:
            day = dt.date(year, month, number) if number else None
            if day is None:
                row.append(None)
            elif day in days:
                label, count, post_id = days[day]
                row.append(DayCell(day, label, count, post_id))
            else:
                row.append(DayCell(day, None, 0, None))
        weeks.append(row)
    return weeks


def shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def month_bounds(year: int, month: int) -> tuple[dt.date, dt.date]:
    """The first and the last day of the month."""
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def streaks(days: Iterable[dt.date], today: dt.date) -> tuple[int, int]:
    """(current, longest) runs of consecutive days with a post; the current run may end today or yesterday."""
    ordered = sorted(set(days))
    longest = run = 0
    previous: dt.date | None = None
    for day in ordered:
        run = run + 1 if previous is not None and day - previous == dt.timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    current = 0
    if ordered and (today - ordered[-1]).days <= 1:
        current = 1
        for a, b in zip(reversed(ordered[:-1]), reversed(ordered[1:]), strict=True):
            if b - a != dt.timedelta(days=1):
                break
            current += 1
    return current, longest


def weekly(posts: Iterable[tuple[dt.date, str]], today: dt.date, weeks: int) -> list[tuple[dt.date, Counter]]:
    """Emotion counts per week (weeks start on Monday) for the last ``weeks`` weeks, oldest first."""
    monday = today - dt.timedelta(days=today.weekday())
    starts = [monday - dt.timedelta(weeks=i) for i in range(weeks - 1, -1, -1)]
    buckets: dict[dt.date, Counter] = {s: Counter() for s in starts}
    for day, label in posts:
        start = day - dt.timedelta(days=day.weekday())
        if start in buckets:
            buckets[start][label] += 1
    return [(s, buckets[s]) for s in starts]


def bar_chart(counts: dict[str, int], labels: Sequence[str], names: dict[str, str], title: str) -> str:
    """Horizontal bars, one per label, as an SVG element."""
    width, row, left = 360, 28, 70
    top = max(counts.values(), default=0) or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {row * len(labels) + 8}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, label in enumerate(labels):
        n = counts.get(label, 0)
        y = 4 + i * row
        w = (width - left - 40) * n / top
        parts.append(
            f'<text x="{left - 6}" y="{y + 18}" text-anchor="end">{escape(names[label])}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row - 10}" rx="4" fill="{color(label)}"'
            f' data-label="{label}" data-count="{n}"></rect>'
            f'<text x="{left + w + 6:.1f}" y="{y + 18}">{n}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def trend_chart(series: list[tuple[dt.date, Counter]], labels: Sequence[str], names: dict[str, str], title: str) -> str:
    """Stacked columns of emotion counts per week, as an SVG element."""
    width, height, bottom, left = 360, 180, 22, 24
    top = max((sum(c.values()) for _, c in series), default=0) or 1
    step = (width - left) / max(len(series), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>",
        f'<text x="2" y="12">{top}</text><line x1="{left}" y1="{height - bottom}" x2="{width}" '
        f'y2="{height - bottom}" stroke="#bbb"></line>',
    ]
    usable = height - bottom - 8
    for i, (start, counts) in enumerate(series):
        x, y = left + i * step + 2, height - bottom
        for label in labels:
            n = counts.get(label, 0)
            if not n:
                continue
            h = usable * n / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{step - 4:.1f}" height="{h:.1f}" '
                f'fill="{color(label)}"><title>{escape(names[label])} {n}</title></rect>'
            )
        if i % 2 == 0 or len(series) <= 6:
            parts.append(f'<text x="{x:.1f}" y="{height - 6}" font-size="10">{start.month}/{start.day}</text>')
    parts.append("</svg>")
    return "".join(parts)
