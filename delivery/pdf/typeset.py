"""Volume (+ language) → PDF bytes of a volume body or overlay, drawn without a layout engine.

Volume pages are a fixed grid: a header rule, then one line of text per signer at a fixed
pitch; nothing wraps, whatever overflows the text column is cut off. So the pages need no
layout, only drawing, which delivery.pdf.writer does ~20 times faster than WeasyPrint lays out
the same lines. The geometry here is the one of templates/dossier/volume.html.j2 and
overlay.html.j2 with dossier.css (A4, 16 mm margins, 8.5 pt lines at `Layout.line_height_mm`,
CSS half-leading): those templates are the reference rendering the tests compare with, line
for line, so the front (still rendered by WeasyPrint) and the volumes look the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import uharfbuzz as hb

from delivery.dossier.compose import Line, Volume
from delivery.dossier.render import Layout, Overlay, OverlayPage, Texts, line_parts, overlay, paginate
from delivery.errors import RenderError
from delivery.pdf.jobs import RenderedPdf
from delivery.pdf.writer import PdfWriter

ENGINE = f"typeset-2/harfbuzz-{hb.__version__}"  # 2: the text layer (delivery.pdf.text.layer)
FAMILIES = "DejaVu Sans,Noto Sans CJK SC,sans-serif"  # as .vol in dossier.css
MM = 72 / 25.4
PAGE_WIDTH, PAGE_HEIGHT = 210 * MM, 297 * MM
LEFT, TOP, COLUMN = 16 * MM, 16 * MM, 178 * MM
LINE_SIZE = 8.5  # .pg, .hd
HEADING_SIZE, LABEL_SIZE = 11.0, 7.5  # .heading, .op .label
CSS_LINE_HEIGHT = 1.4  # html { line-height }
RULE = 0.5  # .hd border-bottom
LABEL_TOP = 265 * MM  # .op .label, right-aligned to the column
NUMBER_COLUMN, DATE_COLUMN = 4.452, 6.446  # .hno, .hdt widths (em); .hno pads 0.636 em
NUMBER_PADDING = 0.636
TEXT = b"0.066667 0.066667 0.066667 rg"  # #111
BLUE = b"0.121569 0.305882 0.47451 rg"  # #1f4e79
GREY = b"0.266667 0.266667 0.266667 rg"  # #444
STAMP = "DossierStamp"  # the slot each page draws last: the join puts the dossier footer in it


@dataclass(frozen=True)
class VolumeJob:
    """One volume of one language's edition to draw (a pdf.Drawable): picklable."""

    label: str
    texts: Texts = field(repr=False)
    volume: Volume = field(repr=False)
    layout: Layout
    identifier: bytes
    cost: int

    def job(self) -> VolumeJob:
        return self

    def draw(self) -> RenderedPdf:
        try:
            data, pages, warnings = volume_pdf(self.texts, self.volume, self.layout,
                                               self.identifier)
        except RenderError as exc:
            raise RenderError(f"{self.label}: {exc}") from None
        except MemoryError:
            raise RenderError(f"{self.label}: out of memory") from None
        except Exception as exc:
            raise RenderError(f"{self.label}: {type(exc).__name__}: {exc}") from exc
        return RenderedPdf(self.label, data, pages, warnings, 0)


class _Grid:
    """Where the lines of a volume page go (points, from the bottom left)."""

    def __init__(self, writer: PdfWriter, layout: Layout) -> None:
        self.layout = layout
        self.pitch = layout.line_height_mm * MM
        self.ascent, self.descent = writer.metrics()

    def baseline(self, top: float, size: float, line_height: float) -> float:
        """CSS: the strut's ascent and descent centred in the line box."""
        return top + (line_height - (self.ascent + self.descent) * size) / 2 + self.ascent * size

    def header_top(self, first: bool) -> float:
        return TOP + (self.layout.heading_lines * self.pitch if first else 0)

    def line_y(self, first: bool, row: int) -> float:
        """The baseline of signer line `row` of a page, below the header line and its rule."""
        top = self.header_top(first) + self.pitch + RULE + row * self.pitch
        return PAGE_HEIGHT - self.baseline(top, LINE_SIZE, self.pitch)


def volume_pdf(texts: Texts, volume: Volume, layout: Layout,
               identifier: bytes) -> tuple[bytes, int, tuple[str, ...]]:
    """One volume's pages in one language: what render.volume_html draws (the signer lines)
    with what render.overlay_html lays over it (heading, column headers, withheld signers'
    lines, page labels), and an empty `STAMP` slot every page draws last, for the dossier
    footer the join puts in. Returns the PDF, its page count, and warnings (characters no
    installed font can draw)."""
    writer = PdfWriter(FAMILIES)
    grid = _Grid(writer, layout)
    drawn = overlay(texts, volume, layout)
    for number, (page, labels) in enumerate(zip(paginate(volume.printed_lines(), layout), drawn.pages,
                                                strict=True)):
        writer.new_page()
        _draw_body(writer, grid, page, texts, first=number == 0)
        _draw_overlay(writer, grid, drawn, labels, first=number == 0)
        writer.raw(b"q /%s Do Q" % STAMP.encode())
    return (writer.finish(identifier, PAGE_WIDTH, PAGE_HEIGHT, slots=[STAMP]), len(drawn.pages),
            tuple(writer.warnings))


def _draw_body(writer: PdfWriter, grid: _Grid, page: Sequence[Line], texts: Texts, *,
               first: bool) -> None:
    rule = PAGE_HEIGHT - grid.header_top(first) - grid.pitch - RULE
    writer.raw(b"q %s %.4f %.4f %.4f %.4f re f Q" % (BLUE, LEFT, rule, COLUMN, RULE))
    writer.raw(_clip())
    for row, line in enumerate(page):
        if line.name is not None:
            writer.text(line_parts(line, "", texts.country), LEFT, grid.line_y(first, row), size=LINE_SIZE,
                        colour=TEXT)
    writer.raw(b"Q")


def _draw_overlay(writer: PdfWriter, grid: _Grid, drawn: Overlay, page: OverlayPage, *,
                  first: bool) -> None:
    if first:
        y = PAGE_HEIGHT - grid.baseline(TOP, HEADING_SIZE, HEADING_SIZE * CSS_LINE_HEIGHT)
        writer.text([drawn.heading], LEFT, y, size=HEADING_SIZE, colour=BLUE, bold=True)
    number, date, name, city, country = drawn.columns
    y = PAGE_HEIGHT - grid.baseline(grid.header_top(first), LINE_SIZE, grid.pitch)
    right = LEFT + NUMBER_COLUMN * LINE_SIZE
    writer.text([number], right - writer.width([number], LINE_SIZE, bold=True), y,
                size=LINE_SIZE, colour=BLUE, bold=True)
    x = LEFT + (NUMBER_COLUMN + NUMBER_PADDING) * LINE_SIZE
    writer.text([date], x, y, size=LINE_SIZE, colour=BLUE, bold=True)
    writer.text([f"{name} — {city}, {country}"], x + DATE_COLUMN * LINE_SIZE, y,
                size=LINE_SIZE, colour=BLUE, bold=True)
    writer.raw(_clip())
    for row, parts in page.rows:
        writer.text(parts, LEFT, grid.line_y(first, row), size=LINE_SIZE, colour=TEXT)
    writer.raw(b"Q")
    y = PAGE_HEIGHT - grid.baseline(TOP + LABEL_TOP, LABEL_SIZE, LABEL_SIZE * CSS_LINE_HEIGHT)
    width = writer.width([page.label], LABEL_SIZE)
    writer.text([page.label], LEFT + COLUMN - width, y, size=LABEL_SIZE, colour=GREY)


def _clip() -> bytes:
    """Lines are cut off at the text column's edges (overflow: hidden)."""
    return b"q %.4f 0 %.4f %.4f re W n" % (LEFT, COLUMN, PAGE_HEIGHT)
