"""Rendered front, stamp and volumes → one part of a dossier PDF: pages joined, footer in place.

A part is the front (first part only) and a run of volumes, each volume's pages under a page
tree node of their own, a bookmark for the front's headings (as WeasyPrint made them) and one
for each volume, with the delivery's footer (the stamp's one page, as a form XObject)
set once in each volume's shared stamp slot. A part without the front is joined as a *body*:
its slot holds an empty form XObject, for delivery.pdf.restamp to fill, so the body can be kept and
reused while its volumes do not change. Parts are independent of each other, so a large
dossier's parts are joined in parallel, as `PartJob`s in the render workers: a part reads its
volumes from the cache folder itself, and only the joined part comes back. Every part is
PDF/A-3b (delivery.pdf.pdfa): a body carries the output intent and a metadata object that
restamping fills in.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pikepdf

from delivery.errors import RenderError
from delivery.pdf import pdfa
from delivery.pdf.jobs import RenderedPdf
from delivery.pdf.typeset import STAMP

JOIN_COST = 8  # per volume, in the render workers' units (a volume joins in about 5 ms)


@dataclass(frozen=True)
class PartInfo:
    """The document information of one part."""

    title: str
    author: str
    subject: str
    producer: str
    language: str
    created_at: datetime


@dataclass(frozen=True)
class PartJob:
    """One part to join (a pdf.Drawable): picklable; volumes are cache files, or their bytes
    when the cache folder could not take them."""

    label: str
    info: PartInfo
    stamp: bytes | None = field(repr=False)  # None: a body, its slot left empty, no /Info
    front: bytes | None = field(repr=False)
    volumes: tuple[Path | bytes, ...] = field(repr=False)
    headings: tuple[str, ...] = ()  # each volume's bookmark, in order

    @property
    def cost(self) -> int:
        return JOIN_COST * (len(self.volumes) + 1)

    def job(self) -> PartJob:
        return self

    def draw(self) -> RenderedPdf:
        try:
            data, pages = join_part(self.info, self.stamp, self.front,
                                    [_read(v) for v in self.volumes], self.headings)
        except OSError as exc:
            raise RenderError(f"{self.label}: a rendered volume could not be read back from "
                              f"the cache folder: {exc}") from None
        except (pikepdf.PdfError, ValueError) as exc:
            raise RenderError(f"{self.label}: {type(exc).__name__}: {exc}") from exc
        return RenderedPdf(self.label, data, pages, (), 0)


def _read(volume: Path | bytes) -> bytes:
    return volume.read_bytes() if isinstance(volume, Path) else volume


def join_part(info: PartInfo, stamp: bytes | None, front: bytes | None,
              volumes: list[bytes], headings: Sequence[str] = ()) -> tuple[bytes, int]:
    """The part's PDF bytes and page count (a body's, without a stamp). `headings`: each
    volume's bookmark."""
    pdf = pikepdf.new()
    marks: list[pikepdf.OutlineItem] = []
    if front is not None:
        front_pdf = pikepdf.open(io.BytesIO(front))
        pdf.pages.extend(front_pdf.pages)
        marks += _front_bookmarks(front_pdf, list(pdf.pages))
        _keep_structure(pdf, front_pdf)
    footer: pikepdf.Object
    if stamp is None:
        footer = pdf.make_stream(b"", Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Form,
                                 BBox=pikepdf.Array([0, 0, 0, 0]))
    else:
        stamp_pdf = pikepdf.open(io.BytesIO(stamp))  # kept open: the footer is copied from it
        footer = pdf.copy_foreign(stamp_pdf.pages[0].as_form_xobject())
    for index, data in enumerate(volumes):
        first_page = _append_volume(pdf, data, footer)
        if index < len(headings):
            marks.append(pikepdf.OutlineItem(headings[index], pikepdf.Array(
                [first_page, pikepdf.Name.Fit])))
    if marks:
        with pdf.open_outline() as outline:
            outline.root.extend(marks)
    pdfa.conform(pdf, None if stamp is None else document_info(info))
    pdf.Root.Lang = pikepdf.String(info.language)
    # a reader's title bar shows the dossier's title, not the file name
    pdf.Root.ViewerPreferences = pikepdf.Dictionary(DisplayDocTitle=True)
    buffer = io.BytesIO()
    pdf.save(buffer, deterministic_id=True, compress_streams=True,
             object_stream_mode=pikepdf.ObjectStreamMode.generate, force_version=pdfa.PDF_VERSION)
    return buffer.getvalue(), int(pdf.Root.Pages.Count)


def _keep_structure(pdf: pikepdf.Pdf, front: pikepdf.Pdf) -> None:
    """The front's structure tree (WeasyPrint tags its letter and summary): copied after its
    pages, so that the tree's page references are to the pages copied here."""
    if "/StructTreeRoot" not in front.Root:
        return
    pdf.Root.StructTreeRoot = pdf.copy_foreign(front.Root.StructTreeRoot)
    pdf.Root.MarkInfo = pikepdf.Dictionary(Marked=True)


def _front_bookmarks(front: pikepdf.Pdf, pages: list[pikepdf.Page]) -> list[pikepdf.OutlineItem]:
    """The front's bookmarks (WeasyPrint makes them from its headings), pointing at the same
    pages in the joined part."""
    index = {page.obj.objgen: n for n, page in enumerate(front.pages)}

    def copy(item: pikepdf.OutlineItem) -> pikepdf.OutlineItem | None:
        destination = item.destination
        if not isinstance(destination, pikepdf.Array) or len(destination) == 0:
            return None
        page = index.get(destination[0].objgen)
        if page is None:
            return None
        out = pikepdf.OutlineItem(str(item.title), pikepdf.Array(
            [pages[page].obj, *list(destination)[1:]]))
        out.children.extend(c for c in (copy(child) for child in item.children) if c is not None)
        return out

    with front.open_outline() as outline:
        return [c for c in (copy(item) for item in outline.root) if c is not None]


def _append_volume(pdf: pikepdf.Pdf, data: bytes, footer: pikepdf.Object) -> pikepdf.Object:
    """Add a volume's pages under a page tree node of their own, and put the footer in its
    stamp slot. (pikepdf's pages.extend looks through every page already there for each one
    it adds: a million-signer dossier took seconds joining. A node per volume is linear.)"""
    source = pikepdf.open(io.BytesIO(data))
    root = pdf.Root.Pages
    pages = [pdf.copy_foreign(page) for page in source.Root.Pages.Kids]
    node = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Pages, Parent=root, Kids=pikepdf.Array(pages), Count=len(pages)))
    for page in pages:
        page.Parent = node
    root.Kids.append(node)
    root.Count = int(root.Count) + len(pages)
    # the volume's pages share one resource dictionary: one slot to fill for all of them
    pages[0].Resources.XObject[pikepdf.Name("/" + STAMP)] = footer
    return pages[0]


def document_info(info: PartInfo) -> pdfa.DocumentInfo:
    return pdfa.DocumentInfo(title=info.title, author=info.author, subject=info.subject,
                             creator="petition-delivery", producer=info.producer,
                             language=info.language, created=info.created_at,
                             modified=info.created_at)


def info_dictionary(info: PartInfo) -> pikepdf.Dictionary:
    """The part's document information dictionary (direct values only)."""
    return pdfa.info_dictionary(document_info(info))
