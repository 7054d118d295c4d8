"""Unsigned dossier PDFs + the delivery's facts → the bundle: signed PDFs, manifest.json and its
detached signature manifest.json.p7s.

Each PDF gets an embedded file `dossier.json` BEFORE it is signed: the delivery's facts plus this
PDF's own name, language, part and page count. A PDF cannot contain its own hash, so the embedded
copy lists no SHA-256; the hashes and sizes of the signed PDFs are in `manifest.json`, which travels
beside them and is itself signed (CMS, DER, same identity). The last signer is recorded by number
and date only, never by name or e-mail.

The PDFs arrive PDF/A-3b (delivery.pdf.pdfa) and leave so: dossier.json is an associated file
(/AF, /AFRelationship /Data), and the signing revisions keep PDF 1.7 and the information
dictionary and XMP metadata in agreement (see _keep_pdfa).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, date, datetime
from io import BytesIO
from typing import Any

import pikepdf
from pyhanko.pdf_utils import embed, generic
from pyhanko.pdf_utils.extensions import DeveloperExtension
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata.model import VENDOR

from delivery.artifacts import LETTER, LETTER_PART, BundleFile, UnsignedPdf
from delivery.bundle.appearance import Appearance
from delivery.bundle.ltv import SignaturePolicy
from delivery.bundle.sign import SigningIdentity, sign_detached, sign_pdf
from delivery.errors import InputRefused, RenderError
from delivery.pdf.pdfa import PDF_VERSION
from delivery.pdf.update import PdfUpdate, Reference, stream

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.json.p7s"
EMBEDDED_NAME = "dossier.json"
MANIFEST_FORMAT = "petition-delivery/manifest"
EMBEDDED_FORMAT = "petition-delivery/dossier"
FORMAT_VERSION = 1

# How many PDFs are signed at once, in threads (bench/signing.py: two editions of 80,000 signers,
# 6.1 MB each, on 2 cores; median wall time, one after the other → two threads). Signing is mostly
# pyHanko parsing and writing in pure Python, which a second thread does not speed up: B-B
# 0.129 s → 0.131 s, 0.12 s of CPU either way (0.91–1.05× over three runs). What it overlaps is the
# waits for the services a signature asks from B-T on: B-T with a timestamp authority answering in
# 0.2 s, 0.844 s → 0.635 s; B-LTA against the tests' PKI (timestamps, OCSP, CRLs over HTTP from
# another process), 0.677 s → 0.524 s. Processes cost more than they save: 0.443 s at B-B counting
# their start, 0.149 s already started.
SIGNING_THREADS = 2

# A received manifest or dossier.json is hostile until its signature is checked, and is parsed
# before that: its size, depth and numbers are bounded so that parsing cannot exhaust memory,
# overflow the stack, or hit Python's 4,300-digit int limit (a ValueError from deep inside json).
MAX_JSON_BYTES = 1_000_000  # a manifest lists one short entry per PDF part: kilobytes
MAX_JSON_DEPTH = 16  # both documents nest three levels deep
MAX_INT_DIGITS = 18  # counts, page numbers and byte sizes
MAX_TEXT = 1_000  # characters in any field: ids, names, titles, digests
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


@dataclass(frozen=True)
class BundleFacts:
    campaign_slug: str
    campaign_title: str
    dossier_id: str
    trigger: str
    milestone: int | None
    signer_count: int
    listed_count: int
    last_signer_number: int
    last_signer_signed_on: date | None
    template_version: str
    created_at: datetime


# ---------------------------------------------------------------- pure: the JSON documents

def common_facts(facts: BundleFacts, identity: SigningIdentity | None) -> dict[str, Any]:
    """The facts shared by manifest.json and every embedded dossier.json."""
    created = facts.created_at if facts.created_at.tzinfo else facts.created_at.replace(tzinfo=UTC)
    signed_on = facts.last_signer_signed_on
    return {
        "format_version": FORMAT_VERSION,
        "campaign": {"slug": facts.campaign_slug, "title": facts.campaign_title},
        "dossier_id": facts.dossier_id,
        "trigger": facts.trigger,
        "milestone": facts.milestone,
        "signer_count": facts.signer_count,
        "listed_count": facts.listed_count,
        "last_signer": {"number": facts.last_signer_number,
                        "signed_on": signed_on.isoformat() if signed_on else None},
        "template_version": facts.template_version,
        "created_at": created.astimezone(UTC).isoformat(),
        "signed_by": None if identity is None else {"subject": identity.subject,
                                                    "sha256": identity.fingerprint},
    }


def dossier_json(facts: BundleFacts, pdf: UnsignedPdf, identity: SigningIdentity | None) -> bytes:
    doc = common_facts(facts, identity) | {
        "format": EMBEDDED_FORMAT,
        "file": {"name": pdf.name, "language": pdf.language, "part": pdf.part,
                 "parts": pdf.parts, "pages": pdf.pages},
        "note": f"The SHA-256 of this signed PDF is listed in {MANIFEST_NAME}, sent with it.",
    }
    return to_json(doc)


def manifest_json(facts: BundleFacts, files: Sequence[tuple[UnsignedPdf, BundleFile]],
                  identity: SigningIdentity | None) -> bytes:
    def entry(src: UnsignedPdf, f: BundleFile) -> dict[str, Any]:
        return {"name": f.name, "language": f.language, "part": f.part, "parts": src.parts,
                "pages": f.pages, "size": f.size, "sha256": f.sha256}

    doc = common_facts(facts, identity) | {
        "format": MANIFEST_FORMAT,
        "files": [entry(src, f) for src, f in files if f.kind == "pdf"],
    }
    # the letter and summary alone, for a download link's e-mail: not needed for a whole dossier
    letters = [entry(src, f) for src, f in files if f.kind == LETTER]
    if letters:
        doc["letters"] = letters
    return to_json(doc)


def to_json(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _check_names(pdfs: Sequence[UnsignedPdf]) -> None:
    seen: set[str] = set()
    for pdf in pdfs:
        name = pdf.name
        if (not name.lower().endswith(".pdf") or "/" in name or "\\" in name
                or name.startswith(".") or name in seen):
            raise RenderError(f"bundle file name {name!r} is not a unique plain *.pdf name")
        seen.add(name)


# ---------------------------------------------------------------- PDFs

def embed_dossier_json(data: bytes, payload: bytes, *, created_at: datetime, pages: int) -> bytes:
    """`data` with `payload` attached as dossier.json; same input, same bytes.

    The attachment is appended as an incremental update (the file spec, its stream and the
    catalog naming them), so a 15 MB part is not written again; a PDF that names attachments
    already is saved anew with the one added."""
    stamp = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    pdf_date = f"D:{stamp.astimezone(UTC):%Y%m%d%H%M%S}Z"
    try:
        update = PdfUpdate(data)
        root = update.pdf.Root
        count = int(root.Pages.Count)
        if count != pages:
            raise RenderError(f"the PDF has {count} pages, the renderer said {pages}")
        if "/Names" in root or "/AF" in root:
            return _embed_in_full(update.pdf, payload, pdf_date)
        attached = update.number()
        update.write(attached, stream({
            "/Type": pikepdf.Name.EmbeddedFile, "/Subtype": pikepdf.Name("/application/json"),
            "/Params": {"/Size": len(payload), "/CreationDate": pikepdf.String(pdf_date),
                        "/ModDate": pikepdf.String(pdf_date),
                        "/CheckSum": pikepdf.String(hashlib.md5(payload).digest())},  # noqa: S324 - the PDF format's checksum
        }, payload))
        spec = update.number()
        update.write(spec, update.own({
            "/Type": pikepdf.Name.Filespec, "/F": pikepdf.String(EMBEDDED_NAME),
            "/UF": pikepdf.String(EMBEDDED_NAME),
            "/Desc": pikepdf.String("Facts of this dossier (see manifest.json)"),
            "/AFRelationship": pikepdf.Name.Data,
            "/EF": {"/F": Reference(attached), "/UF": Reference(attached)}}))
        catalog: dict[str, object] = dict(root.items())
        catalog["/Names"] = {"/EmbeddedFiles": {"/Names": [pikepdf.String(EMBEDDED_NAME),
                                                          Reference(spec)]}}
        # /AF names the attachment as associated data, as PDF/A-3 asks
        catalog["/AF"] = [Reference(spec)]
        update.write(root.objgen[0], update.own(catalog))
        return update.finish()
    except (pikepdf.PdfError, ValueError) as exc:
        raise RenderError(f"cannot embed {EMBEDDED_NAME}: the PDF is unreadable ({exc})") from exc


def _embedding(payload: bytes, *, created_at: datetime,
               pages: int) -> Callable[[IncrementalPdfFileWriter], None]:
    """What embed_dossier_json writes, added to a pyHanko revision instead (the signing one),
    which keeps the PDF what delivery.pdf.pdfa made it: PDF/A-3b, PDF 1.7, its information
    dictionary and XMP metadata saying the same."""
    stamp = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)

    def embed_into(writer: IncrementalPdfFileWriter) -> None:
        _keep_pdfa(writer)
        root = writer.root
        count = int(root["/Pages"]["/Count"])
        if count != pages:
            raise RenderError(f"the PDF has {count} pages, the renderer said {pages}")
        names = root.get("/Names")
        if names is not None and "/Kids" in names.get("/EmbeddedFiles", {}):
            raise RenderError(f"cannot embed {EMBEDDED_NAME}: the PDF's attachments form a nested tree")
        embed.embed_file(writer, embed.FileSpec(
            file_spec_string=EMBEDDED_NAME, file_name=EMBEDDED_NAME,
            description="Facts of this dossier (see manifest.json)",
            embedded_data=embed.EmbeddedFileObject.from_file_data(
                writer, payload, mime_type="application/json",
                params=embed.EmbeddedFileParams(creation_date=stamp, modification_date=stamp))))
        attached = root["/Names"]["/EmbeddedFiles"]["/Names"]
        spec_ref = attached.raw_get(len(attached) - 1)
        # /AF names it as associated data, as PDF/A-3 asks; set here rather than through
        # pyHanko's af_relationship, which would also mark the file as PDF 2.0.
        spec_ref.get_object()["/AFRelationship"] = generic.NameObject("/Data")
        af = root.get("/AF")
        earlier = [af.raw_get(i) for i in range(len(af))] if isinstance(af, generic.ArrayObject) else []
        root["/AF"] = generic.ArrayObject([*earlier, spec_ref])
        writer.update_root()  # type: ignore[no-untyped-call]

    return embed_into


def _version(text: str) -> tuple[int, ...]:
    """A PDF version (1.7, or a catalog's name /1.7) as numbers."""
    return tuple(int(n) for n in text.lstrip("/").split("."))


PDFA_BASE = _version(PDF_VERSION)


def _keep_pdfa(writer: IncrementalPdfFileWriter) -> None:
    """Make pyHanko's revisions keep the PDF/A version and metadata.

    pyHanko updates the information dictionary and the XMP packet of every revision it writes
    (the signature's, and at B-LT and B-LTA the validation data's and the document timestamp's),
    writing its own name alone as the XMP producer and reading the clock once for each
    modification date, so the two dates could differ by the second that passed between. And it
    declares ISO/TS 32002, a PDF 2.0 extension, for an ECDSA signature on a P-256 curve, raising
    the catalog's /Version to 2.0, which PDF/A-3 forbids (PDF 1.7 and PAdES carry such a
    signature as they are). So: pyHanko's name as the producer in both, the modification date
    in the XMP alone, and no version or extension past 1.7."""
    info = writer.trailer.raw_get("/Info") if "/Info" in writer.trailer else None
    if info is not None:
        entries = info.get_object()
        entries["/Producer"] = generic.TextStringObject(VENDOR)
        entries.pop("/ModDate", None)
        writer.mark_update(info)
    ensure_version, register_extension = writer.ensure_output_version, writer.register_extension

    def within_pdfa(version: tuple[int, int]) -> None:
        if version <= PDFA_BASE:
            ensure_version(version)  # type: ignore[no-untyped-call]

    def pdfa_extension(extension: DeveloperExtension) -> None:
        if _version(str(extension.base_version)) <= PDFA_BASE:
            register_extension(extension)

    writer.ensure_output_version = within_pdfa  # type: ignore[method-assign]
    writer.register_extension = pdfa_extension  # type: ignore[method-assign, assignment]


def _embed_in_full(pdf: pikepdf.Pdf, payload: bytes, pdf_date: str) -> bytes:
    spec = pikepdf.AttachedFileSpec(
        pdf, payload, description="Facts of this dossier (see manifest.json)",
        filename=EMBEDDED_NAME, mime_type="application/json",
        creation_date=pdf_date, mod_date=pdf_date, relationship=pikepdf.Name.Data)
    pdf.attachments[EMBEDDED_NAME] = spec
    af = pdf.Root.get("/AF")
    if isinstance(af, pikepdf.Array):
        af.append(spec.obj)
    else:
        pdf.Root.AF = pikepdf.Array([spec.obj])
    out = BytesIO()
    pdf.save(out, deterministic_id=True)
    return out.getvalue()


def read_embedded_dossier(data: bytes) -> dict[str, Any] | None:
    """The dossier.json embedded in a PDF, or None when the PDF names none; InputRefused (source
    dossier.json) when the PDF or the attachment cannot be read, or it is not a bounded JSON object."""
    try:
        with pikepdf.open(BytesIO(data)) as pdf:
            spec = pdf.attachments.get(EMBEDDED_NAME)
            if spec is None:
                return None
            raw = _attachment_bytes(spec.get_file().obj)
    except InputRefused:
        raise
    except Exception as exc:  # qpdf and pikepdf raise several kinds on a damaged file
        raise InputRefused(EMBEDDED_NAME, f"cannot be read ({_first_line(exc)})") from exc
    doc = _load_json(raw, EMBEDDED_NAME)
    if not isinstance(doc, dict):
        raise InputRefused(EMBEDDED_NAME, "is not a JSON object")
    return doc


def _attachment_bytes(stream: pikepdf.Object) -> bytes:
    """The decoded bytes of an attachment stream, never more than MAX_JSON_BYTES + 1 of them."""
    filters = stream.get("/Filter")
    names = ([] if filters is None else [str(f) for f in filters]
             if isinstance(filters, pikepdf.Array) else [str(filters)])
    raw = bytes(stream.read_raw_bytes())
    if not names:
        return raw[:MAX_JSON_BYTES + 1]
    if names != ["/FlateDecode"] or "/DecodeParms" in stream:
        raise InputRefused(EMBEDDED_NAME, f"is encoded with {' '.join(names)}, which "
                                          "petition-delivery never writes")
    try:
        # bounded output: a few kilobytes of deflate can inflate to gigabytes
        return zlib.decompressobj().decompress(raw, MAX_JSON_BYTES + 1)
    except zlib.error as exc:
        raise InputRefused(EMBEDDED_NAME, f"is damaged ({exc})") from exc


def assemble_bundle(pdfs: Sequence[UnsignedPdf], facts: BundleFacts,
                    identity: SigningIdentity | None, *, reason: str, location: str,
                    policy: SignaturePolicy | None = None,
                    signature_texts: Mapping[str, tuple[str, str]] | None = None,
                    appearances: Mapping[str, Appearance] | None = None,
                    workers: int = SIGNING_THREADS) -> list[BundleFile]:
    """The finished files: each PDF (dossier.json embedded, signed when `identity` is given),
    then manifest.json, then manifest.json.p7s when signed; signed at `policy`'s PAdES level (B-B
    when None). `signature_texts`: the signature's (reason, location) per language, as a reader's
    signature panel shows them in that edition; `reason` and `location` for a language it does
    not give. `appearances`: per language, the visible signature on the letter page (the first
    page of part 1); an edition without one is signed invisibly. `workers`: PDFs signed at
    once, each in a thread of its own; the files come in the order of `pdfs` whatever it is."""
    if not pdfs:
        raise RenderError("a bundle needs at least one PDF")
    _check_names(pdfs)

    def finish(pdf: UnsignedPdf) -> BundleFile:
        own_reason, own_location = (signature_texts or {}).get(pdf.language, (reason, location))
        appearance = (appearances or {}).get(pdf.language) if pdf.part in (1, LETTER_PART) else None
        return finish_pdf(pdf, facts, identity, reason=own_reason, location=own_location,
                          policy=policy, appearance=appearance)

    done = list(zip(pdfs, in_order(finish, pdfs, workers), strict=True))
    manifest = manifest_json(facts, done, identity)
    files = [f for _, f in done]
    files.append(BundleFile(name=MANIFEST_NAME, kind="manifest", language="", part=0, pages=None,
                            data=manifest))
    if identity is not None:
        files.append(BundleFile(name=SIGNATURE_NAME, kind="manifest-signature", language="",
                                part=0, pages=None, data=sign_detached(manifest, identity, policy)))
    return files


def in_order(work: Callable[[UnsignedPdf], BundleFile], pdfs: Sequence[UnsignedPdf],
             workers: int) -> list[BundleFile]:
    """`work` done on each PDF, in `workers` threads at once → its results in the order of `pdfs`.
    Once one fails no other PDF starts (at B-T and above each may wait out a timeout); those
    running finish, and what is raised is what doing them in turn raises: the first PDF's failure."""
    if workers <= 1 or len(pdfs) <= 1:
        return [work(pdf) for pdf in pdfs]
    waiting = iter(enumerate(pdfs))
    results: dict[int, BundleFile] = {}
    failures: dict[int, BaseException] = {}
    with ThreadPoolExecutor(max_workers=min(workers, len(pdfs)), thread_name_prefix="sign") as pool:
        # fed one PDF per finished one, never queued ahead: a queued PDF would start after a failure
        running = {pool.submit(work, pdf): i for i, pdf in itertools.islice(waiting, workers)}
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                index, failure = running.pop(future), future.exception()
                if failure is None:
                    results[index] = future.result()
                else:
                    failures[index] = failure
            if not failures:
                running |= {pool.submit(work, pdf): i
                            for i, pdf in itertools.islice(waiting, len(finished))}
    if failures:
        raise failures[min(failures)]
    return [results[i] for i in range(len(pdfs))]


def finish_pdf(pdf: UnsignedPdf, facts: BundleFacts, identity: SigningIdentity | None, *,
               reason: str, location: str, policy: SignaturePolicy | None = None,
               appearance: Appearance | None = None) -> BundleFile:
    """One unsigned PDF → its bundle file: dossier.json embedded, and signed by `identity` (with
    `reason`, `location` and, when given, the visible `appearance`) unless that is None."""
    payload = dossier_json(facts, pdf, identity)
    if identity is None:
        data = embed_dossier_json(pdf.data, payload, created_at=facts.created_at, pages=pdf.pages)
    else:
        # dossier.json goes into the signing revision itself: one parse and one write of the
        # part instead of two (12.6 MB part: 0.16 s instead of 0.23 s, embed then sign).
        data = sign_pdf(pdf.data, identity, reason=reason, location=location, policy=policy,
                        prepare=_embedding(payload, created_at=facts.created_at, pages=pdf.pages),
                        appearance=appearance)
    return BundleFile(name=pdf.name, kind=LETTER if pdf.part == LETTER_PART else "pdf",
                      language=pdf.language, part=pdf.part, pages=pdf.pages, data=data)


# ---------------------------------------------------------------- reading a manifest back

_TOP: dict[str, type | tuple[type, ...]] = {
    "format": str, "format_version": int, "campaign": dict, "dossier_id": str, "trigger": str,
    "milestone": (int, type(None)), "signer_count": int, "listed_count": int, "last_signer": dict,
    "template_version": str, "created_at": str, "signed_by": (dict, type(None)), "files": list,
}
_FILE: dict[str, type | tuple[type, ...]] = {
    "name": str, "language": str, "part": int, "parts": int, "pages": int, "size": int,
    "sha256": str,
}


def read_manifest(data: bytes) -> dict[str, object]:
    """Parse manifest.json and check its shape; InputRefused naming the first problem."""
    doc = _load_json(data, MANIFEST_NAME)
    if not isinstance(doc, dict):
        raise InputRefused(MANIFEST_NAME, "document is not an object")
    _shape(doc, _TOP, "")
    if doc["format"] != MANIFEST_FORMAT:
        raise InputRefused(MANIFEST_NAME, f"format is {doc['format']!r}, not {MANIFEST_FORMAT!r}")
    if doc["format_version"] != FORMAT_VERSION:
        raise InputRefused(MANIFEST_NAME, f"format_version {doc['format_version']} is not supported")
    _shape(doc["campaign"], {"slug": str, "title": str}, "campaign.")
    _shape(doc["last_signer"], {"number": int, "signed_on": (str, type(None))}, "last_signer.")
    if doc["signed_by"] is not None:
        _shape(doc["signed_by"], {"subject": str, "sha256": str}, "signed_by.")
    if not doc["files"]:
        raise InputRefused(MANIFEST_NAME, "lists no files")
    if not isinstance(doc.get("letters", []), list):
        raise InputRefused(MANIFEST_NAME, "letters has the wrong type")
    names: set[str] = set()
    for key in ("files", "letters"):
        for i, entry in enumerate(doc.get(key, [])):
            _shape(entry, _FILE, f"{key}[{i}].")
            name = entry["name"]
            if not _plain_pdf_name(name) or name in names:
                raise InputRefused(MANIFEST_NAME, f"{key}[{i}].name {name!r} is not a unique plain name")
            names.add(name)
            sha = entry["sha256"]
            if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                raise InputRefused(MANIFEST_NAME, f"{key}[{i}].sha256 is not a SHA-256 hex digest")
    return dict(doc)


def _plain_pdf_name(name: str) -> bool:
    """What _check_names lets into a bundle: no folder, no hidden or control-character name."""
    return (name.lower().endswith(".pdf") and not name.startswith(".")
            and "/" not in name and "\\" not in name and name.isprintable())


def _shape(obj: object, spec: Mapping[str, type | tuple[type, ...]], where: str) -> None:
    if not isinstance(obj, dict):
        raise InputRefused(MANIFEST_NAME, f"{where.rstrip('.') or 'document'} is not an object")
    for key, kind in spec.items():
        if key not in obj:
            raise InputRefused(MANIFEST_NAME, f"{where}{key} is missing")
        value = obj[key]
        # bool is an int in Python; a count of `true` is still wrong
        if isinstance(value, bool) or not isinstance(value, kind):
            raise InputRefused(MANIFEST_NAME, f"{where}{key} has the wrong type")
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise InputRefused(MANIFEST_NAME, f"{where}{key} is longer than {MAX_TEXT} characters")


# ---------------------------------------------------------------- bounded JSON

def _load_json(data: bytes, source: str) -> object:
    if len(data) > MAX_JSON_BYTES:
        raise InputRefused(source, f"is larger than {MAX_JSON_BYTES:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputRefused(source, f"is not valid UTF-8 JSON ({exc})") from exc
    if _too_deep(text):
        raise InputRefused(source, f"nests deeper than {MAX_JSON_DEPTH} levels")

    def bounded_int(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise InputRefused(source, f"holds a number of more than {MAX_INT_DIGITS} digits")
        return int(digits)

    def no_constant(name: str) -> object:
        raise InputRefused(source, f"is not valid UTF-8 JSON ({name} is not a JSON value)")

    try:
        return json.loads(text, parse_int=bounded_int, parse_constant=no_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise InputRefused(source, f"is not valid UTF-8 JSON ({_first_line(exc)})") from exc


def _too_deep(text: str) -> bool:
    """Whether brackets outside strings nest deeper than MAX_JSON_DEPTH."""
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif bracket in ("]", "}"):
            depth -= 1
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
