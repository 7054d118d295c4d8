"""A received dossier (a PDF, an .eml, or a folder of either) → a VerifyReport: one verdict per file.

What must hold for `ok`:
- each PDF carries exactly one signature, a certification with DocMDP "no changes allowed", that is
  intact and covers the entire file (a flipped byte, bytes appended after the end, or any
  incremental update fail), save for long-term validation data added after it: a Document
  Security Store and document timestamps, which pyHanko's difference analysis must class as
  nothing but that (ModificationLevel.LTA_UPDATES);
- the signer's certificate chains to the root given with `trust` (the campaign's certificate, or
  its CA). Without `trust` a signature cannot be attributed to anyone, so an untrusted certificate
  fails UNLESS `allow_untrusted=True` (CLI `--allow-untrusted`), in which case it is reported as
  "self-signed / untrusted" with its SHA-256 fingerprint for comparison by other means;
- every page shows the footer f"{dossier_id} · {signer_count:,}" of the facts in manifest.json
  (or, for a PDF alone, in its embedded dossier.json), and the embedded dossier.json agrees;
- with a manifest.json: its detached signature manifest.json.p7s is present, intact and made by the
  same certificate as the PDFs, and every listed file is present with its size and SHA-256, and no
  unlisted PDF is present;
- nothing is a preview: neither manifest.json nor any embedded dossier.json says trigger
  "preview" or a dossier id starting "PREVIEW-", whether a PDF comes alone or with its manifest.
Validation time is now: a certificate that has expired since signing fails with --trust.

Each PDF's verdict names the PAdES level it reached and its signing time: B-B (the signature
alone; the time the signer's clock gave), B-T (an RFC 3161 timestamp of the signature, whose time
is then the signing time), B-LT (also validation data from which pyHanko's AdES validation, with
the --trust roots and nothing fetched, establishes the signature) and B-LTA (also a valid, trusted
document timestamp over that data). Levels above B-T are only established with --trust. Nothing is
ever fetched from the network: the URLs in a received file are not followed.

Received files are hostile until checked: sizes, JSON depth and numbers are bounded, and whatever
cannot be read or checked is a FAIL line, never an exception. Only a path that holds nothing to
check (or a --trust file that is no certificate) raises InputRefused.
"""

from __future__ import annotations

import email
import email.errors
import email.policy
import hashlib
import importlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import (
    async_validate_detached_cms,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager

from delivery.artifacts import PART_BYTES
from delivery.bundle.assemble import (
    EMBEDDED_NAME,
    MANIFEST_NAME,
    MAX_JSON_BYTES,
    MAX_TEXT,
    SIGNATURE_NAME,
    read_embedded_dossier,
    read_manifest,
)
from delivery.bundle.pagetext import page_texts
from delivery.bundle.sign import run_sync
from delivery.errors import InputRefused
from delivery.settings import SIGNATURE_LEVELS as LEVELS

# pyHanko logs each failed validation with a traceback; the verdicts say it in one line. A
# NullHandler keeps Python's last-resort stderr handler quiet and leaves configured logging alone.
logging.getLogger("pyhanko").addHandler(logging.NullHandler())
logging.getLogger("pyhanko_certvalidator").addHandler(logging.NullHandler())
# asn1crypto ships no type information; through import_module its names are Any, not errors
cms = importlib.import_module("asn1crypto.cms")
KEY_USAGE = KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"},
                                match_all_key_usages=False)

# Everything read is held in memory at once. A PDF part, and the e-mail carrying parts, is about
# PART_BYTES; the bounds leave room for any real dossier and none for a disk-filling file.
MAX_FILE_BYTES = 16 * PART_BYTES
MAX_SIGNATURE_BYTES = 1_000_000  # a CMS signature and its certificate chain: kilobytes
MAX_BUNDLE_BYTES = 4 * 2**30
MAX_FILES = 1_000
# services.preview marks every preview so; the layers keep bundle from importing it from there
PREVIEW_TRIGGER = "preview"
PREVIEW_ID_PREFIX = "PREVIEW-"
PREVIEW_PROBLEM = "this is a preview built by the organizers, never a delivered dossier"
_BASE64_DEFECTS = (email.errors.InvalidBase64CharactersDefect,
                   email.errors.InvalidBase64PaddingDefect,
                   email.errors.InvalidBase64LengthDefect)


@dataclass
class FileVerdict:
    name: str
    ok: bool
    reason: str
    level: str | None = None  # a PDF's PAdES level: B-B, B-T, B-LT or B-LTA
    signing_time: datetime | None = None
    time_source: str | None = None  # "timestamp token" or "signer's clock"


@dataclass
class VerifyReport:
    verdicts: list[FileVerdict]
    signer: str | None
    trusted: bool

    @property
    def ok(self) -> bool:
        return bool(self.verdicts) and all(v.ok for v in self.verdicts)

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "signer": self.signer, "trusted": self.trusted, "level": self.level,
                "files": [{"name": v.name, "ok": v.ok, "reason": v.reason, "level": v.level,
                           "signing_time": v.signing_time.isoformat() if v.signing_time else None,
                           "time_source": v.time_source} for v in self.verdicts]}

    @property
    def level(self) -> str | None:
        """The lowest PAdES level among the PDFs (None without a PDF whose level was found)."""
        found = [v.level for v in self.verdicts if v.level]
        return min(found, key=LEVELS.index) if found else None

    def lines(self) -> list[str]:
        """What the CLI prints: one line per file, then the overall verdict."""
        out = [f"{'OK  ' if v.ok else 'FAIL'} {_shown(v.name)}: {_shown(v.reason)}"
               for v in self.verdicts]
        level = f" (PAdES {self.level})" if self.ok and self.level else ""
        out.append(f"VERIFIED: every check holds{level}" if self.ok else "NOT VERIFIED: see FAIL lines")
        return out


@dataclass
class _Signature:
    """What one signature check found, for the report's signer/trusted and cross-checks."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    readable: bool = True
    subject: str | None = None
    fingerprint: str | None = None
    trusted: bool = False
    level: str | None = None
    signing_time: datetime | None = None
    time_source: str | None = None


# ---------------------------------------------------------------- input

class _Refused(Exception):
    """A file that is not used, and why: its FAIL line."""


@dataclass
class _Bundle:
    """The files collected (name → bytes); FAIL verdicts and names of files refused on the way."""

    files: dict[str, bytes] = field(default_factory=dict)
    verdicts: list[FileVerdict] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    size: int = 0

    def add(self, name: str, data: bytes) -> None:
        if name in self.files:
            if self.files[name] != data:
                self.fail(name, "two different files carry this name")
            return
        if len(data) > _limit(name):
            self.fail(name, f"is larger than {_limit(name):,} bytes")
        elif self.size + len(data) > MAX_BUNDLE_BYTES:
            self.fail(name, f"not checked: the files given exceed {MAX_BUNDLE_BYTES:,} bytes in all")
        elif len(self.files) >= MAX_FILES:
            self.fail(name, f"not checked: more than {MAX_FILES:,} files are given")
        else:
            self.files[name] = data
            self.size += len(data)

    def fail(self, name: str, reason: str) -> None:
        self.verdicts.append(FileVerdict(name, False, reason))
        self.refused.add(name)


def _limit(name: str) -> int:
    return {MANIFEST_NAME: MAX_JSON_BYTES, SIGNATURE_NAME: MAX_SIGNATURE_BYTES}.get(
        name, MAX_FILE_BYTES)


def _collect(path: Path) -> _Bundle:
    """The bundle's files; InputRefused when `path` holds nothing to check."""
    if not path.exists():
        raise InputRefused(str(path), "no such file or folder")
    if path.is_file() and path.name in (MANIFEST_NAME, SIGNATURE_NAME):
        path = path.parent
    bundle = _Bundle()
    if path.is_dir():
        try:
            entries = sorted(p for p in path.iterdir() if p.is_file())
        except OSError as exc:
            raise InputRefused(str(path), f"cannot be read ({exc.strerror or exc})") from exc
        for p in entries:
            _take(bundle, p)
    elif path.is_file() and path.suffix.lower() in (".eml", ".pdf"):
        _take(bundle, path)
    else:
        raise InputRefused(str(path), "give a .pdf, an .eml, or a folder holding the dossier")
    if not bundle.verdicts and not any(n.lower().endswith(".pdf") or n == MANIFEST_NAME
                                       for n in bundle.files):
        raise InputRefused(str(path), "holds no PDF and no manifest.json")
    return bundle


def _take(bundle: _Bundle, path: Path) -> None:
    eml = path.suffix.lower() == ".eml"
    if not (eml or path.suffix.lower() == ".pdf" or path.name in (MANIFEST_NAME, SIGNATURE_NAME)):
        return
    try:
        data = _read(path, MAX_FILE_BYTES if eml else _limit(path.name))
    except _Refused as exc:
        bundle.fail(path.name, str(exc))
        return
    if eml:
        _take_attachments(bundle, path.name, data)
    else:
        bundle.add(path.name, data)


def _read(path: Path, limit: int) -> bytes:
    """The file's bytes; _Refused when it cannot be read or holds more than `limit`."""
    try:
        with path.open("rb") as f:
            if os.fstat(f.fileno()).st_size > limit:
                raise _Refused(f"is larger than {limit:,} bytes: not read")
            data = f.read(limit + 1)  # the size may lie (a file still growing, a /proc file)
    except OSError as exc:
        raise _Refused(f"cannot be read ({exc.strerror or exc})") from exc
    if len(data) > limit:
        raise _Refused(f"is larger than {limit:,} bytes: not read")
    return data


def _take_attachments(bundle: _Bundle, source: str, raw: bytes) -> None:
    try:
        parts = list(email.message_from_bytes(raw, policy=email.policy.default).walk())
        found = [(part, part.get_filename(), part.get_payload(decode=True)) for part in parts]
    except Exception as exc:  # the parser raises on hostile input, RecursionError on deep nesting
        bundle.fail(source, f"not a readable e-mail ({_first_line(exc)})")
        return
    for part, filename, payload in found:
        name = _plain_name(filename or "")
        if not name or not isinstance(payload, bytes):
            continue
        # decoding notes damaged base64 as a defect of the part and returns what it could decode
        if any(isinstance(d, _BASE64_DEFECTS) for d in part.defects):
            bundle.fail(name, f"its attachment in {source} is damaged (invalid base64)")
        else:
            bundle.add(name, payload)


def _plain_name(filename: str) -> str:
    """The last component of an attachment's file name, whichever slash its sender used."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _trust_roots(trust: Path | None) -> list[Any]:
    if trust is None:
        return []
    try:
        with trust.open("rb") as f:
            raw = f.read(MAX_SIGNATURE_BYTES + 1)
        if len(raw) > MAX_SIGNATURE_BYTES:
            raise InputRefused(str(trust), f"is larger than {MAX_SIGNATURE_BYTES:,} bytes: no "
                                           "certificate chain is")
        roots = list(load_certs_from_pemder_data(raw))
    except OSError as exc:
        raise InputRefused(str(trust), f"cannot read the trust certificate: {exc.strerror}") from exc
    except ValueError as exc:
        raise InputRefused(str(trust), "is not a PEM or DER certificate") from exc
    if not roots:
        raise InputRefused(str(trust), "holds no certificate")
    return roots


# ---------------------------------------------------------------- signatures

class _Trust:
    def __init__(self, roots: list[Any], source: Path | None, allow_untrusted: bool) -> None:
        self.roots, self.source, self.allow_untrusted = roots, source, allow_untrusted

    def context(self) -> ValidationContext:
        # An explicit (possibly empty) root list: never the operating system's TLS roots.
        return ValidationContext(trust_roots=self.roots, allow_fetching=False)

    def judge(self, found: _Signature, status: Any) -> None:
        cert = status.signing_cert
        found.subject = cert.subject.human_friendly
        found.fingerprint = cert.sha256.hex(":").upper()
        found.trusted = bool(status.trusted)
        if not (status.intact and status.valid):
            return  # pyHanko does not validate the certificate of a broken signature
        if found.trusted:
            found.notes.append(f"signed by {found.subject}")
            return
        self_signed = cert.self_signed != "no"
        what = "self-signed / untrusted" if self_signed else "untrusted"
        if self.source is not None:
            found.problems.append(f"certificate {found.subject} is not trusted by --trust "
                                  f"{self.source.name}")
        elif self.allow_untrusted:
            found.notes.append(f"signed by {found.subject}, {what} (SHA-256 "
                               f"{found.fingerprint}), accepted by --allow-untrusted")
        else:
            found.problems.append(f"certificate {found.subject} is {what}: pass --trust CERT "
                                  f"(SHA-256 {found.fingerprint}) or --allow-untrusted")


def _check_pdf_signature(data: bytes, trust: _Trust) -> _Signature:
    found = _Signature()
    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        sigs = reader.embedded_regular_signatures
    except Exception as exc:  # pyHanko's parser raises several kinds on a damaged file
        found.problems.append(f"not a readable PDF ({_first_line(exc)})")
        found.readable = False
        return found
    if not sigs:
        found.problems.append("not signed")
        return found
    if len(sigs) > 1:
        found.problems.append(f"carries {len(sigs)} signatures where the dossier has one: "
                              "it was signed again after delivery")
    sig = sigs[0]
    try:
        status = run_sync(async_validate_pdf_signature(
            sig, trust.context(), key_usage_settings=KEY_USAGE))
    except Exception as exc:
        found.problems.append(f"signature cannot be validated ({_first_line(exc)})")
        return found
    if not status.intact:
        found.problems.append("signed bytes were altered (the digest does not match)")
    elif not status.valid:
        found.problems.append("the signature value does not verify")
    long_term_updates = (status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
                         and status.modification_level == ModificationLevel.LTA_UPDATES)
    if long_term_updates:
        trailing = len(data) - (data.rfind(b"%%EOF") + len(b"%%EOF"))
        if data[len(data) - trailing:].strip():
            found.problems.append(f"{trailing} bytes follow the end of the file's last revision")
    elif status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        if reader.xrefs.total_revisions > sig.signed_revision + 1:
            found.problems.append("the file was changed after signing (an incremental update "
                                  "follows the signature)")
        else:
            extra = len(data) - (int(sig.byte_range[2]) + int(sig.byte_range[3]))
            found.problems.append(f"the signature does not cover the entire file ({max(extra, 0)} "
                                  "bytes after the signed range)")
    if sig.docmdp_level != MDPPerm.NO_CHANGES:
        found.problems.append("not certified with DocMDP 'no changes allowed'")
    elif status.docmdp_ok is False:
        found.problems.append("changes were made that the certification forbids")
    trust.judge(found, status)
    tst = status.timestamp_validity
    if tst is not None:
        if not (tst.intact and tst.valid):
            found.problems.append("the signature timestamp does not verify")
        else:
            found.signing_time, found.time_source = tst.timestamp.astimezone(UTC), "timestamp token"
    elif status.signer_reported_dt is not None:
        found.signing_time = status.signer_reported_dt.astimezone(UTC)
        found.time_source = "signer's clock"
    if found.signing_time is not None:
        found.notes.append(_time_note(found, tst))
    if status.intact and status.valid:
        try:
            found.level, why = _level(reader, sig, status, trust)
        except Exception as exc:  # the level is a finding of its own: it fails nothing else
            found.level, why = "B-B", f": a higher level cannot be established ({_first_line(exc)})"
        found.notes.append(f"PAdES {found.level}{why}")
    return found


def _level(reader: PdfFileReader, sig: Any, status: Any, trust: _Trust) -> tuple[str, str]:
    """The PAdES level an intact, valid signature reaches, and what kept it from the next one
    when that is worth saying (": …")."""
    tst = status.timestamp_validity
    if tst is None or not (tst.intact and tst.valid):
        return "B-B", ""
    if "/DSS" not in reader.root:
        return "B-T", ""
    if not trust.roots:
        return "B-T", ": its long-term validation data is checked only with --trust"
    try:
        result = run_sync(ades_lta_validation(sig, _offline_spec(trust.roots)))
    except Exception as exc:  # the AdES process raises on input it cannot follow
        return "B-T", f": its validation data cannot be evaluated ({_first_line(exc)})"
    if result.api_status is None or not result.api_status.bottom_line:
        why = str(result.failure_msg or result.ades_subindic).strip().splitlines()
        return "B-T", (": its embedded validation data does not establish the signature "
                       f"({why[0][:200] if why else 'no reason given'})")
    stamps = [t for t in reader.embedded_timestamp_signatures
              if t.signed_revision > sig.signed_revision]
    if not stamps:
        return "B-LT", ""
    last = stamps[-1]
    if "/DSS" not in reader.get_historical_root(last.signed_revision):
        return "B-LT", ": the last document timestamp does not cover the validation data"
    try:
        stamp = run_sync(async_validate_pdf_timestamp(last, validation_context=trust.context()))
    except Exception as exc:
        return "B-LT", f": the document timestamp cannot be validated ({_first_line(exc)})"
    if not (stamp.intact and stamp.valid):
        return "B-LT", ": the document timestamp does not verify"
    if not stamp.trusted:
        return "B-LT", ": the document timestamp's authority is not trusted by --trust"
    return "B-LTA", ""


def _offline_spec(roots: list[Any]) -> PdfSignatureValidationSpec:
    """AdES validation against `roots` with revocation information required for every
    certificate below them, taken only from the file itself."""
    return PdfSignatureValidationSpec(SignatureValidationSpec(
        cert_validation_policy=CertValidationPolicySpec(
            trust_manager=SimpleTrustManager.build(trust_roots=roots),
            revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO)),
        revinfo_gathering_policy=RevocationInfoGatheringSpec(
            online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY),
        key_usage_settings=KEY_USAGE))


def _check_cms(manifest: bytes, p7s: bytes, trust: _Trust) -> _Signature:
    found = _Signature()
    try:
        info = cms.ContentInfo.load(p7s)
        signed_data = info["content"]
        if info["content_type"].native != "signed_data":
            raise ValueError("not CMS SignedData")
        status = run_sync(async_validate_detached_cms(
            manifest, signed_data, signer_validation_context=trust.context(),
            key_usage_settings=KEY_USAGE))
    except Exception as exc:  # asn1crypto/pyHanko raise several kinds on garbage
        found.problems.append(f"not a readable CMS signature ({_first_line(exc)})")
        return found
    if not status.intact:
        found.problems.append("does not match manifest.json: the manifest was altered after "
                              "signing")
    elif not status.valid:
        found.problems.append("the signature value does not verify")
    trust.judge(found, status)
    tst = status.timestamp_validity
    if tst is not None and not (tst.intact and tst.valid):
        found.problems.append("its timestamp does not verify")
    elif tst is not None:
        found.signing_time, found.time_source = tst.timestamp.astimezone(UTC), "timestamp token"
        found.notes.append(_time_note(found, tst))
    return found


def _time_note(found: _Signature, tst: Any) -> str:
    note = f"signing time {found.signing_time:%Y-%m-%d %H:%M:%S} UTC, from the {found.time_source}"
    return note + ("" if tst is None or tst.trusted else " (timestamp authority untrusted)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _shown(text: str) -> str:
    """`text` with control and format characters escaped: no name can forge a report line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


# ---------------------------------------------------------------- page text

def footer_problem(texts: list[str], dossier_id: str, signer_count: int) -> str | None:
    """None when every page shows f"{dossier_id} · {signer_count:,}", else the first problem."""
    expected = f"{dossier_id} · {signer_count:,}"
    missing = [i for i, t in enumerate(texts, 1) if expected not in t]
    if not texts:
        return "has no pages"
    if not missing:
        return None
    seen = re.search(re.escape(dossier_id) + r" · ([\d,]+)", texts[missing[0] - 1])
    if seen:
        return (f"page {missing[0]} footer says {seen.group(1)} signers, the dossier facts say "
                f"{signer_count:,} ('{expected}' on {len(texts) - len(missing)} of "
                f"{len(texts)} pages)")
    return f"page {missing[0]} of {len(texts)} lacks the footer '{expected}' ({len(missing)} pages)"


# ---------------------------------------------------------------- one PDF, the manifest, the lot

def _check_pdf(name: str, data: bytes, manifest: dict[str, Any] | None, trust: _Trust,
               ) -> tuple[FileVerdict, _Signature]:
    sig = _check_pdf_signature(data, trust)
    problems, notes = list(sig.problems), list(sig.notes)
    entry = None
    if manifest is not None:
        entry = next((f for f in [*manifest["files"], *manifest.get("letters", [])] if f["name"] == name),
                     None)
        if entry is None:
            problems.append(f"not listed in {MANIFEST_NAME}")
        elif entry["size"] != len(data) or entry["sha256"] != _sha256(data):
            problems.append(f"size or SHA-256 differs from {MANIFEST_NAME} (altered, or a file "
                            "from another dossier)")
        else:
            notes.append(f"SHA-256 matches {MANIFEST_NAME}")
        signed_by = manifest["signed_by"] or {}
        if sig.fingerprint and signed_by.get("sha256") not in (None, sig.fingerprint):
            problems.append(f"signed by another certificate than {MANIFEST_NAME} names")
    if not sig.readable:
        return FileVerdict(name, False, "; ".join(problems)), sig
    embedded: dict[str, Any] | None = None
    read = _embedded_facts(data)
    if isinstance(read, str):
        problems.append(read)
    else:
        embedded = read
        problems += _compare_embedded(embedded, manifest, entry, name)
        problems += _preview_problems(embedded)
    facts = manifest or embedded
    if facts is not None:
        pages = entry["pages"] if entry else embedded["file"]["pages"] if embedded else None
        found = _check_pages(data, facts["dossier_id"], facts["signer_count"], pages)
        problems += found
        if not found:
            notes.append(f"footer '{facts['dossier_id']} · {facts['signer_count']:,}' on every page")
    ok = not problems
    return FileVerdict(name, ok, "; ".join(problems if not ok else notes), level=sig.level,
                       signing_time=sig.signing_time, time_source=sig.time_source), sig


# What verify reads of an embedded dossier.json; assemble.dossier_json writes all of it.
_EMBEDDED_FACTS: dict[str, type] = {"dossier_id": str, "signer_count": int, "trigger": str,
                                    "file": dict}
_EMBEDDED_FILE: dict[str, type] = {"name": str, "language": str, "part": int, "pages": int}


def _embedded_facts(data: bytes) -> dict[str, Any] | str:
    """The PDF's embedded dossier.json when it has the facts verify reads, else the problem."""
    try:
        doc = read_embedded_dossier(data)
    except InputRefused as exc:
        return f"its embedded {EMBEDDED_NAME} {exc.problem}"
    if doc is None:
        return f"has no embedded {EMBEDDED_NAME}"
    wrong = _wrong_field(doc, _EMBEDDED_FACTS, "") or _wrong_field(doc["file"], _EMBEDDED_FILE,
                                                                   "file.")
    return f"its embedded {EMBEDDED_NAME}: {wrong}" if wrong else doc


def _wrong_field(doc: Mapping[str, Any], spec: Mapping[str, type], where: str) -> str | None:
    for key, kind in spec.items():
        value = doc.get(key)
        # bool is an int in Python; a count of `true` is still wrong
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"{where}{key} is missing or has the wrong type"
        if isinstance(value, str) and len(value) > MAX_TEXT:
            return f"{where}{key} is longer than {MAX_TEXT} characters"
    return None


def _preview_problems(facts: Mapping[str, Any]) -> list[str]:
    """[the problem] when manifest.json's or a dossier.json's facts are those of a preview."""
    dossier_id = facts.get("dossier_id")
    marked_id = isinstance(dossier_id, str) and dossier_id.upper().startswith(PREVIEW_ID_PREFIX)
    return [PREVIEW_PROBLEM] if facts.get("trigger") == PREVIEW_TRIGGER or marked_id else []


def _compare_embedded(embedded: dict[str, Any], manifest: dict[str, Any] | None,
                      entry: dict[str, Any] | None, name: str) -> list[str]:
    problems: list[str] = []
    own: dict[str, Any] = embedded["file"]
    if own["name"] != name:
        problems.append(f"its embedded dossier.json names it {own['name']!r}")
    if manifest is not None:
        for key in ("dossier_id", "signer_count", "trigger"):
            if embedded[key] != manifest[key]:
                problems.append(f"its embedded dossier.json says {key} {embedded[key]!r}, "
                                f"{MANIFEST_NAME} says {manifest[key]!r}")
    if entry is not None and (own["part"], own["language"]) != (entry["part"], entry["language"]):
        problems.append(f"it is part {own['part']} ({own['language']}), "
                        f"{MANIFEST_NAME} lists part {entry['part']} ({entry['language']})")
    return problems


def _check_pages(data: bytes, dossier_id: str, count: int, pages: int | None) -> list[str]:
    try:
        texts = page_texts(data)
    except Exception as exc:  # damaged files make extractors fail in many ways
        return [f"cannot read the page text ({_first_line(exc)})"]
    problems = []
    if pages is not None and pages != len(texts):
        problems.append(f"has {len(texts)} pages, the dossier facts say {pages}")
    footer = footer_problem(texts, dossier_id, count)
    if footer:
        problems.append(footer)
    return problems


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_manifest(bundle: _Bundle, trust: _Trust,
                    ) -> tuple[dict[str, Any] | None, list[FileVerdict], _Signature | None]:
    files = bundle.files
    raw = files[MANIFEST_NAME]
    try:
        manifest: dict[str, Any] = read_manifest(raw)
    except InputRefused as exc:
        return None, [FileVerdict(MANIFEST_NAME, False, exc.problem)], None
    verdicts: list[FileVerdict] = []
    # Each recipient receives the edition in their language: a received dossier is complete when
    # every file of each edition it contains is present; other editions are only noted. A file
    # given but refused (too large, damaged in its e-mail) has its own FAIL line: not "missing".
    given = files.keys() | bundle.refused
    # the letter alone (a link's e-mail) says which edition is meant as much as a part does
    listed = [*manifest["files"], *manifest.get("letters", [])]
    present = {f["language"] for f in listed if f["name"] in given}
    missing = [f["name"] for f in manifest["files"]
               if f["name"] not in given and (f["language"] in present or not present)]
    other = sorted({f["language"] for f in manifest["files"]} - present) if present else []
    verdicts += [FileVerdict(n, False, f"listed in {MANIFEST_NAME} but missing") for n in missing]
    sig = None
    problems = [f"{len(missing)} listed file(s) missing"] if missing else []
    problems += _preview_problems(manifest)
    if SIGNATURE_NAME not in files:
        problems.append(f"not signed: {SIGNATURE_NAME} is missing")
    else:
        sig = _check_cms(raw, files[SIGNATURE_NAME], trust)
        signed_by = manifest["signed_by"] or {}
        if sig.fingerprint and signed_by.get("sha256") not in (None, sig.fingerprint):
            sig.problems.append(f"made by another certificate than {MANIFEST_NAME} names")
        verdicts.append(FileVerdict(SIGNATURE_NAME, not sig.problems,
                                    "; ".join(sig.problems or ["signature over manifest.json "
                                                               "valid", *sig.notes]),
                                    signing_time=sig.signing_time, time_source=sig.time_source))
    reason = "; ".join(problems) or (f"dossier {manifest['dossier_id']}, "
                                     f"{manifest['signer_count']:,} signers, "
                                     f"{len(manifest['files'])} file(s) listed, "
                                     + (f"the {', '.join(sorted(present))} edition complete (the "
                                        f"{', '.join(other)} edition goes to other recipients)"
                                        if other else "all present"))
    return manifest, [FileVerdict(MANIFEST_NAME, not problems, reason), *verdicts], sig


# The last resort around each file's checks: pyHanko, pikepdf, pypdf and asn1crypto raise many
# kinds of exception on hostile bytes, and each must become that file's FAIL line.

def _guarded_manifest(bundle: _Bundle, trust: _Trust,
                      ) -> tuple[dict[str, Any] | None, list[FileVerdict], _Signature | None]:
    try:
        return _check_manifest(bundle, trust)
    except Exception as exc:
        return None, [FileVerdict(MANIFEST_NAME, False, f"cannot be checked ({_first_line(exc)})")], None


def _guarded_pdf(name: str, data: bytes, manifest: dict[str, Any] | None, trust: _Trust,
                 ) -> tuple[FileVerdict, _Signature]:
    try:
        return _check_pdf(name, data, manifest, trust)
    except Exception as exc:
        return FileVerdict(name, False, f"cannot be checked ({_first_line(exc)})"), _Signature()


def verify_path(path: Path, *, trust: Path | None = None,
                allow_untrusted: bool = False) -> VerifyReport:
    """Check a received dossier; InputRefused when `path` or `trust` is unusable."""
    judge = _Trust(_trust_roots(trust), trust, allow_untrusted)
    bundle = _collect(path)
    files, verdicts = bundle.files, list(bundle.verdicts)
    manifest, sigs = None, []
    if MANIFEST_NAME in files:
        manifest, manifest_verdicts, cms_sig = _guarded_manifest(bundle, judge)
        verdicts += manifest_verdicts
        sigs += [cms_sig] if cms_sig else []
    elif SIGNATURE_NAME in files and MANIFEST_NAME not in bundle.refused:
        verdicts.append(FileVerdict(SIGNATURE_NAME, False, f"{MANIFEST_NAME} is missing"))
    for name in sorted(n for n in files if n.lower().endswith(".pdf")):
        verdict, sig = _guarded_pdf(name, files[name], manifest, judge)
        verdicts.append(verdict)
        sigs.append(sig)
    if len({s.fingerprint for s in sigs if s.fingerprint}) > 1:
        verdicts.append(FileVerdict("(bundle)", False, "files are signed by different certificates"))
    signer = next((s.subject for s in sigs if s.subject), None)
    trusted = bool(sigs) and all(s.trusted for s in sigs)
    return VerifyReport(verdicts=verdicts, signer=signer, trusted=trusted)
