"""Document information → what makes a dossier PDF PDF/A-3b: the sRGB output intent, XMP metadata
saying what the information dictionary says, one PDF version.

A dossier is archived for years and cannot change once signed, so every PDF is PDF/A-3b (ISO
19005-3, level B) as it is written: delivery.pdf.join gives each part the output intent and its
metadata, delivery.pdf.restamp rewrites the metadata object with the document information it
adds, and delivery.bundle.assemble attaches dossier.json as an associated file. The information
dictionary and the XMP packet are both made here from one `DocumentInfo`, so they cannot say
different things. The output intent's profile is the ICC's sRGB2014.icc (the one WeasyPrint's own
PDF/A output carries; "may be copied, distributed, embedded, made, used, and sold without
restriction"), kept beside this module: every colour the dossier draws is DeviceRGB, which PDF/A
allows only under an RGB output intent.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pikepdf

PDF_VERSION = "1.7"  # PDF/A-3 is built on ISO 32000-1, PDF 1.7
PART, CONFORMANCE = 3, "B"
PROFILE = Path(__file__).with_name("sRGB2014.icc")
CONDITION = "sRGB IEC61966-2.1"
# what XML 1.0 cannot carry; an information dictionary could, and would then differ from the XMP
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class DocumentInfo:
    """What a PDF says about itself, in its information dictionary and its XMP metadata."""

    title: str
    author: str
    subject: str
    creator: str
    producer: str
    language: str
    created: datetime
    modified: datetime

    def clean(self) -> DocumentInfo:
        return replace(self, title=_xml(self.title), author=_xml(self.author),
                       subject=_xml(self.subject), creator=_xml(self.creator),
                       producer=_xml(self.producer), language=_xml(self.language))


@functools.cache
def srgb_profile() -> bytes:
    return PROFILE.read_bytes()


def info_dictionary(doc: DocumentInfo) -> pikepdf.Dictionary:
    """The document information dictionary (direct values only)."""
    doc = doc.clean()
    return pikepdf.Dictionary(
        Title=pikepdf.String(doc.title),
        Author=pikepdf.String(doc.author),
        Subject=pikepdf.String(doc.subject),
        Creator=pikepdf.String(doc.creator),
        Producer=pikepdf.String(doc.producer),
        CreationDate=pikepdf.String(pdf_date(doc.created)),
        ModDate=pikepdf.String(pdf_date(doc.modified)),
    )


def xmp(doc: DocumentInfo | None) -> bytes:
    """The XMP packet: the PDF/A identification, and what `info_dictionary(doc)` says (nothing
    more for None: a part body's, replaced when the body is restamped)."""
    fields = [f"<pdfaid:part>{PART}</pdfaid:part>",
              f"<pdfaid:conformance>{CONFORMANCE}</pdfaid:conformance>"]
    if doc is not None:
        doc = doc.clean()
        fields += [
            "<dc:format>application/pdf</dc:format>",
            f"<dc:title>{_alternative(doc.title)}</dc:title>",
            f"<dc:creator><rdf:Seq><rdf:li>{escape(doc.author)}</rdf:li></rdf:Seq></dc:creator>",
            f"<dc:description>{_alternative(doc.subject)}</dc:description>",
            f"<dc:language><rdf:Bag><rdf:li>{escape(doc.language)}</rdf:li></rdf:Bag></dc:language>",
            f"<xmp:CreatorTool>{escape(doc.creator)}</xmp:CreatorTool>",
            f"<xmp:CreateDate>{xmp_date(doc.created)}</xmp:CreateDate>",
            f"<xmp:ModifyDate>{xmp_date(doc.modified)}</xmp:ModifyDate>",
            f"<pdf:Producer>{escape(doc.producer)}</pdf:Producer>",
        ]
    body = "\n   ".join(fields)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""'
        ' xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        ' xmlns:pdf="http://ns.adobe.com/pdf/1.3/">\n'
        f'   {body}\n'
        '  </rdf:Description>\n'
        ' </rdf:RDF>\n'
        '</x:xmpmeta>\n'
        '<?xpacket end="w"?>'
    ).encode()


METADATA_ENTRIES = {"/Type": pikepdf.Name.Metadata, "/Subtype": pikepdf.Name.XML}


def conform(pdf: pikepdf.Pdf, doc: DocumentInfo | None) -> None:
    """Give a PDF being written the output intent and the metadata (and, with `doc`, the
    information dictionary); save it with `force_version=PDF_VERSION`."""
    profile = pdf.make_stream(srgb_profile(), N=3)
    pdf.Root.OutputIntents = pikepdf.Array([pikepdf.Dictionary(
        Type=pikepdf.Name.OutputIntent, S=pikepdf.Name.GTS_PDFA1,
        OutputConditionIdentifier=pikepdf.String(CONDITION), Info=pikepdf.String(CONDITION),
        RegistryName=pikepdf.String("http://www.color.org"), DestOutputProfile=profile)])
    metadata = pikepdf.Stream(pdf, xmp(doc))
    for key, value in METADATA_ENTRIES.items():
        metadata[key] = value
    pdf.Root.Metadata = pdf.make_indirect(metadata)
    if doc is not None:
        pdf.docinfo = pdf.make_indirect(info_dictionary(doc))


def pdf_date(moment: datetime) -> str:
    return _utc(moment).strftime("D:%Y%m%d%H%M%S+00'00'")


def xmp_date(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


def _alternative(text: str) -> str:
    return f'<rdf:Alt><rdf:li xml:lang="x-default">{escape(text)}</rdf:li></rdf:Alt>'
