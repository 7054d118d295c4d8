"""Counts by country and cumulative counts by day → inline SVG charts (pure, no I/O).

The charts are plain vector markup, embedded in the summary page's HTML; every label is
XML-escaped here, so a country or a campaign title cannot inject markup.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from datetime import date
from xml.sax.saxutils import escape

FONT = "DejaVu Sans, Noto Sans, Noto Sans Armenian, Noto Sans Arabic, Noto Sans Hebrew, " \
       "Noto Sans CJK SC, sans-serif"
BAR_COLOR = "#1f4e79"
LINE_COLOR = "#1f4e79"
GRID_COLOR = "#c8c8c8"


LABEL_SIZE = 12  # px, the bar labels' font size
LABEL_GAP = 8    # px between a label's end and its bar


def bar_chart(rows: Sequence[tuple[str, int]], *, fmt: Callable[[int], str],
              width: int = 640, bar: int = 18, gap: int = 6, label_width: int = 190,
              measure: Callable[[str], float] | None = None,
              max_label_width: int | None = None) -> str:
    """Horizontal bars, one per (label, count) row, longest first as given.

    With `measure` (a label → its drawn width in px at LABEL_SIZE), the label column widens to
    the longest label, up to `max_label_width`, and a label still too long is shortened with
    "…" to the width it has (the table beside the chart keeps the full name); without it,
    labels are cut at 18 characters."""
    if not rows:
        return ""
    if measure is not None:
        longest = max(measure(label) for label, _ in rows)
        label_width = max(label_width, min(max_label_width or label_width,
                                           int(longest) + LABEL_GAP + 1))
        labels = [fit(label, label_width - LABEL_GAP, measure) for label, _ in rows]
    else:
        labels = [_clip(label, 18) for label, _ in rows]
    top = max(count for _, count in rows) or 1
    plot = width - label_width - 80
    height = len(rows) * (bar + gap) + gap
    out = [_open(width, height)]
    for i, ((_, count), label) in enumerate(zip(rows, labels, strict=True)):
        y = gap + i * (bar + gap)
        w = max(1.0, plot * count / top)
        out.append(f'<text x="{label_width - LABEL_GAP}" y="{y + bar * 0.72:.1f}" '
                   f'text-anchor="end" font-size="{LABEL_SIZE}">{escape(label)}</text>')
        out.append(f'<rect x="{label_width}" y="{y}" width="{w:.1f}" height="{bar}" '
                   f'fill="{BAR_COLOR}"/>')
        out.append(f'<text x="{label_width + w + 6:.1f}" y="{y + bar * 0.72:.1f}" '
                   f'font-size="12">{escape(fmt(count))}</text>')
    out.append("</svg>")
    return "".join(out)


def line_chart(points: Sequence[tuple[date, int]], *, fmt: Callable[[int], str],
               day_fmt: Callable[[date], str] = date.isoformat,
               width: int = 640, height: int = 240, max_points: int = 240) -> str:
    """Cumulative signatures per day as a line, with a light grid and first/last date labels
    (`fmt` writes the counts, `day_fmt` the dates, as the edition's language does)."""
    if not points:
        return ""
    points = _thin(points, max_points)
    left, right, top_pad, bottom = 70, 16, 12, 28
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    y_max = _nice_ceiling(max(v for _, v in points))
    first, last = points[0][0], points[-1][0]
    span = max(1, (last - first).days)
    out = [_open(width, height)]
    for k in range(5):
        value = y_max * k // 4
        y = top_pad + plot_h - plot_h * value / y_max
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
                   f'stroke="{GRID_COLOR}" stroke-width="0.8"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                   f'{escape(fmt(value))}</text>')
    coords = []
    for day, value in points:
        x = left + plot_w * (day - first).days / span
        y = top_pad + plot_h - plot_h * value / y_max
        coords.append(f"{x:.1f},{y:.1f}")
    if len(coords) == 1:
        coords.append(f"{left + plot_w},{coords[0].split(',')[1]}")
    out.append(f'<polyline points="{" ".join(coords)}" fill="none" stroke="{LINE_COLOR}" '
               f'stroke-width="2"/>')
    base = top_pad + plot_h
    out.append(f'<text x="{left}" y="{base + 18}" font-size="11">{escape(day_fmt(first))}</text>')
    out.append(f'<text x="{width - right}" y="{base + 18}" text-anchor="end" font-size="11">'
               f'{escape(day_fmt(last))}</text>')
    out.append("</svg>")
    return "".join(out)


def top_rows(rows: Sequence[tuple[str, int]], limit: int, other: str) -> list[tuple[str, int]]:
    """The `limit` largest rows, the rest summed into one row labelled `other`."""
    if len(rows) <= limit:
        return list(rows)
    head = list(rows[:limit - 1])
    return [*head, (other, sum(count for _, count in rows[limit - 1:]))]


def _open(width: int, height: int) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT}" '
            f'fill="#222">')


def fit(text: str, room: float, measure: Callable[[str], float]) -> str:
    """`text`, or its longest beginning that fits `room` with "…" after it (whole words kept
    whole where one fits; combining marks stay with their letter)."""
    if measure(text) <= room:
        return text
    cut = len(text)
    while cut > 1 and measure(text[:cut].rstrip() + "…") > room:
        cut -= 1
    while cut > 1 and unicodedata.combining(text[cut]):
        cut -= 1
    head = text[:cut]
    space = head.rfind(" ")
    if space > 0 and space >= len(head) // 2:  # end at a word when that keeps half of it
        head = head[:space]
    return head.rstrip(" ,&-–") + "…"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _thin(points: Sequence[tuple[date, int]], limit: int) -> Sequence[tuple[date, int]]:
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def _nice_ceiling(value: int) -> int:
    """The smallest of 4, 8, 20, 40, 80, 100, 200, 400, 500, 800, 1000… at or above value:
    round numbers that split into four whole grid steps."""
    magnitude = 1
    while True:
        for factor in (1, 2, 4, 5, 8):
            candidate = factor * magnitude
            if candidate >= value and candidate % 4 == 0:
                return candidate
        magnitude *= 10
