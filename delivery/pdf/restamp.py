"""Part body + this delivery's stamp and document info → the part, as a PDF incremental update.

A part without the front shows the same pages from one delivery to the next; only the footer
in its volumes' stamp slot (dossier id, signer count) and the document information change. So
its pages are joined once into a body whose slot holds an empty form XObject (delivery.pdf.join),
and each delivery appends an update section (ISO 32000-1, 7.5.6) that redefines that one
object as the stamp page, adds the objects the stamp's fonts need and a new /Info, redefines the
body's XMP metadata object to say the same (delivery.pdf.pdfa), and ends in a cross-reference
stream pointing back at the body's (delivery.pdf.update): kilobytes written instead of thousands
of pages joined again.
"""

from __future__ import annotations

import io

import pikepdf

from delivery.pdf import pdfa
from delivery.pdf.typeset import STAMP
from delivery.pdf.update import PdfUpdate, stream


def restamp(body: bytes, stamp: bytes, doc: pdfa.DocumentInfo) -> tuple[bytes, int]:
    """The part's bytes and page count."""
    update = PdfUpdate(body)
    slot = _slot(update.pdf)
    metadata = update.pdf.Root.get("/Metadata")
    if not isinstance(metadata, pikepdf.Stream) or not metadata.is_indirect:
        raise ValueError("the part body has no metadata object")
    pages = int(update.pdf.Root.Pages.Count)
    stamp_pdf = pikepdf.open(io.BytesIO(stamp))
    form = pikepdf.Page(stamp_pdf.Root.Pages.Kids[0]).as_form_xobject()
    update.copy(form, slot.objgen[0])
    update.write(metadata.objgen[0], stream(pdfa.METADATA_ENTRIES, pdfa.xmp(doc)))
    info_number = update.number()
    update.write(info_number, update.own(pdfa.info_dictionary(doc)))
    return update.finish(info=info_number), pages


def _slot(pdf: pikepdf.Pdf) -> pikepdf.Object:
    """The stamp slot of the body's first page, reached without reading every page."""
    node = pdf.Root.Pages
    while node.get("/Type") == pikepdf.Name.Pages:
        if not node.get("/Kids"):
            raise ValueError("the part body has no pages")
        node = node.Kids[0]
    resources = node.get("/Resources")
    xobjects = resources.get("/XObject") if isinstance(resources, pikepdf.Dictionary) else None
    slot = xobjects.get("/" + STAMP) if isinstance(xobjects, pikepdf.Dictionary) else None
    if not isinstance(slot, pikepdf.Object) or not slot.is_indirect:
        raise ValueError("the part body has no stamp slot")
    return slot
