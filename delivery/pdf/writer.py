"""Text at positions → PDF bytes: shaped glyphs, embedded font subsets, colour glyphs as images.

A small page writer for documents whose layout is known in advance (see delivery.pdf.typeset): the
caller says where each line of text goes; this module shapes it (delivery.pdf.text.shape), draws it,
and embeds what was used: each font as a subset in which the glyph numbers the content streams
were written with still select the same glyphs (see _subset), with a ToUnicode map so the text
reads back, and colour emoji as bitmap images with their characters as ActualText. Same input,
same bytes.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pikepdf
import uharfbuzz as hb
from fontTools import cffLib
from PIL import Image

from delivery.errors import RenderError
from delivery.pdf.text.fonts import Font, chain
from delivery.pdf.text.shape import Run, has_rtl, shape_line

FIGURES = "0123456789\u2007"  # the running number: figures and figure spaces
_WORDS = re.compile(r"\s*\S+\s*")  # a word with the spaces around it


@dataclass
class _Used:
    """What one font contributes to the document: its glyphs and the text they stand for."""

    font: Font
    widths: dict[int, int] = field(default_factory=dict)  # glyph → width in 1000ths of an em
    texts: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Piece:
    """A shaped stretch of one font, ready to draw: TJ operands, or colour glyphs as images."""

    font: tuple[int, int]  # (0 regular | 1 bold, number in that chain)
    show: bytes | None  # None for a colour (bitmap) font
    width: float  # in ems
    pictures: tuple[tuple[int, float, float, str], ...] = ()  # (glyph, x, width, text) in ems


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
                if piece.show is None:
                    space = self._space(bold)
                    current = self._font(out, (int(bold), 0), current)
                    for glyph, dx, width, text in piece.pictures:
                        left = x + dx * size
                        out.append(b"%s /Span <</ActualText %s>> BDC 3 Tr %.2f Tz <%04x> Tj "
                                   b"100 Tz 0 Tr EMC" % (_matrix(size, left, y), _utf16(text),
                                                         100 * width / space[1], space[0]))
                        pictures.append(self._picture(piece.font, glyph, left, y, size))
                        page.images.add((*piece.font, glyph))
                    cursor = None
                elif piece.show:
                    current = self._font(out, piece.font, current)
                    out.append(piece.show if cursor == x else
                               b"%s %s" % (_matrix(size, x, y), piece.show))
                    cursor = x + piece.width * size
                x += piece.width * size
        out.append(b"ET")
        page.content.append(b" ".join(out + pictures))

    @staticmethod
    def _font(out: list[bytes], font: tuple[int, int],
              current: tuple[int, int] | None) -> tuple[int, int]:
        if font != current:  # size 1: the text matrix scales (see _show)
            out.append(b"/F%d_%d 1 Tf" % font)
        return font

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
        glyphs = [figures[char] for char in text]
        for char, (glyph, advance) in zip(text, glyphs, strict=True):
            if glyph not in used.widths:
                used.widths[glyph] = round(advance * 1000 / used.font.upem)
                used.texts[glyph] = char
        show = b"[<" + b"".join(b"%04x" % glyph for glyph, _ in glyphs) + b">] TJ"
        return _Piece((0, 0), show, sum(a for _, a in glyphs) / used.font.upem)

    def _piece(self, run: Run, bold: bool) -> _Piece:
        key = (int(bold), run.font)
        used = self._use(key)
        if 0 in run.glyphs:
            missing = ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(run.text)
                                if used.font.glyph(c) is None)
            self.warnings.append(f"no installed font has a glyph for {missing} (.notdef drawn)")
        em = 1 / used.font.upem
        if used.font.colour_png:
            pictures, pen = [], 0
            for glyph, advance, text in zip(run.glyphs, run.advances, run.texts, strict=True):
                pictures.append((glyph, pen * em, advance * em, text))
                pen += advance
            return _Piece(key, None, pen * em, tuple(pictures))
        return _Piece(key, _show(run, used), run.width * em)

    def _use(self, key: tuple[int, int]) -> _Used:
        used = self.used.get(key)
        if used is None:
            used = self.used[key] = _Used(self.chains[key[0]].font(key[1]))
        return used

    def _space(self, bold: bool) -> tuple[int, float]:
        """The space glyph of the first font and its width in ems."""
        used = self._use((int(bold), 0))
        glyph = used.font.glyph(" ") or 0
        used.widths.setdefault(glyph, round(used.font.advance(glyph) * 1000 / used.font.upem))
        used.texts.setdefault(glyph, " ")
        return glyph, used.font.advance(glyph) / used.font.upem

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
                 if not used.font.colour_png}
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
        return self.pdf.make_stream(picture.convert("RGB").tobytes(),
                                    ColorSpace=pikepdf.Name.DeviceRGB, SMask=alpha,
                                    Interpolate=True, **common)


def _show(run: Run, used: _Used) -> bytes:
    """The run as TJ operations for a text matrix scaled to the font size (so the same bytes
    serve any size): the glyphs, nudged where shaping moved them away from their widths in the
    font dictionary (kerning, marks), marks raised or lowered with a text rise, in ems. The
    cursor ends where the shaped run ends, so runs can follow one another without a move."""
    font = used.font
    per_unit = 1000 / font.upem
    items: list[bytes] = []
    ops: list[bytes] = []
    cursor = 0  # where the PDF's text cursor is, in 1000ths of an em (W widths, TJ numbers)
    pen = 0.0  # where shaping puts the next glyph, in 1000ths of an em
    rise = 0
    for glyph, advance, (dx, dy), piece in zip(run.glyphs, run.advances, run.offsets,
                                               run.texts, strict=True):
        width = used.widths.get(glyph)
        if width is None:
            width = used.widths[glyph] = round(font.advance(glyph) * per_unit)
        if piece and glyph not in used.texts:
            used.texts[glyph] = piece
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
        items.append(b"<%04x>" % glyph)
        cursor += width
        pen += advance * per_unit
    move = round(pen - cursor)
    if move:
        items.append(b"%d" % -move)
    if items:
        ops.append(b"[" + b"".join(items) + b"] TJ")
    if rise:
        ops.append(b"0 Ts")
    if not run.one_to_one:
        ops = [b"/Span <</ActualText %s>> BDC" % _utf16(run.text), *ops, b"EMC"]
    return b" ".join(ops)


def _embed(pdf: pikepdf.Pdf, used: _Used) -> pikepdf.Object:
    font = used.font
    glyphs = sorted(set(used.widths) | {0})
    program, kind = _subset(font, glyphs)
    tag = "".join(chr(65 + b % 26) for b in hashlib.sha256(
        f"{font.path}{glyphs}".encode()).digest()[:6])
    name = pikepdf.Name(f"/{tag}+{font.postscript_name()}")
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
    for glyph in sorted(used.widths):
        widths += [glyph, [used.widths[glyph]]]
    cid_font = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name(
            "/CIDFontType0" if font.cff else "/CIDFontType2"),
        BaseFont=name, CIDSystemInfo=pikepdf.Dictionary(
            Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"),
            Supplement=0),
        W=widths, FontDescriptor=descriptor))
    if not font.cff:
        cid_font.CIDToGIDMap = pikepdf.Name.Identity
    return pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type0, BaseFont=name,
        Encoding=pikepdf.Name("/Identity-H"), DescendantFonts=[cid_font],
        ToUnicode=pdf.make_stream(_to_unicode(used.texts))))


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


def _utf16(text: str) -> bytes:
    return b"<feff%s>" % text.encode("utf-16-be").hex().encode()


def _tag(name: bytes) -> int:
    return int.from_bytes(name, "big")


def _to_unicode(texts: dict[int, str]) -> bytes:
    rows = [b"<%04x> <%s>" % (glyph, text.encode("utf-16-be").hex().encode())
            for glyph, text in sorted(texts.items()) if text]
    body = [b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
            b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
            b"/CMapName /Adobe-Identity-UCS def /CMapType 2 def",
            b"1 begincodespacerange <0000> <ffff> endcodespacerange"]
    for start in range(0, len(rows), 100):
        chunk = rows[start:start + 100]
        body += [b"%d beginbfchar" % len(chunk), *chunk, b"endbfchar"]
    body.append(b"endcmap CMapName currentdict /CMap defineresource pop end end")
    return b"\n".join(body)
