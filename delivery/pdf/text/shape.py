"""One line of text → glyph runs in visual order (bidi by FriBidi, fonts by fallback, HarfBuzz).

The line is one paragraph, left to right, and may hold Unicode isolates (FSI…PDI): the same
rules as the browser applies to `<bdi>`, so a right-to-left name keeps its place in the line.
FriBidi and HarfBuzz are the libraries Pango uses for the same work. Each run also says where
it stands in reading (logical) order and whether it reads right to left, for whoever writes the
text so that it reads back in that order.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from dataclasses import dataclass
from functools import cache

import uharfbuzz as hb

from delivery.errors import RenderError
from delivery.pdf.text.fonts import FontChain

ISOLATES = "\u2066\u2067\u2068\u2069"
EMOJI_STYLE = "\ufe0f"  # variation selector 16: draw the character before as an emoji
_DROP = {ord(c): None for c in ISOLATES}
# Letters of right-to-left scripts (and Arabic digits): only lines with one need FriBidi.
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefe\U00010800-\U00010fff"
                  "\U0001e800-\U0001efff\u200f\u202b\u202e\u2067]")
_PAR_LTR = 0x110  # FRIBIDI_PAR_LTR


@dataclass(frozen=True)
class Run:
    """Glyphs of one font, left to right as drawn; units are the font's (upem per em)."""

    font: int  # number in the FontChain
    glyphs: tuple[int, ...]
    advances: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]  # (x, y) per glyph; mostly (0, 0)
    texts: tuple[str, ...]  # the characters each glyph stands for ("" after a cluster's first)
    text: str  # the characters of the run, in logical order
    level: int = 0  # bidi embedding level; odd: drawn right to left, its glyphs (left to
    # right) are its text backwards
    order: int = 0  # its place among the line's runs in logical order

    @property
    def rtl(self) -> bool:
        return self.level % 2 == 1

    @property
    def one_to_one(self) -> bool:
        """Each glyph stands for one character: a font's glyph-to-text map can say what it
        reads (otherwise, as for ligatures or Indic clusters, the text must be given along)."""
        return len(self.glyphs) == len(self.text) and all(len(t) == 1 for t in self.texts)

    @property
    def width(self) -> int:
        return sum(self.advances)


def shape_line(text: str, fonts: FontChain) -> list[Run]:
    """The runs of `text` in visual order, ready to be drawn left to right."""
    if not has_rtl(text):
        plain = text.translate(_DROP)
        return [_shape(fonts, font, part, 0, order)
                for order, (font, part) in enumerate(_by_font(plain, fonts))]
    levels = _levels(text)
    pieces: list[tuple[int, int, str]] = []  # (level, font, text) in logical order
    previous_font = 0
    for i, (char, level) in enumerate(zip(text, levels, strict=True)):
        if char in ISOLATES:
            continue
        font = fonts.font_for(char, previous_font, as_emoji=text[i + 1:i + 2] == EMOJI_STYLE)
        previous_font = font
        if pieces and pieces[-1][0] == level and pieces[-1][1] == font:
            pieces[-1] = (level, font, pieces[-1][2] + char)
        else:
            pieces.append((level, font, char))
    runs = [(level, _shape(fonts, font, part, level, order))
            for order, (level, font, part) in enumerate(pieces)]
    return _visual_order(runs)


def text_width(text: str, fonts: FontChain, size: float) -> float:
    """The width one line of `text` is drawn at, at font size `size` (in the unit of `size`)."""
    return size * sum(run.width / fonts.font(run.font).upem for run in shape_line(text, fonts))


def has_rtl(text: str) -> bool:
    return _RTL.search(text) is not None


def _by_font(text: str, fonts: FontChain) -> list[tuple[int, str]]:
    parts: list[tuple[int, str]] = []
    start, current = 0, 0
    for i, char in enumerate(text):
        font = fonts.font_for(char, current, as_emoji=text[i + 1:i + 2] == EMOJI_STYLE)
        if font != current and i > start:
            parts.append((current, text[start:i]))
            start = i
        current = font
    if start < len(text):
        parts.append((current, text[start:]))
    return parts


def _shape(fonts: FontChain, number: int, text: str, level: int, order: int) -> Run:
    font = fonts.font(number)
    buffer = hb.Buffer()
    codepoints = [ord(c) for c in text]
    buffer.add_codepoints(codepoints)
    buffer.guess_segment_properties()
    buffer.direction = "rtl" if level % 2 else "ltr"
    hb.shape(font.font, buffer)
    infos, positions = buffer.glyph_infos, buffer.glyph_positions
    clusters = sorted({info.cluster for info in infos})
    ends = dict(zip(clusters, [*clusters[1:], len(text)], strict=True))
    texts, seen = [], set()
    for info in infos:
        if info.cluster in seen:
            texts.append("")
        else:
            seen.add(info.cluster)
            texts.append(text[info.cluster:ends[info.cluster]])
    return Run(number, tuple(info.codepoint for info in infos),
               tuple(p.x_advance for p in positions),
               tuple((p.x_offset, p.y_offset) for p in positions), tuple(texts), text, level,
               order)


def _visual_order(runs: list[tuple[int, Run]]) -> list[Run]:
    """Unicode rule L2: from the highest level down to the lowest odd one, reverse every
    stretch of runs at that level or higher."""
    if not runs:
        return []
    highest = max(level for level, _ in runs)
    lowest_odd = min((level for level, _ in runs if level % 2), default=highest + 1)
    order = list(runs)
    for level in range(highest, lowest_odd - 1, -1):
        i = 0
        while i < len(order):
            if order[i][0] >= level:
                j = i
                while j < len(order) and order[j][0] >= level:
                    j += 1
                order[i:j] = order[i:j][::-1]
                i = j
            else:
                i += 1
    return [run for _, run in order]


def _levels(text: str) -> list[int]:
    library = _fribidi()
    size = len(text)
    chars = (ctypes.c_uint32 * size)(*map(ord, text))
    types = (ctypes.c_uint32 * size)()
    brackets = (ctypes.c_uint32 * size)()
    levels = (ctypes.c_int8 * size)()
    direction = ctypes.c_uint32(_PAR_LTR)
    library.fribidi_get_bidi_types(chars, size, types)
    library.fribidi_get_bracket_types(chars, size, types, brackets)
    if library.fribidi_get_par_embedding_levels_ex(types, brackets, size,
                                                   ctypes.byref(direction), levels) == 0:
        raise RenderError("FriBidi could not order a line of right-to-left text")
    return list(levels)


@cache
def _fribidi() -> ctypes.CDLL:
    name = ctypes.util.find_library("fribidi") or "libfribidi.so.0"
    try:
        library = ctypes.CDLL(name)
    except OSError as exc:
        raise RenderError(f"FriBidi is missing ({exc}): install libfribidi0") from None
    library.fribidi_get_par_embedding_levels_ex.restype = ctypes.c_int8
    return library
