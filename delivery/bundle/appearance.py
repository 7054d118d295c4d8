"""The signature's words in an edition's language → its visible appearance on the letter page: a
pyHanko text stamp naming the signer and the signing time, in the page's bottom margin under the
page number, drawn with an embedded subset of DejaVu Sans (so the PDF stays PDF/A).

pyHanko writes an embedded font's glyph widths in the font's own units while PDF reads them in
thousandths of an em: right for a font of 1,000 units per em, spaced out for DejaVu Sans (2,048).
So the font is cut to the characters the stamp shows and scaled to 1,000 units first (fontTools;
a few milliseconds, where scaling the whole font takes 1.4 s). pyHanko's engine and its text
box must also be given one font size (pyHanko issue #733: lines drift otherwise).

On a tagged PDF (the letter and summary are), the widget is a Form element of the structure
tree, reached from its /StructParent through the parent tree, and its field is described by /TU
(PDF/UA-1 7.18.1 and 7.18.4): the field is made in the signing revision before pyHanko fills it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from typing import Any

from fontTools import subset
from fontTools.ttLib import TTFont
from fontTools.ttLib.scaleUpem import scale_upem
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.api import FontEngineFactory
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import AxisAlignment, Margins, SimpleBoxLayoutRule
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields
from pyhanko.stamp import TextStampStyle

from delivery.pdf.text.fonts import chain

MM = 72 / 25.4
# x from the left edge of the page, y from its bottom: under the page number, inside the 20 mm
# bottom margin of delivery's dossier.css, clear of the footer line above it
BOX = (round(110 * MM), round(2.5 * MM), round(194 * MM), round(11 * MM))
FIELD_NAME = "Signature"
FONT_SIZE = 6
LEADING = 8
TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"  # pyHanko's signing time, always UTC
_TIME_CHARACTERS = "0123456789-: UTC"


@dataclass(frozen=True)
class Appearance:
    """What the stamp says: `words` with %(signer)s for the signer's name (the certificate's
    common name), on the first line; the signing time on the second."""

    words: str
    page: int = 0


def stamp_text(appearance: Appearance, signer: str) -> str:
    """The stamp's text as pyHanko takes it: only %(ts)s is left for it to fill."""
    return appearance.words.replace("%%", "%").replace(
        "%(signer)s", signer).replace("%", "%%") + "\n%(ts)s"


def described(appearance: Appearance, signer: str) -> str:
    """The stamp's first line as plain text: the field's description for assistive tools."""
    return appearance.words.replace("%(signer)s", signer).replace("%%", "%")


def field_spec(appearance: Appearance, description: str | None = None) -> fields.SigFieldSpec:
    return fields.SigFieldSpec(FIELD_NAME, on_page=appearance.page, box=BOX,
                               readable_field_name=description)


def add_tagged_field(writer: IncrementalPdfFileWriter, appearance: Appearance,
                     description: str) -> bool:
    """The empty signature field, described by `description`, as a Form element of the
    writer's structure tree; False (and nothing added) when the PDF is not tagged."""
    root = writer.root
    if "/StructTreeRoot" not in root:
        return False
    fields.append_signature_field(writer, field_spec(appearance, description))
    [widget_ref] = [ref for ref in root["/AcroForm"].raw_get("/Fields")
                    if ref.get_object().get("/T") == FIELD_NAME]
    widget = widget_ref.get_object()
    tree = root["/StructTreeRoot"]
    parents = tree["/ParentTree"]
    numbers = parents["/Nums"]
    key = max([int(numbers[i]) for i in range(0, len(numbers), 2)], default=-1) + 1
    key = max(key, int(tree.get("/ParentTreeNextKey", 0)))
    kids = tree["/K"]
    document_ref = kids.raw_get(0) if isinstance(kids, generic.ArrayObject) else tree.raw_get("/K")
    document = document_ref.get_object()
    page_ref = widget.raw_get("/P")
    element_ref = writer.add_object(_dictionary(
        Type=_name("StructElem"), S=_name("Form"), P=document_ref, Pg=page_ref,
        Alt=generic.TextStringObject(description),
        K=_dictionary(Type=_name("OBJR"), Obj=widget_ref, Pg=page_ref)))
    existing = document.get("/K")
    if not isinstance(existing, generic.ArrayObject):
        existing = generic.ArrayObject([] if existing is None else [document.raw_get("/K")])
    existing.append(element_ref)
    document["/K"] = existing
    widget["/StructParent"] = _number(key)
    numbers.extend([_number(key), element_ref])
    tree["/ParentTreeNextKey"] = _number(key + 1)
    for changed in (document, numbers, tree, widget):
        writer.update_container(changed)
    return True


def _name(name: str) -> generic.NameObject:
    return generic.NameObject("/" + name)


def _dictionary(**entries: generic.PdfObject) -> generic.DictionaryObject:
    made: generic.DictionaryObject = generic.DictionaryObject(  # type: ignore[no-untyped-call]
        {_name(key): value for key, value in entries.items()})
    return made


def _number(value: int) -> generic.NumberObject:
    made: generic.NumberObject = generic.NumberObject(value)  # type: ignore[no-untyped-call]
    return made


def stamp_style(text: str) -> TextStampStyle:
    """A borderless stamp of `text` (see stamp_text), right-aligned in BOX."""
    return TextStampStyle(
        stamp_text=text, timestamp_format=TIME_FORMAT, border_width=0, background=None,
        text_box_style=TextBoxStyle(font=_StampFont(_font_for(text)), font_size=FONT_SIZE,
                                    leading=LEADING),
        inner_content_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MAX, y_align=AxisAlignment.ALIGN_MID, margins=Margins()))


@dataclass(frozen=True)
class _StampFont(FontEngineFactory):
    """pyHanko's font engine over font bytes held in memory (its own factory opens a path)."""

    data: bytes

    def create_font_engine(self, writer: Any, obj_stream: Any = None) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs:
            obj_stream = writer.prepare_object_stream()
        return GlyphAccumulator(writer=writer, font_handle=io.BytesIO(self.data),
                                font_size=FONT_SIZE, obj_stream=obj_stream)


def _font_for(text: str) -> bytes:
    return _scaled_subset(frozenset(text.replace("%(ts)s", "") + _TIME_CHARACTERS))


@cache
def _scaled_subset(characters: frozenset[str]) -> bytes:
    path, index = chain("DejaVu Sans").files[0]
    font = TTFont(path, fontNumber=index)
    options = subset.Options()
    options.layout_features = ["*"]  # shaping (marks, ligatures) as in the full font
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.drop_tables += ["FFTM"]  # FontForge's timestamps: fontTools would warn on every stamp
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(characters)))
    subsetter.subset(font)
    if font["head"].unitsPerEm != 1000:
        scale_upem(font, 1000)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()
