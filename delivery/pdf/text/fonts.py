"""Font family list → fallback chain of fonts, each loaded for HarfBuzz, in fontconfig's order.

The chain is what fontconfig sorts for the family list (as Pango asks it), one font per family:
for every character `FontChain.font_for` picks the first font that has a glyph for it, as Pango
does. Emoji prefer a colour font first, as Pango's emoji presentation does. A font is opened
only when a character needs it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass, field
from functools import cache

import uharfbuzz as hb

from delivery.errors import RenderError

# Marks, joiners and variation selectors belong to the font of the character before them.
_JOINING = {"\u200c", "\u200d", "\ufe0e", "\ufe0f"}
_MARKS = {"Mn", "Mc", "Me"}


@dataclass
class Font:
    """One font file (or one face of a collection), with HarfBuzz's view of it."""

    path: str
    index: int
    face: hb.Face = field(repr=False)
    font: hb.Font = field(repr=False)
    upem: int
    colour_png: bool  # glyphs are PNG bitmaps (Noto Color Emoji): drawn as images
    cff: bool  # PostScript outlines (an OpenType 'CFF ' table), else TrueType 'glyf'
    advances: dict[int, int] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str, index: int = 0) -> Font:
        blob = hb.Blob.from_file_path(path)
        face = hb.Face(blob, index)
        tags = set(face.table_tags)
        return cls(path, index, face, hb.Font(face), face.upem,
                   colour_png=bool(face.has_color_png), cff="CFF " in tags)

    def glyph(self, char: str) -> int | None:
        glyph: int | None = self.font.get_nominal_glyph(ord(char))
        return glyph

    def advance(self, glyph: int) -> int:
        width = self.advances.get(glyph)
        if width is None:
            width = self.advances[glyph] = self.font.get_glyph_h_advance(glyph)
        return width

    def postscript_name(self) -> str:
        name = self.face.get_name(hb.OTNameIdPredefined.POSTSCRIPT_NAME) or "Font"
        return "".join(c for c in name if c.isalnum() or c in "-_")[:60] or "Font"


class FontChain:
    """The fonts for one family list and weight, and which one draws each character."""

    def __init__(self, files: list[tuple[str, int]]) -> None:
        if not files:
            raise RenderError("fontconfig found no fonts: install fonts-dejavu-core")
        self.files = files
        self.fonts: list[Font | None] = [None] * len(files)
        self._choice: dict[str, int] = {}

    def font(self, number: int) -> Font:
        font = self.fonts[number]
        if font is None:
            font = self.fonts[number] = Font.open(*self.files[number])
        return font

    def font_for(self, char: str, previous: int = 0, *, as_emoji: bool = False) -> int:
        """The number of the font that draws `char`; `previous` is the font of the character
        before it, which keeps marks and joiners with their base. as_emoji: the character asks
        for emoji presentation (a U+FE0F follows it, as in keycaps "1️⃣")."""
        key = char + "\ufe0f" if as_emoji else char
        choice = self._choice.get(key)
        if choice is not None:
            return choice
        if char in _JOINING or unicodedata.category(char) in _MARKS:
            return previous
        choice = self._choose(char, as_emoji or is_emoji(char))
        self._choice[key] = choice
        return choice

    def _choose(self, char: str, emoji: bool) -> int:
        order = list(range(len(self.files)))
        if emoji:
            order = sorted(order, key=lambda n: not self.font(n).colour_png)
        for number in order:
            if self.font(number).glyph(char) is not None:
                return number
        return 0  # nobody has it: the first font's .notdef box, as Pango draws it


def is_emoji(char: str) -> bool:
    """Characters drawn as emoji by default (the blocks of pictographs and emoji symbols)."""
    code = ord(char)
    return 0x1F000 <= code <= 0x1FAFF or (0x2600 <= code <= 0x27BF and code in _EMOJI_SYMBOLS)


# The Emoji_Presentation characters among the older symbol blocks (Unicode emoji-data).
_EMOJI_SYMBOLS = frozenset([
    0x2614, 0x2615, 0x2648, 0x2649, 0x264A, 0x264B, 0x264C, 0x264D, 0x264E, 0x264F, 0x2650,
    0x2651, 0x2652, 0x2653, 0x267F, 0x2693, 0x26A1, 0x26AA, 0x26AB, 0x26BD, 0x26BE, 0x26C4,
    0x26C5, 0x26CE, 0x26D4, 0x26EA, 0x26F2, 0x26F3, 0x26F5, 0x26FA, 0x26FD, 0x2705, 0x270A,
    0x270B, 0x2728, 0x274C, 0x274E, 0x2753, 0x2754, 0x2755, 0x2757, 0x2795, 0x2796, 0x2797,
    0x27B0, 0x27BF])


@cache
def chain(families: str, weight: str = "regular") -> FontChain:
    """The fallback chain fontconfig gives for a CSS-like family list ("A,B,sans-serif")."""
    command = shutil.which("fc-match")
    if command is None:
        raise RenderError("fc-match is missing: install the fontconfig package")
    result = subprocess.run(  # noqa: S603 (a fixed program and a pattern we build)
        [command, "-s", "-f", "%{file}\t%{index}\t%{family[0]}\n",
         f"{families}:weight={weight}:slant=roman"],
        capture_output=True, text=True, check=False, timeout=30)
    files, seen = [], set()
    for row in result.stdout.splitlines():
        path, index, family = ([*row.split("\t"), "", "", ""])[:3]
        if path and family not in seen:
            seen.add(family)
            files.append((path, int(index or 0)))
    return FontChain(files)


def subset_tag(path: str, index: int, glyphs: list[int]) -> str:
    """The six capital letters before a subset font's name (ISO 32000-1 §9.6.4): from a hash of
    the font and the glyphs the subset keeps, so two different subsets never share one and
    the same subset always gets the same."""
    return tag_of(f"{path}\0{index}\0{','.join(map(str, glyphs))}".encode())


def tag_of(data: bytes) -> str:
    """Six capital letters from a hash of `data`: a subset tag."""
    number = int.from_bytes(hashlib.sha256(data).digest()[:8], "big")
    letters = []
    for _ in range(6):
        number, letter = divmod(number, 26)
        letters.append(chr(65 + letter))
    return "".join(letters)
