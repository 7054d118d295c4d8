"""Shaped glyphs → text operations that read back in reading order: the PDF's text layer.

What a reader extracts is the text each glyph's code maps to (the font's ToUnicode map), in an
order and with spaces it works out itself, and readers work it out differently. These were
measured (with the readers' own code at hand) and the text is written for all of them:

- pdf.js (Firefox, many web viewers) reads glyphs in content order, cuts them into items where
  the text moves backwards or a marked-content sequence begins or ends, and reorders each item
  that holds right-to-left letters as if it were drawn in visual order; it ignores /ActualText,
  skips a glyph whose text ends with a format character (ZWJ, LRM), takes one whose text begins
  with a space for a space, and finds spaces only where the text moves forward.
- MuPDF 1.21 (mutool) reads glyphs in content order without reordering (right-to-left text must
  come in reading order), ignores /ActualText and invisible (mode 3) text, and garbles a code
  mapped to several characters when one of them is outside the BMP.
- poppler (pdftotext) orders glyphs by position and reorders right-to-left stretches itself,
  running on through neutral characters (" — ") into the next right-to-left stretch; it honours
  /ActualText, also for invisible text.

So: each glyph's code maps to the characters it stands for, split over a cluster's glyphs;
right-to-left runs are written in reading order, glyph by glyph, each where shaping put it; a
right-to-left glyph that follows a space further to the left carries the space in its own text
(pdf.js would lose it) and, for pdf.js alone, is repeated invisibly just after the text before
it (invisible text with an empty /ActualText, which MuPDF and poppler both pass over); an
invisible LRM closes each right-to-left run for poppler; and emoji, drawn as images, carry their
characters as blank glyphs, one code point each except a joiner before a BMP character.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

LRM = "\u200e"
EMPTY_ACTUAL_TEXT = b"/Span <</ActualText <>>> BDC"
BACKWARD = -0.2  # ems: pdf.js starts a new item when the text moves back further than this
STILL = 0.04  # ems: pdf.js keeps a pending space only when the text moves forward past this
NUDGE = 0.05  # ems: how far after the text before it pdf.js's copy of a glyph goes
CARRIER = 0.01  # horizontal scale of the blank glyphs that carry characters


class Codes(Protocol):
    """A font's codes: one per glyph and the text it stands for (writer._Used)."""

    widths: dict[int, int]
    blank: int  # the glyph of a space
    blank_width: float  # its width in ems

    def code(self, glyph: int, text: str) -> int: ...


@dataclass(frozen=True)
class Glyph:
    """One glyph of a line stretch, where shaping put it (ems from the stretch's start)."""

    font: tuple[int, int]  # (0 regular | 1 bold, number in that chain)
    glyph: int
    x: float
    dy: float
    advance: float
    text: str  # its cluster's characters on the cluster's first glyph (visual order), else ""
    run: int  # its run's place in reading order
    cluster: int  # its cluster's number within the run, left to right
    level: int  # bidi embedding level: odd reads right to left
    colour: bool = False  # a colour (bitmap) glyph, drawn as an image elsewhere


Outline = tuple[tuple[int, int], int, float, float]  # (font, glyph, x, dy) of a glyph drawn as a path


def reading_order(glyphs: Sequence[Glyph], use: Callable[[tuple[int, int]], Codes]) -> tuple[
        bytes, tuple[tuple[int, int], ...], list[Outline]]:
    """Text operations for one stretch, in reading order, relative to where the caller put
    the text matrix (scaled to the font size, at the stretch's start); the fonts they select,
    first and last (the caller selects the first); and the glyphs written without text (marks
    drawn apart from their base, glyphs beyond a cluster's characters), which the caller draws
    as outlines."""
    writer = _Writer(use)
    runs: dict[int, list[Glyph]] = {}
    for glyph in glyphs:
        runs.setdefault(glyph.run, []).append(glyph)
    for order in sorted(runs):
        run = runs[order]
        clusters: list[list[Glyph]] = []
        for glyph in run:
            if not clusters or glyph.cluster != clusters[-1][0].cluster:
                clusters.append([])
            clusters[-1].append(glyph)
        rtl = run[0].level % 2 == 1
        if rtl:
            clusters = [cluster[::-1] for cluster in reversed(clusters)]
        for cluster in clusters:
            writer.cluster(cluster, rtl)
        if rtl and run[0].level == 1:
            writer.close_rtl(max(g.x + g.advance for g in run), run[0].font)
    writer.flush()
    fonts = writer.fonts or [glyphs[0].font if glyphs else (0, 0)]
    return b" ".join(writer.ops), (fonts[0], fonts[-1]), writer.outlines


class _Writer:
    """The operations of one stretch, and where pdf.js thinks the text stands."""

    def __init__(self, use: Callable[[tuple[int, int]], Codes]) -> None:
        self.use = use
        self.ops: list[bytes] = []
        self.fonts: list[tuple[int, int]] = []
        self.x = 0.0  # the text line matrix, in ems from the stretch's start
        self.rise = 0.0
        self.end: float | None = None  # where pdf.js's last glyph with a width ended
        self.space: Glyph | None = None  # a space not yet written
        self.after_rtl = False  # the last glyph written read right to left
        self.outlines: list[tuple[tuple[int, int], int, float, float]] = []

    def font(self, font: tuple[int, int]) -> None:
        if not self.fonts or self.fonts[-1] != font:
            if self.fonts:
                self.ops.append(b"/F%d_%d 1 Tf" % font)
            self.fonts.append(font)

    def move(self, x: float, dy: float) -> None:
        if abs(x - self.x) > 1e-6:
            self.ops.append(b"%.4f 0 Td" % (x - self.x))
            self.x = x
        if dy != self.rise:
            self.ops.append(b"%.5f Ts" % dy)
            self.rise = dy

    def show(self, font: tuple[int, int], glyph: int, text: str, x: float, dy: float = 0.0,
             *, prefix: bytes = b"", suffix: bytes = b"") -> int:
        self.font(font)
        self.move(x, dy)
        codes = self.use(font)
        code = codes.code(glyph, text)
        self.ops.append(prefix + b"<%04x> Tj" % code + suffix)
        return code

    def cluster(self, cluster: list[Glyph], rtl: bool) -> None:
        first = cluster[0]
        text = next((g.text for g in cluster if g.text), "")
        if first.colour:
            self.pending()
            self.colour(first, text)
            return
        if text.isspace() and len(cluster) == 1:
            if self.space is not None:
                self.pending()
            self.space = first
            return
        parts, rest = split(text, [g.advance for g in cluster], rtl)
        for glyph, part in zip(cluster, parts, strict=True):
            if part is None:
                self.outlines.append((glyph.font, glyph.glyph, glyph.x, glyph.dy))
            else:
                self.glyph(glyph, part, rtl, separate=False)
        if rest:
            # the characters no glyph stands for alone, on narrow blank glyphs: after the
            # glyph, or, right to left, just left of the cluster (poppler orders by position),
            # each its own pdf.js item
            left = min(g.x for g in cluster)
            codes = self.use((first.font[0], 0))
            for index, part in enumerate(rest):
                x = (left - CARRIER * (index + 1) if rtl else
                     max(g.x + g.advance for g in cluster))
                self.show((first.font[0], 0), codes.blank, part, x,
                          prefix=b"/Span BMC 1 Tz ", suffix=b" 100 Tz EMC")
                if not _marks(part):
                    self.end = x + codes.blank_width * CARRIER
        self.after_rtl = rtl

    def glyph(self, glyph: Glyph, text: str, rtl: bool, *, separate: bool) -> None:
        end, space = self.end, self.space
        backward = end is not None and glyph.x < end + STILL
        if space is not None and backward:
            # pdf.js drops a space followed by text further left: the glyph takes the space in
            # its own text (pdf.js reads that as the space), pdf.js gets the glyph from an
            # invisible copy just after the text before it, poppler from /ActualText
            self.space = None
            self.show(glyph.font, glyph.glyph, " " + text, glyph.x, glyph.dy,
                      prefix=b"/Span <</ActualText %s>> BDC " % utf16(text), suffix=b" EMC")
            assert end is not None
            self.copy(glyph, text, end + NUDGE)
            return
        self.pending()
        if (self.after_rtl and not rtl and end is not None and glyph.x > end + STILL
                and glyph.advance > 0):
            # after right-to-left text, a character that does not start with a space: pdf.js
            # would put one before it; it reads an invisible copy placed where the text before
            # it ended instead, and skips the glyph itself (its text ends with an LRM)
            self.show(glyph.font, glyph.glyph, text + LRM, glyph.x, glyph.dy,
                      prefix=b"/Span <</ActualText %s>> BDC " % utf16(text), suffix=b" EMC")
            self.copy(glyph, text, end)
            return
        if rtl and end is not None and glyph.x - end >= BACKWARD:
            separate = True  # too small a step back for pdf.js to start an item by itself
        self.show(glyph.font, glyph.glyph, text, glyph.x, glyph.dy,
                  prefix=b"/Span BMC " if separate else b"", suffix=b" EMC" if separate else b"")
        if glyph.advance > 0 and not _marks(text):
            self.end = glyph.x + glyph.advance

    def copy(self, glyph: Glyph, text: str, x: float) -> None:
        """The text of a glyph again, for pdf.js alone: on an invisible blank glyph (MuPDF
        skips those), with an empty /ActualText (poppler skips that)."""
        base = (glyph.font[0], 0)
        codes = self.use(base)
        self.show(base, codes.blank, text, x, 0.0,
                  prefix=EMPTY_ACTUAL_TEXT + b" 3 Tr ", suffix=b" 0 Tr EMC")
        self.end = x + codes.blank_width

    def pending(self) -> None:
        space = self.space
        if space is not None:
            self.space = None
            self.show(space.font, space.glyph, " ", space.x, space.dy)

    def close_rtl(self, x: float, font: tuple[int, int]) -> None:
        """An LRM where a right-to-left run ends, for poppler, which would otherwise read the
        next right-to-left run of the line (a city after a name) as part of this one: a blank
        glyph, invisible (MuPDF skips it), whose text pdf.js skips (it ends with a format
        character)."""
        base = (font[0], 0)
        self.pending()
        # as narrow as can be: poppler finds spaces in the gaps between glyphs
        self.show(base, self.blank(base), LRM, x, prefix=b"3 Tr 1 Tz ", suffix=b" 100 Tz 0 Tr")
        self.after_rtl = True

    def blank(self, font: tuple[int, int]) -> int:
        return self.use((font[0], 0)).blank

    def colour(self, glyph: Glyph, text: str) -> None:
        base = (glyph.font[0], 0)
        codes = self.use(base)
        self.font(base)
        self.move(glyph.x, 0.0)
        self.ops.append(carriers(codes, text, glyph.advance))
        self.end = glyph.x + glyph.advance
        self.after_rtl = glyph.level % 2 == 1

    def flush(self) -> None:
        self.pending()
        if self.rise:
            self.ops.append(b"0 Ts")
            self.rise = 0.0


def carriers(codes: Codes, text: str, width: float) -> bytes:
    """A colour glyph's characters as blank glyphs drawn where it is, together as wide as it,
    in fill mode (MuPDF skips invisible text; a blank glyph draws nothing anyway), one unit of
    `carried_units` each."""
    units = carried_units(text)
    scale = 100 * width / (len(units) * codes.blank_width) if codes.blank_width else 100
    codes_ = b"".join(b"<%04x>" % codes.code(codes.blank, unit) for unit in units)
    return b"%.3f Tz [%s] TJ 100 Tz" % (scale, codes_)


def carried_units(text: str) -> list[str]:
    """An emoji sequence's characters in the units its blank glyphs carry: a format character
    (ZWJ) goes with the character after it when that one is in the BMP (🏃‍♀, 🏳️‍⚧), since pdf.js
    skips a text that ends in one; everything else goes alone, since MuPDF cannot read a code
    mapped to several characters when one of them is beyond the BMP. So pdf.js loses a ZWJ
    only before a character beyond the BMP (👨‍👩); nothing written in a text layer can keep
    it for both readers (its own text, it is skipped; joined to what follows, MuPDF garbles)."""
    units: list[str] = []
    for char in text:
        if units and _is_format(units[-1]) and ord(char) <= 0xFFFF:
            units[-1] += char
        else:
            units.append(char)
    return units


def _is_format(text: str) -> bool:
    return unicodedata.category(text[-1]) == "Cf"


def split(text: str, advances: Sequence[float], rtl: bool) -> tuple[list[str | None], list[str]]:
    """A cluster's characters shared out over its glyphs in the order they are written, so
    that read one after another they give the text, and what is left for blank glyphs written
    after them. Characters go in units: one character with any format characters before it
    (pdf.js skips a text that ends in one). Left to right, each glyph takes a unit and the last
    one what is left over, except that a single glyph keeps just its first unit when the rest
    holds a nonspacing mark (pdf.js gives a text holding a mark no width, which on a word's
    first glyph doubles the space before it); a glyph without an advance after the first (a
    mark, which MuPDF would take to end where it is drawn, often left of its base, and so find
    a space after it) takes none. Right to left, the first glyph (the base, in
    reading order) takes the first unit and the others none (pdf.js reverses the characters
    of one item; poppler puts a mark drawn above its base on a line of its own), the rest
    going to blank glyphs. A glyph left without a character gets None: it is drawn as its
    outline."""
    units: list[str] = []
    prefix = ""
    for char in text:
        if unicodedata.category(char) == "Cf":
            prefix += char
        else:
            units.append(prefix + char)
            prefix = ""
    if prefix:
        if units:
            units[-1] += prefix
        else:
            units.append(prefix)
    glyphs = len(advances)
    if not units:
        return [None] * glyphs, []
    if rtl:
        return [units[0], *([None] * (glyphs - 1))], units[1:]
    spacing = [i for i, advance in enumerate(advances) if i == 0 or advance > 0]
    parts: list[str | None] = [None] * glyphs
    rest: list[str] = []
    if len(units) <= len(spacing):
        for i, unit in zip(spacing, units, strict=False):
            parts[i] = unit
    elif len(spacing) == 1 and _marks("".join(units[1:])):
        parts[0], rest = units[0], ["".join(units[1:])]
    else:
        for i, unit in zip(spacing, [*units[:len(spacing) - 1],
                                     "".join(units[len(spacing) - 1:])], strict=True):
            parts[i] = unit
    return parts, rest


def glyph_texts(texts: Sequence[str], advances: Sequence[float]) -> list[tuple[str | None, str]]:
    """The text of each glyph of a left-to-right run and what a blank glyph after it carries
    (see split), from the cluster text on each cluster's first glyph."""
    out: list[tuple[str | None, str]] = []
    start = 0
    for i in range(1, len(texts) + 1):
        if i == len(texts) or texts[i]:
            parts, rest = split(texts[start], advances[start:i], False)
            out += [(part, "") for part in parts]
            if rest:
                out[-1] = (out[-1][0], "".join(rest))
            start = i
    return out


def to_unicode(texts: dict[int, str]) -> bytes:
    rows = [b"<%04x> <%s>" % (code, text.encode("utf-16-be").hex().encode())
            for code, text in sorted(texts.items()) if text]
    body = [b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
            b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
            b"/CMapName /Adobe-Identity-UCS def /CMapType 2 def",
            b"1 begincodespacerange <0000> <ffff> endcodespacerange"]
    for start in range(0, len(rows), 100):
        chunk = rows[start:start + 100]
        body += [b"%d beginbfchar" % len(chunk), *chunk, b"endbfchar"]
    body.append(b"endcmap CMapName currentdict /CMap defineresource pop end end")
    return b"\n".join(body)


def utf16(text: str) -> bytes:
    return b"<feff%s>" % text.encode("utf-16-be").hex().encode()


def _marks(text: str) -> bool:
    """pdf.js takes a glyph whose text holds a nonspacing mark for one without a width."""
    return any(unicodedata.category(char) == "Mn" for char in text)
