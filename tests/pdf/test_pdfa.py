"""Every dossier PDF is PDF/A-3b: a front-only dossier, a multi-volume one, one in parts (a part
restamped from a kept body among them), signed at B-B and at B-LTA, each read back with pikepdf.

What is checked on each PDF (ISO 19005-3 clause numbers, as veraPDF's rules name them):

- one version: the header is `%PDF-1.7` followed by a comment of four bytes above 127, and the
  catalog has no /Version, or the same one (6.1.2);
- the trailer has an /ID and no /Encrypt; nothing follows the last %%EOF but one end of line;
  every stream reads back without qpdf having to recover its length (6.1.3, 6.1.7.1);
- an output intent /GTS_PDFA1 whose /DestOutputProfile is an ICC stream: RGB, three
  components (/N 3), a monitor or output profile of ICC version 2 to 4 (6.2.3);
- XMP metadata in the catalog (/Type /Metadata, /Subtype /XML), UTF-8 and well-formed, no
  `bytes` or `encoding` in its xpacket header, pdfaid:part 3 and pdfaid:conformance B (6.6.2.1,
  6.6.4);
- the information dictionary and the XMP say the same: Title and dc:title, Author and
  dc:creator, Subject and dc:description, Creator and xmp:CreatorTool, Producer and
  pdf:Producer, CreationDate and xmp:CreateDate, ModDate and xmp:ModifyDate (PDF/A-1's
  6.7.3, which veraPDF checks for part 1 only; a dossier keeps it);
- no forbidden actions or keys: no JavaScript (/JS, a /JavaScript name tree or action), no
  Launch, Sound, Movie, ResetForm, ImportData, Hide, SetOCGState, Rendition, Trans or
  GoTo3DView action, no named action but the four page moves, no /AA anywhere, no
  /NeedsRendering, /Requirements, /XFA or /NeedAppearances true, /Perms with DocMDP and UR3
  only, no external streams (/F, /FFilter, /FDecodeParms) or LZW, no /TR, /HTP or non-default
  /TR2 in a graphics state, no PostScript or reference XObject, no /OPI or /Alternates
  (6.1.7, 6.1.12, 6.2.5, 6.2.8, 6.2.9, 6.4, 6.5, 6.11);
- every image has no /Interpolate true and 1, 2, 4, 8 or 16 bits per component (6.2.8);
- every transparency group names its blending colour space (/CS), though the output intent
  would do without (6.2.10);
- every font is embedded (a FontFile, FontFile2 or FontFile3 in its descriptor), and every
  TrueType CID font has a /CIDToGIDMap (6.2.11.3.2, 6.2.11.4.1);
- every annotation but a Popup has /F with Print set and Hidden, Invisible, NoView and
  ToggleNoView clear (6.3.2);
- every embedded file is an associated file: its file specification has /F, /UF and an
  /AFRelationship, its stream a MIME /Subtype and /Params /ModDate, and an /AF array lists it
  (6.8);
- pikepdf's PDF/A-3b validator (pikepdf.pdfa, an allowlist built from veraPDF's rules) finds
  nothing; in a signed PDF it is given the file without the signature's constructs (the
  /AcroForm and its widgets, /Perms, the ESIC extension, the DSS), which it does not check,
  and which the checks above and the signature's own verification cover;
- no string longer than 32,767 bytes, no name longer than 127, no integer outside 32 bits,
  the signatures' included (6.1.13).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pikepdf
import pikepdf.pdfa
import pytest
from pikepdf.models.metadata import decode_pdf_date
from pyhanko.pdf_utils.metadata.model import VENDOR

from delivery.artifacts import BundleFile, UnsignedPdf
from delivery.bundle.assemble import BundleFacts, assemble_bundle
from delivery.bundle.ltv import SignaturePolicy, signature_policy
from delivery.bundle.sign import SigningIdentity, load_identity
from delivery.bundle.verify import verify_path
from delivery.campaigns.config import parse_campaign
from delivery.dossier.compose import Dossier, Signer, compose
from delivery.pdf import pdfa
from delivery.pdf.build import build_dossier_pdfs
from tests.pdf.test_build import signers
from tests.support.pdfs import make_cert, settings_for, write_pem
from tests.support.pki import Pki, running_pki

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
CAMPAIGN = parse_campaign((REPO / "schedules" / "salman-mukaev.toml").read_text(), "test")
CREATED = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
FORBIDDEN_ACTIONS = {"/JavaScript", "/Launch", "/Sound", "/Movie", "/ResetForm", "/ImportData",
                     "/Hide", "/SetOCGState", "/Rendition", "/Trans", "/GoTo3DView"}
PAGE_MOVES = {"/NextPage", "/PrevPage", "/FirstPage", "/LastPage"}
FORBIDDEN_KEYS = {"/JS", "/AA", "/NeedsRendering", "/Requirements", "/XFA", "/FFilter",
                  "/FDecodeParms", "/OPI", "/Alternates", "/PresSteps", "/AlternatePresentations"}
INFO_XMP = {"/Title": "dc:title", "/Author": "dc:creator", "/Subject": "dc:description",
            "/Creator": "xmp:CreatorTool", "/Producer": "pdf:Producer",
            "/CreationDate": "xmp:CreateDate", "/ModDate": "xmp:ModifyDate",
            "/Keywords": "pdf:Keywords"}


def problems(data: bytes) -> list[str]:
    """What keeps `data` from being PDF/A-3b, as far as the checks in this module's docstring
    see; empty when nothing does."""
    found: list[str] = []
    header = re.match(rb"%PDF-(1\.[0-7])(\r\n|\r|\n)%[\x80-\xff]{4}", data)
    if header is None:
        found.append(f"header {data[:16]!r} is not %PDF-1.n and a binary comment")
    if data[data.rindex(b"%%EOF") + 5:] not in (b"", b"\n", b"\r\n", b"\r"):
        found.append("data after the last %%EOF")
    pdf = pikepdf.open(io.BytesIO(data))
    version = pdf.Root.get("/Version")
    if header is not None and (pdf.pdf_version != pdfa.PDF_VERSION or header[1].decode() != pdfa.PDF_VERSION
                               or (version is not None and str(version) != "/" + pdfa.PDF_VERSION)):
        found.append(f"version: header {header[1].decode()}, catalog {version}")
    if "/Encrypt" in pdf.trailer or pdf.is_encrypted:
        found.append("encrypted")
    ids = pdf.trailer.get("/ID")
    if not isinstance(ids, pikepdf.Array) or len(ids) != 2:
        found.append("no file identifier in the trailer")
    found += _output_intent(pdf)
    found += _metadata(pdf)
    associated = set()
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            for value in _dictionaries(obj):
                found += _dictionary(pdf, value, obj.objgen)
                af = value.get("/AF")
                if isinstance(af, pikepdf.Array):
                    associated |= {item.objgen for item in af if item.is_indirect}
        if isinstance(obj, pikepdf.Stream):
            obj.read_raw_bytes()
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Dictionary) and "/EF" in obj and obj.objgen not in associated:
            found.append(f"embedded file {obj.get('/F')} is in no /AF array")
    found += [f"qpdf: {warning}" for warning in pdf.get_warnings()]
    return found


def _dictionaries(obj: pikepdf.Object) -> Iterator[pikepdf.Dictionary]:
    """An object's dictionary (a stream's) and the direct dictionaries within it."""
    pending = [obj.stream_dict if isinstance(obj, pikepdf.Stream) else obj]
    while pending:
        value = pending.pop()
        if isinstance(value, pikepdf.Dictionary):
            yield value
            children = list(value.values())
            _check_limits(value.keys())
        elif isinstance(value, pikepdf.Array):
            children = list(value)
        else:
            continue
        _check_limits(children)
        pending += [c for c in children if isinstance(c, pikepdf.Dictionary | pikepdf.Array)
                    and not c.is_indirect]


def _check_limits(values: object) -> None:
    for value in values:  # type: ignore[attr-defined]
        if isinstance(value, str):  # a dictionary key
            assert len(value.encode()) <= 128, f"name {value[:40]} longer than 127 bytes"
        elif isinstance(value, pikepdf.String):
            assert len(bytes(value)) <= 32767, "a string longer than 32,767 bytes"
        elif isinstance(value, pikepdf.Name):
            assert len(str(value).encode()) <= 128, f"name {value} longer than 127 bytes"
        elif isinstance(value, int) and not isinstance(value, bool):
            assert -2**31 <= value < 2**31, f"integer {value} outside 32 bits"


def _dictionary(pdf: pikepdf.Pdf, d: pikepdf.Dictionary, where: tuple[int, int]) -> list[str]:
    found = [f"{key} in object {where}" for key in FORBIDDEN_KEYS & set(d.keys())]
    kind, subtype = d.get("/Type"), d.get("/Subtype")
    action = d.get("/S")
    if action in FORBIDDEN_ACTIONS or (action == "/Named" and d.get("/N") not in PAGE_MOVES):
        found.append(f"action {action} in object {where}")
    if kind == pikepdf.Name.Catalog:
        names = d.get("/Names")
        if isinstance(names, pikepdf.Dictionary) and "/JavaScript" in names:
            found.append("a JavaScript name tree")
        perms = d.get("/Perms")
        if isinstance(perms, pikepdf.Dictionary) and set(perms.keys()) - {"/DocMDP", "/UR3"}:
            found.append(f"/Perms holds {sorted(perms.keys())}")
        form = d.get("/AcroForm")
        if isinstance(form, pikepdf.Dictionary) and _true(form.get("/NeedAppearances")):
            found.append("/NeedAppearances true")
    filters = d.get("/Filter")
    if filters is not None and "/LZWDecode" in str(filters):
        found.append(f"LZW in object {where}")
    if d.get("/F") is not None and "/Length" in d and not isinstance(d.get("/F"), int):
        found.append(f"external stream data in object {where}")
    if kind == pikepdf.Name.ExtGState and ("/TR" in d or "/HTP" in d or d.get(
            "/TR2", pikepdf.Name.Default) != pikepdf.Name.Default):
        found.append(f"transfer function or halftone in object {where}")
    if subtype == pikepdf.Name.Image:
        if _true(d.get("/Interpolate")):
            found.append(f"/Interpolate true on image {where}")
        if int(d.get("/BitsPerComponent", 8)) not in (1, 2, 4, 8, 16):
            found.append(f"image {where}: {d.BitsPerComponent} bits per component")
    if subtype == pikepdf.Name.PS or "/PS" in d or d.get("/Subtype2") == pikepdf.Name.PS \
            or (subtype == pikepdf.Name.Form and "/Ref" in d):
        found.append(f"PostScript or reference XObject {where}")
    if d.get("/S") == pikepdf.Name.Transparency and "/CS" not in d:
        found.append(f"transparency group without /CS in object {where}")
    if kind == pikepdf.Name.Font and subtype not in (pikepdf.Name.Type0, pikepdf.Name.Type3):
        descriptor = d.get("/FontDescriptor")
        if not isinstance(descriptor, pikepdf.Dictionary) or not {
                "/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor.keys()):
            found.append(f"font {d.get('/BaseFont')} is not embedded")
        if subtype == pikepdf.Name.CIDFontType2 and "/CIDToGIDMap" not in d:
            found.append(f"CID font {d.get('/BaseFont')} has no /CIDToGIDMap")
    if (kind == pikepdf.Name.Annot or (kind is None and "/Rect" in d and "/Subtype" in d)) \
            and subtype != pikepdf.Name.Popup:
        flags = int(d.get("/F", 0))
        if not flags & 4 or flags & (1 | 2 | 32 | 256):
            found.append(f"annotation {where} flags {flags}: not printed, or hidden")
    if kind == pikepdf.Name.Filespec and "/EF" in d:
        embedded = d.EF.get("/F")
        if not {"/F", "/UF"} <= set(d.keys()) or not isinstance(d.get("/AFRelationship"),
                                                                 pikepdf.Name):
            found.append(f"file specification {d.get('/F')}: /F, /UF or /AFRelationship missing")
        if not isinstance(embedded, pikepdf.Stream) or "/Subtype" not in embedded \
                or "/ModDate" not in embedded.get("/Params", {}):
            found.append(f"embedded file {d.get('/F')}: no MIME type or modification date")
    return found


def _true(value: object) -> bool:
    return value is True


def _output_intent(pdf: pikepdf.Pdf) -> list[str]:
    intents = [i for i in pdf.Root.get("/OutputIntents", [])
               if i.get("/S") == pikepdf.Name.GTS_PDFA1]
    if len(intents) != 1:
        return [f"{len(intents)} PDF/A output intents"]
    profile = intents[0].get("/DestOutputProfile")
    if not isinstance(profile, pikepdf.Stream):
        return ["the output intent has no ICC profile stream"]
    icc = profile.read_bytes()
    found = []
    if icc[36:40] != b"acsp" or int.from_bytes(icc[:4], "big") != len(icc):
        found.append("the output intent's profile is not an ICC profile")
    if icc[16:20] != b"RGB " or int(profile.get("/N", 0)) != 3 or icc[12:16] not in (b"mntr", b"prtr"):
        found.append(f"the output intent's profile is {icc[12:20]!r}, /N {profile.get('/N')}")
    if not 2 <= icc[8] <= 4:
        found.append(f"ICC version {icc[8]}")
    return found


def _metadata(pdf: pikepdf.Pdf) -> list[str]:
    stream = pdf.Root.get("/Metadata")
    if not isinstance(stream, pikepdf.Stream) or stream.get("/Type") != pikepdf.Name.Metadata \
            or stream.get("/Subtype") != pikepdf.Name.XML:
        return ["no /Metadata stream of /Type /Metadata, /Subtype /XML in the catalog"]
    packet = stream.read_bytes()
    try:
        text = packet.decode("utf-8")
        ET.fromstring(re.sub(r"<\?xpacket[^>]*\?>", "", text))
    except (UnicodeDecodeError, ET.ParseError) as exc:
        return [f"the XMP packet is not well-formed UTF-8 XML: {exc}"]
    start = re.match(r"\s*<\?xpacket([^>]*)\?>", text)
    found = []
    if start is not None and re.search(r"\b(bytes|encoding)=", start.group(1)):
        found.append("bytes or encoding in the xpacket header")
    meta = pdf.open_metadata()
    if (meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) != (str(pdfa.PART), pdfa.CONFORMANCE):
        found.append(f"pdfaid {meta.get('pdfaid:part')}{meta.get('pdfaid:conformance')}")
    info = pdf.trailer.get("/Info")
    for key, name in INFO_XMP.items():
        value = info.get(key) if isinstance(info, pikepdf.Dictionary) else None
        if value is None:
            continue
        said = meta.get(name)
        if key.endswith("Date"):
            agree = said is not None and decode_pdf_date(str(value)) == datetime.fromisoformat(said)
        elif key == "/Author":
            agree = said == [str(value)]
        else:
            agree = said == str(value)
        if not agree:
            found.append(f"Info {key} {str(value)!r} but XMP {name} {said!r}")
    return found


def validator_findings(data: bytes) -> list[str]:
    """What pikepdf's PDF/A-3b validator finds, given the file without the signature's
    constructs, which it does not check."""
    pdf = pikepdf.open(io.BytesIO(data))
    for key in ("/AcroForm", "/Perms", "/Extensions", "/DSS"):
        if key in pdf.Root:
            del pdf.Root[key]
    for page in pdf.pages:
        if "/Annots" in page.obj:
            kept = [a for a in page.obj.Annots if a.get("/FT") != pikepdf.Name.Sig]
            if kept:
                page.obj.Annots = pikepdf.Array(kept)
            else:
                del page.obj["/Annots"]
    return [str(f) for f in pikepdf.pdfa.check(pdf, "3b").findings]


def assert_pdfa(data: bytes) -> None:
    assert problems(data) == []
    assert validator_findings(data) == []


# ---------------------------------------------------------------- the dossiers

def dossier(rows: list[Signer], dossier_id: str = "D-2026-0302") -> Dossier:
    return compose(CAMPAIGN, rows, dossier_id=dossier_id, created_at=CREATED, trigger="milestone",
                   milestone=1000, addressees=CAMPAIGN.recipients, signed=True, volume_size=50)


def facts(d: Dossier) -> BundleFacts:
    number, day = d.last_line
    return BundleFacts(
        campaign_slug=d.campaign_slug, campaign_title=d.campaign_title, dossier_id=d.dossier_id,
        trigger=d.trigger, milestone=d.milestone, signer_count=d.signer_count,
        listed_count=d.listed_count, last_signer_number=number, last_signer_signed_on=day,
        template_version="t", created_at=d.created_at)


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dossier, list[UnsignedPdf]]:
    """A dossier in parts, the later ones restamped from the bodies a first build kept."""
    cache = tmp_path_factory.mktemp("cache")
    build_dossier_pdfs(dossier(signers(400), "D-2026-0301"), TEMPLATES, languages=["hy"],
                       cache_dir=cache, workers=2, part_budget=120_000)
    d = dossier(signers(400))
    return d, build_dossier_pdfs(d, TEMPLATES, languages=["hy"], cache_dir=cache, workers=2,
                                 part_budget=120_000)


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningIdentity, Path]:
    key, cert = write_pem(tmp_path_factory.mktemp("id"), "s", *make_cert("PDF/A Test Signer"))
    return load_identity(settings_for(key, cert), now=datetime.now(UTC)), cert


def test_a_front_only_dossier_is_pdfa() -> None:
    d = dossier([])
    [pdf] = build_dossier_pdfs(d, TEMPLATES, languages=["en"], workers=1)
    assert not d.volumes
    assert_pdfa(pdf.data)


def test_a_dossier_of_several_volumes_in_every_script_is_pdfa() -> None:
    d = dossier(signers(130))
    pdfs = build_dossier_pdfs(d, TEMPLATES, languages=["en", "hy"], workers=2, strict=True)
    assert len(d.volumes) == 3
    for pdf in pdfs:
        assert_pdfa(pdf.data)
        meta = pikepdf.open(io.BytesIO(pdf.data)).open_metadata()
        assert meta["dc:title"] == CAMPAIGN.text(pdf.language).title
        assert meta["xmp:CreateDate"] == meta["xmp:ModifyDate"] == "2026-03-02T08:15:00+00:00"


def test_every_part_and_a_restamped_one_is_pdfa(parts: tuple[Dossier, list[UnsignedPdf]]) -> None:
    _, pdfs = parts
    assert len(pdfs) >= 3 and all(p.data.count(b"%%EOF") == 2 for p in pdfs[1:])
    for pdf in pdfs:
        assert_pdfa(pdf.data)
        meta = pikepdf.open(io.BytesIO(pdf.data)).open_metadata()
        assert meta["dc:title"].endswith(f"(մաս {pdf.part}՝ {pdf.parts}-ից)")


def test_the_attached_dossier_json_is_an_associated_file(
        parts: tuple[Dossier, list[UnsignedPdf]]) -> None:
    d, pdfs = parts
    for f in assemble_bundle(pdfs, facts(d), None, reason="r", location="l"):
        if f.kind == "pdf":
            assert_pdfa(f.data)
            pdf = pikepdf.open(io.BytesIO(f.data))
            [spec] = list(pdf.Root.AF)
            assert spec.AFRelationship == pikepdf.Name.Data and str(spec.UF) == "dossier.json"


def _signed(pdfs: list[UnsignedPdf], d: Dossier, identity: SigningIdentity,
            policy: SignaturePolicy | None = None) -> list[BundleFile]:
    return assemble_bundle(pdfs, facts(d), identity, reason="Petition dossier", location="Yerevan",
                           policy=policy)


def test_a_signed_b_b_dossier_stays_pdfa_and_verifies(
        parts: tuple[Dossier, list[UnsignedPdf]], identity: tuple[SigningIdentity, Path],
        tmp_path: Path) -> None:
    d, pdfs = parts
    signer, cert = identity  # EC P-256: pyHanko would declare a PDF 2.0 extension for it
    for f in _signed(pdfs, d, signer):
        (tmp_path / f.name).write_bytes(f.data)
        if f.kind == "pdf":
            assert_pdfa(f.data)
            pdf = pikepdf.open(io.BytesIO(f.data))
            assert "/Version" not in pdf.Root and "/ISO_" not in pdf.Root.Extensions
            # pyHanko wrote the last revision; its clock dates it, in the XMP alone
            assert str(pdf.docinfo.Producer) == pdf.open_metadata()["pdf:Producer"] == VENDOR
            assert "/ModDate" not in pdf.docinfo
            modified = datetime.fromisoformat(pdf.open_metadata()["xmp:ModifyDate"])
            assert abs(modified - datetime.now(UTC)) < timedelta(minutes=5)
    report = verify_path(tmp_path, trust=cert)
    assert report.ok, report.lines()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    with running_pki(tmp_path_factory.mktemp("pki")) as running:
        yield running


def test_a_signed_b_lta_dossier_stays_pdfa_through_its_dss_and_document_timestamp(
        parts: tuple[Dossier, list[UnsignedPdf]], pki: Pki, tmp_path: Path) -> None:
    d, pdfs = parts
    settings = replace(settings_for(*pki.signing_files("signer")), signature_level="B-LTA",
                       timestamp_url=pki.tsa_url, trust_roots=pki.root_pem)
    signer = load_identity(settings, now=datetime.now(UTC))
    for f in _signed(pdfs[:2], d, signer, policy=signature_policy(settings)):
        (tmp_path / f.name).write_bytes(f.data)
        if f.kind == "pdf":
            assert f.data.count(b"%%EOF") >= 4  # part, signature, DSS and document timestamp
            assert_pdfa(f.data)
            pdf = pikepdf.open(io.BytesIO(f.data))
            assert "/DSS" in pdf.Root and "/Version" not in pdf.Root
    report = verify_path(tmp_path, trust=pki.root_pem)
    assert report.ok and report.level == "B-LTA", report.lines()


def test_the_checks_see_what_breaks_pdfa(parts: tuple[Dossier, list[UnsignedPdf]]) -> None:
    """The checks above fail on a part that is not PDF/A-3b."""
    pdf = pikepdf.open(io.BytesIO(parts[1][0].data))
    pdf.Root.Version = pikepdf.Name("/2.0")
    del pdf.Root["/OutputIntents"]
    pdf.docinfo.Title = pikepdf.String("another title")
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("1"))
    out = io.BytesIO()
    pdf.save(out)
    found = problems(out.getvalue())
    assert any(p.startswith(("version:", "header")) for p in found)
    assert "0 PDF/A output intents" in found
    assert any(p.startswith("Info /Title 'another title'") for p in found)
    assert any("action /JavaScript" in p for p in found) and any("/JS in" in p for p in found)


def test_the_info_dictionary_and_the_xmp_are_made_from_one_record() -> None:
    doc = pdfa.DocumentInfo(title="A \x07title <&>", author="Ani", subject="S", creator="C",
                            producer="P", language="hy", created=CREATED, modified=CREATED)
    info = pdfa.info_dictionary(doc)
    assert str(info.Title) == "A title <&>"
    assert b"A title &lt;&amp;&gt;" in pdfa.xmp(doc)
    assert b"<pdfaid:part>3</pdfaid:part>" in pdfa.xmp(None) and b"dc:title" not in pdfa.xmp(None)
