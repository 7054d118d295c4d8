"""Text at positions → PDF bytes: shaped glyphs, embedded font subsets, colour glyphs as images.

A small page writer for documents whose layout is known in advance (see delivery.pdf.typeset): the
caller says where each line of text goes; this module shapes it (delivery.pdf.text.shape), draws it,
and embeds what was used: each font as a subset in which the glyph numbers the content streams
were written with still select the same glyphs (see _subset), and colour emoji as bitmap images.
Same input, same bytes.

The text reads back, in reading order, in readers that read it in different ways (see
delivery.pdf.text.layer): every glyph drawn is written with a code of its own for each text it
stands for, so the font's ToUnicode map says exactly what each one reads as (a ligature, one
glyph of an Indic cluster, a letter of a right-to-left word); right-to-left runs are written in
reading order, each glyph placed where shaping put it; emoji drawn as images carry their text as
invisible glyphs laid over them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pikepdf
import uharfbuzz as hb
from fontTools import cffLib
from PIL import Image

from delivery.errors import RenderError
from delivery.pdf.text import layer
from delivery.pdf.text.fonts import Font, chain, subset_tag
from delivery.pdf.text.shape import Run, has_rtl, shape_line

FIGURES = "0123456789\u2007"  # the running number: figures and figure spaces
_WORDS = re.compile(r"\s*\S+\s*")  # a word with the spaces around it


@dataclass
class _Used:
    """What one font contributes to the document: the codes its glyphs were written with.

    A TrueType font's codes are numbered in order of first use, one per (glyph, text), and its
    CIDToGIDMap says which glyph each draws; a CFF font's code is its glyph's CID (no such map
    exists for CFF), so each glyph keeps the first text it was used for."""

    font: Font
    codes: dict[tuple[int, str], int] = field(default_factory=dict)
    glyphs: dict[int, int] = field(default_factory=dict)  # code → glyph
    texts: dict[int, str] = field(default_factory=dict)  # code → text
    widths: dict[int, int] = field(default_factory=dict)  # code → width in 1000ths of an em
    blank: int = 0  # the glyph of a space: drawn for characters that have a glyph elsewhere
    blank_width: float = 0.0  # its width in ems

    def __post_init__(self) -> None:
        self.blank = self.font.glyph(" ") or 0
        self.blank_width = self.font.advance(self.blank) / self.font.upem

    def code(self, glyph: int, text: str) -> int:
        key = (glyph, text)
        code = self.codes.get(key)
        if code is None:
            if self.font.cff:
                code = glyph
                self.texts.setdefault(code, text)
            else:
                code = len(self.glyphs) + 1  # 0 stays unused: some readers take it for .notdef
                self.texts[code] = text
            self.codes[key] = code
            self.glyphs[code] = glyph
            self.widths[code] = round(self.font.advance(glyph) * 1000 / self.font.upem)
        return code


@dataclass(frozen=True)
class _Piece:
    """A shaped stretch of a line, ready to draw: text operations whose positions are relative to
    where the piece starts (in ems of a text matrix scaled to the font size), and colour glyphs
    drawn as images. `flows`: the operations move only the text cursor, from the piece's start
    to its end, so the piece can follow another without being placed, and the next one it;
    otherwise they move the line matrix from the piece's start (Td), which must be put there."""

    show: bytes
    width: float  # in ems
    flows: bool = True
    pictures: tuple[tuple[int, int, int, float], ...] = ()  # (bold, font, glyph, x in ems)
    fonts: tuple[tuple[int, int], ...] = ()  # the fonts `show` selects, first and last
    outlines: tuple[layer.Outline, ...] = ()  # glyphs drawn as paths (see layer.split)


@dataclass
class _Page:
    content: list[bytes] = field(default_factory=list)
    images: set[tuple[int, int, int]] = field(default_factory=set)


class PdfWriter:
    """Pages of text lines in one family list (regular and bold), written as one PDF."""

    def __init__(self, families: str) -> None:
        self.chains = (chain(families), chain(families, "bold"))
        self.pdf = pikepdf.new()
        self.used: dict[tuple[int, int], _Used] = {}
        self.pieces: dict[tuple[str, int], list[_Piece]] = {}
        self.pages: list[_Page] = []
        self.warnings: list[str] = []
        self.figures = self._figures()

    def metrics(self, bold: bool = False) -> tuple[float, float]:
        """Ascent and descent of the first font, in ems: what CSS sizes a line box by."""
        base = self.chains[bold].font(0)
        extents = base.font.get_font_extents("ltr")
        return extents.ascender / base.upem, -extents.descender / base.upem

    def new_page(self) -> None:
        self.pages.append(_Page())

    def raw(self, operations: bytes) -> None:
        self.pages[-1].content.append(operations)

    def width(self, parts: Sequence[str], size: float, bold: bool = False) -> float:
        return sum(p.width for part in parts for p in self._pieces(part, bold)) * size

    def text(self, parts: Sequence[str], x: float, y: float, *, size: float, colour: bytes,
             bold: bool = False) -> None:
        """One line, its baseline starting at (x, y) in points from the bottom left."""
        page = self.pages[-1]
        out, pictures = [b"BT", colour], []
        current = None
        cursor = None  # where the text cursor stands, when a piece just left it at x
        for part in parts:
            for piece in self._pieces(part, bold):
                if piece.show:
                    if cursor != x or not piece.flows:
                        out.append(_matrix(size, x, y))
                    if piece.fonts and piece.fonts[0] != current:
                        out.append(b"/F%d_%d 1 Tf" % piece.fonts[0])
                    out.append(piece.show)
                    if piece.fonts:
                        current = piece.fonts[-1]
                    cursor = x + piece.width * size if piece.flows else None
                for bold_, number, glyph, dx in piece.pictures:
                    pictures.append(self._picture((bold_, number), glyph, x + dx * size, y, size))
                    page.images.add((bold_, number, glyph))
                for font, glyph, dx, dy in piece.outlines:
                    pictures.append(b"q %.4f 0 0 %.4f %.3f %.3f cm %s Q" % (
                        size, size, x + dx * size, y + dy * size, self._outline(font, glyph)))
                x += piece.width * size
        out.append(b"ET")
        page.content.append(b" ".join(out + pictures))

    def _pieces(self, text: str, bold: bool) -> list[_Piece]:
        key = (text, bold)
        pieces = self.pieces.get(key)
        if pieces is None:
            if not bold and self.figures and not text.strip(FIGURES):
                pieces = [self._number(text, self.figures)]
            elif " " in text.strip() and not has_rtl(text):
                # word by word: a new name is mostly words seen before (shaping stops at
                # spaces anyway: no kerning or ligature crosses one)
                pieces = [piece for word in _WORDS.findall(text)
                          for piece in self._pieces(word, bold)]
            elif has_rtl(text):
                pieces = [self._bidi(shape_line(text, self.chains[bold]), bold)]
            else:
                pieces = [self._piece(run, bold) for run in shape_line(text, self.chains[bold])]
            self.pieces[key] = pieces
        return pieces

    def _figures(self) -> dict[str, tuple[int, int]]:
        """Glyph and width of each figure, when the first font sets them without kerning: the
        running number, new on every line, then needs no shaping."""
        font = self.chains[0].font(0)
        runs = shape_line(FIGURES * 2, self.chains[0])
        run = runs[0]
        if len(runs) != 1 or run.font != 0 or len(run.glyphs) != len(FIGURES) * 2 or any(
                advance != font.advance(glyph) or offset != (0, 0)
                for glyph, advance, offset in zip(run.glyphs, run.advances, run.offsets,
                                                  strict=True)):
            return {}
        return {char: (glyph, advance) for char, glyph, advance in
                zip(FIGURES, run.glyphs, run.advances, strict=False)}

    def _number(self, text: str, figures: dict[str, tuple[int, int]]) -> _Piece:
        used = self._use((0, 0))
        codes = [used.code(figures[char][0], char) for char in text]
        show = b"[<" + b"".join(b"%04x" % code for code in codes) + b">] TJ"
        width = sum(figures[char][1] for char in text) / used.font.upem
        return _Piece(show, width, fonts=((0, 0),))

    def _piece(self, run: Run, bold: bool) -> _Piece:
        key = (int(bold), run.font)
        used = self._use(key)
        self._check(run, used)
        if used.font.colour_png:
            return self._bidi([run], bold)
        show, outlines = _show(run, used, key, self._use((key[0], 0)))
        return _Piece(show, run.width / used.font.upem, fonts=(key,), outlines=tuple(outlines))

    def _check(self, run: Run, used: _Used) -> None:
        if 0 in run.glyphs:
            missing = ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(run.text)
                                if used.font.glyph(c) is None)
            self.warnings.append(f"no installed font has a glyph for {missing} (.notdef drawn)")

    def _bidi(self, runs: list[Run], bold: bool) -> _Piece:
        """A stretch holding right-to-left text or colour glyphs: its glyphs written in reading
        order, each one placed where shaping put it (see delivery.pdf.text.layer)."""
        glyphs: list[layer.Glyph] = []
        pictures: list[tuple[int, int, int, float]] = []
        pen = 0.0
        for run in runs:  # visual order
            key = (int(bold), run.font)
            used = self._use(key)
            self._check(run, used)
            em = 1 / used.font.upem
            colour = used.font.colour_png
            x, cluster = pen, -1
            for glyph, advance, (dx, dy), text in zip(run.glyphs, run.advances, run.offsets,
                                                      run.texts, strict=True):
                if text:
                    cluster += 1
                if colour and text:
                    pictures.append((key[0], key[1], glyph, x))
                glyphs.append(layer.Glyph(key, glyph, x + dx * em, dy * em, advance * em,
                                          text, run.order, cluster, run.level, colour))
                x += advance * em
            pen += run.width * em
        show, fonts, outlines = layer.reading_order(glyphs, self._use)
        return _Piece(show, pen, flows=False, pictures=tuple(pictures), fonts=fonts,
                      outlines=tuple(outlines))

    def _outline(self, key: tuple[int, int], glyph: int) -> bytes:
        """A glyph as a filled path, in ems from its origin: for the rare glyph of a cluster that
        has more glyphs than characters, which no text can be given to."""
        font = self._use(key).font
        pen = _PathPen(1 / font.upem)
        font.font.draw_glyph_with_pen(glyph, pen)
        return b" ".join(pen.ops) + b" f" if pen.ops else b""

    def _use(self, key: tuple[int, int]) -> _Used:
        used = self.used.get(key)
        if used is None:
            used = self.used[key] = _Used(self.chains[key[0]].font(key[1]))
        return used

    def _picture(self, font: tuple[int, int], glyph: int, x: float, y: float,
                 size: float) -> bytes:
        """A colour glyph, as its bitmap placed where the font puts it."""
        face = self._use(font).font
        extents = face.font.get_glyph_extents(glyph)
        if extents is None or extents.width == 0:
            return b""
        scale = size / face.upem
        width, height = extents.width * scale, -extents.height * scale
        left, top = x + extents.x_bearing * scale, y + extents.y_bearing * scale
        return b"q %.3f 0 0 %.3f %.3f %.3f cm /E%d_%d_%d Do Q" % (
            width, height, left, top - height, *font, glyph)

    def finish(self, identifier: bytes, width: float, height: float,
               slots: Sequence[str] = ()) -> bytes:
        """The document. Its pages share one resource dictionary (fonts, images, and an empty
        form XObject per name in `slots`), so whoever joins it into a larger PDF can put
        something in a slot, for every page at once, with one assignment."""
        pdf = self.pdf
        fonts = {f"/F{b}_{n}": _embed(pdf, used) for (b, n), used in sorted(self.used.items())
                 if not used.font.colour_png and used.codes}
        xobjects = {f"/E{b}_{n}_{g}": self._image((b, n, g)) for b, n, g in
                    sorted({key for page in self.pages for key in page.images})}
        for slot in slots:
            xobjects[f"/{slot}"] = pdf.make_stream(
                b"", Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Form, BBox=[0, 0, 0, 0])
        resources = pdf.make_indirect(pikepdf.Dictionary(
            Font=pikepdf.Dictionary(fonts), XObject=pikepdf.Dictionary(xobjects)))
        for page in self.pages:
            pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
                Type=pikepdf.Name.Page, MediaBox=[0, 0, width, height],
                Contents=pdf.make_stream(b"\n".join(page.content)), Resources=resources)))
        buffer = io.BytesIO()
        pdf.trailer.ID = pikepdf.Array([pikepdf.String(identifier), pikepdf.String(identifier)])
        pdf.save(buffer, static_id=True, compress_streams=True,
                 object_stream_mode=pikepdf.ObjectStreamMode.generate)
        return buffer.getvalue()

    def _image(self, key: tuple[int, int, int]) -> pikepdf.Object:
        font = self._use(key[:2]).font
        png = font.font.get_glyph_color_png(key[2])
        try:
            picture = Image.open(io.BytesIO(png.data)).convert("RGBA")
        except (OSError, ValueError) as exc:
            raise RenderError(f"emoji glyph {key[2]} of {font.path}: {exc}") from None
        common = {"Type": pikepdf.Name.XObject, "Subtype": pikepdf.Name.Image,
                  "Width": picture.width, "Height": picture.height, "BitsPerComponent": 8}
        alpha = self.pdf.make_stream(picture.getchannel("A").tobytes(),
                                     ColorSpace=pikepdf.Name.DeviceGray, **common)
        # no /Interpolate: PDF/A forbids it, and viewers smooth scaled images anyway
        return self.pdf.make_stream(picture.convert("RGB").tobytes(),
                                    ColorSpace=pikepdf.Name.DeviceRGB, SMask=alpha, **common)


class _PathPen:
    """A fontTools-style pen writing PDF path operators, scaled by `scale`."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.ops: list[bytes] = []
        self.last = (0.0, 0.0)

    def _xy(self, *points: tuple[float, float]) -> bytes:
        return b" ".join(b"%.4f %.4f" % (x * self.scale, y * self.scale) for x, y in points)

    def moveTo(self, point: tuple[float, float]) -> None:
        self.ops.append(self._xy(point) + b" m")
        self.last = point

    def lineTo(self, point: tuple[float, float]) -> None:
        self.ops.append(self._xy(point) + b" l")
        self.last = point

    def qCurveTo(self, *points: tuple[float, float]) -> None:
        # one quadratic segment (harfbuzz hands them one at a time) as a cubic
        control, end = points[-2], points[-1]
        (x0, y0), (cx, cy), (x1, y1) = self.last, control, end
        first = (x0 + 2 / 3 * (cx - x0), y0 + 2 / 3 * (cy - y0))
        second = (x1 + 2 / 3 * (cx - x1), y1 + 2 / 3 * (cy - y1))
        self.ops.append(self._xy(first, second, end) + b" c")
        self.last = end

    def curveTo(self, *points: tuple[float, float]) -> None:
        self.ops.append(self._xy(*points[-3:]) + b" c")
        self.last = points[-1]

    def closePath(self) -> None:
        self.ops.append(b"h")


def _show(run: Run, used: _Used, key: tuple[int, int],
          base: _Used) -> tuple[bytes, list[layer.Outline]]:
    """A left-to-right run as TJ operations for a text matrix scaled to the font size (so the
    same bytes serve any size): the glyphs, nudged where shaping moved them away from their
    widths in the font dictionary (kerning, marks), marks raised or lowered with a text rise, in
    ems. The cursor ends where the shaped run ends, so runs can follow one another without a
    move. Each glyph's code says which of its cluster's characters it reads as."""
    font = used.font
    per_unit = 1000 / font.upem
    items: list[bytes] = []
    ops: list[bytes] = []
    cursor = 0.0  # where the PDF's text cursor is, in 1000ths of an em (W widths, TJ numbers)
    pen = 0.0  # where shaping puts the next glyph, in 1000ths of an em
    rise = 0
    outlines: list[layer.Outline] = []
    texts = layer.glyph_texts(run.texts, run.advances)
    for glyph, advance, (dx, dy), (text, carried) in zip(run.glyphs, run.advances, run.offsets,
                                                         texts, strict=True):
        if text is None:  # a mark, or more glyphs than characters: drawn as its outline
            outlines.append((key, glyph, (pen + dx * per_unit) / 1000, dy / font.upem))
        else:
            code = used.code(glyph, text)
            if dy != rise:
                if items:
                    ops.append(b"[" + b"".join(items) + b"] TJ")
                    items = []
                rise = dy
                ops.append(b"%.5f Ts" % (dy / font.upem))
            move = round(pen + dx * per_unit - cursor)
            if move:
                items.append(b"%d" % -move)
                cursor += move
            items.append(b"<%04x>" % code)
            cursor += used.widths[code]
        pen += advance * per_unit
        if carried:  # the cluster's other characters, on a narrow blank glyph after it
            move = round(pen - cursor)
            if move:
                items.append(b"%d" % -move)
                cursor += move
            if items:
                ops.append(b"[" + b"".join(items) + b"] TJ")
                items = []
            switch = base is not used
            ops.append((b"/F%d_0 1 Tf " % key[0] if switch else b"") + b"%g Tz <%04x> Tj 100 Tz"
                       % (100 * layer.CARRIER, base.code(base.blank, carried))
                       + (b" /F%d_%d 1 Tf" % key if switch else b""))
            cursor += base.blank_width * 1000 * layer.CARRIER
    move = round(pen - cursor)
    if move:
        items.append(b"%d" % -move)
    if items:
        ops.append(b"[" + b"".join(items) + b"] TJ")
    if rise:
        ops.append(b"0 Ts")
    return b" ".join(ops), outlines


def _embed(pdf: pikepdf.Pdf, used: _Used) -> pikepdf.Object:
    font = used.font
    glyphs = sorted(set(used.glyphs.values()) | {0})
    program, kind = _subset(font, glyphs)
    name = pikepdf.Name(f"/{subset_tag(font.path, font.index, glyphs)}+{font.postscript_name()}")
    if kind == "TrueType":
        stream = pdf.make_stream(program, Length1=len(program))
    else:
        stream = pdf.make_stream(program, Subtype=pikepdf.Name(
            "/CIDFontType0C" if kind == "CFF" else "/OpenType"))
    extents = font.font.get_font_extents("ltr")
    ascent = round(extents.ascender * 1000 / font.upem)
    descent = round(extents.descender * 1000 / font.upem)
    descriptor = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor, FontName=name, Flags=4,
        FontBBox=[0, descent, max(used.widths.values(), default=1000), ascent],
        ItalicAngle=0, Ascent=ascent, Descent=descent, CapHeight=ascent, StemV=80))
    descriptor[pikepdf.Name("/FontFile3" if font.cff else "/FontFile2")] = stream
    widths: list[object] = []
    for code in sorted(used.widths):
        widths += [code, [used.widths[code]]]
    cid_font = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name(
            "/CIDFontType0" if font.cff else "/CIDFontType2"),
        BaseFont=name, CIDSystemInfo=pikepdf.Dictionary(
            Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"),
            Supplement=0),
        W=widths, FontDescriptor=descriptor))
    if not font.cff:
        table = bytearray(2 * (max(used.glyphs, default=0) + 1))
        for code, glyph in used.glyphs.items():
            table[2 * code:2 * code + 2] = glyph.to_bytes(2, "big")
        cid_font.CIDToGIDMap = pdf.make_stream(bytes(table))
    return pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type0, BaseFont=name,
        Encoding=pikepdf.Name("/Identity-H"), DescendantFonts=[cid_font],
        ToUnicode=pdf.make_stream(layer.to_unicode(used.texts))))


def _subset(font: Font, glyphs: list[int]) -> tuple[bytes, str]:
    """The font program with only the glyphs used, and its PDF kind (FontFile2 TrueType, bare
    CFF, or OpenType). Content streams name glyphs by their numbers in the whole font, so
    those must still select them: a TrueType subset keeps every glyph at its number; a
    CID-keyed CFF font (the CJK ones) keeps each glyph's CID, which is what a PDF CID font
    selects by, so it is cut down to the glyphs used (a hundredth of the size of keeping the
    numbers: a CFF index does not shrink for empty glyphs)."""
    if font.cff:
        compact = _hb_subset(font, glyphs, retain=False)
        cff = bytes(compact.reference_table("CFF ").data)
        if _cids(cff) == sorted(set(glyphs) | {0}):
            return cff, "CFF"
    face = _hb_subset(font, glyphs, retain=True)
    return bytes(face.blob.data), "OpenType" if font.cff else "TrueType"


def _hb_subset(font: Font, glyphs: list[int], *, retain: bool) -> hb.Face:
    subset_input = hb.SubsetInput()
    subset_input.glyph_set.update(glyphs)
    subset_input.flags = hb.SubsetFlags.DESUBROUTINIZE | hb.SubsetFlags.PASSTHROUGH_UNRECOGNIZED
    if retain:
        subset_input.flags |= hb.SubsetFlags.RETAIN_GIDS
    drop = subset_input.sets(hb.SubsetInputSets.DROP_TABLE_TAG)
    drop.update([_tag(t) for t in (b"GPOS", b"GSUB", b"GDEF", b"BASE", b"JSTF", b"DSIG",
                                   b"EBDT", b"EBLC", b"SVG ")])
    face = hb.subset(font.face, subset_input)
    if face is None:
        raise RenderError(f"could not subset the font {font.path}")
    return face


def _cids(cff: bytes) -> list[int] | None:
    """The CID of each glyph of a CID-keyed CFF font, or None if it is not CID-keyed."""
    fonts = cffLib.CFFFontSet()
    fonts.decompile(io.BytesIO(cff), None)
    top = fonts.topDictIndex[0]
    if not hasattr(top, "ROS"):
        return None
    return [0 if name == ".notdef" else int(name.removeprefix("cid")) for name in top.charset]


def _matrix(size: float, x: float, y: float) -> bytes:
    return b"%.2f 0 0 %.2f %.3f %.3f Tm" % (size, size, x, y)


def _tag(name: bytes) -> int:
    return int.from_bytes(name, "big")

