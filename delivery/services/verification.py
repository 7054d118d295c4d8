"""Files a recipient uploads → the verdict `petition-delivery verify` gives them, checked against
this installation's certificate, with the dossier facts the verified files carry; nothing is kept.

The trust is what `verify --trust` would be given here: DELIVERY_TRUST_ROOTS when set (the roots of
the signing certificate's CA and of the timestamp service, which B-LT and B-LTA need), else the
certificate this installation signs with. Since roots vouch for every certificate their CA issued,
each verified PDF's signing certificate is also compared with this installation's own, and the
verdict says whether it is that one.

The uploads are written into a private temporary folder (0700, under the system's temporary
folder) that is deleted before the verdict is returned, whatever happens; bundle.verify reads
them there and fetches nothing. The facts (dossier id, signer count and numbers, the parts given)
are read only from files that passed every check, so none comes from a forged or damaged file.
"""

from __future__ import annotations

import email
import email.policy
import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from io import BytesIO
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader

from delivery.bundle.assemble import MANIFEST_NAME, SIGNATURE_NAME, read_embedded_dossier, read_manifest
from delivery.bundle.sign import SigningIdentity
from delivery.bundle.verify import PREVIEW_PROBLEM, FileVerdict, VerifyReport, verify_path
from delivery.errors import InputRefused, SigningError
from delivery.services import signing_keys
from delivery.services.app import App
from delivery.settings import Settings

log = logging.getLogger("delivery.services.verification")

ROOTS = "roots"  # checked against DELIVERY_TRUST_ROOTS
CERTIFICATE = "certificate"  # checked against the installation's own signing certificate
SUFFIXES = (".pdf", ".eml")
NAMES = (MANIFEST_NAME, SIGNATURE_NAME)
_COPY_CHUNK = 1 << 20
MAX_NAME_BYTES = 200  # a file name in the temporary folder


class TrustUnavailable(Exception):
    """The trust file this installation names cannot be used: nothing can be checked now."""


@dataclass(frozen=True)
class Part:
    """One PDF given, as the verified dossier facts describe it."""

    name: str
    language: str
    part: int
    parts: int
    pages: int | None


@dataclass(frozen=True)
class Facts:
    """What the verified files say of their dossier (only from files that passed every check)."""

    dossier_id: str
    campaign: str
    signer_count: int
    listed_count: int | None
    last_number: int
    last_signed_on: date | None
    created_at: datetime | None
    parts: list[Part]
    missing: dict[str, list[int]]  # language → the part numbers of that edition not given
    other_languages: list[str] = field(default_factory=list)  # editions of the manifest not given

    @property
    def complete(self) -> bool:
        return bool(self.parts) and not any(self.missing.values())

    @property
    def languages(self) -> list[str]:
        return sorted({p.language for p in self.parts})


@dataclass(frozen=True)
class Verification:
    report: VerifyReport
    trust: str | None  # ROOTS, CERTIFICATE, or None: nothing to attribute a signature with
    own_fingerprint: str | None  # SHA-256 of the certificate this installation signs with
    preview: bool
    facts: Facts | None = None
    fingerprints: dict[str, str] = field(default_factory=dict)  # each PDF given → its certificate's
    mixed: bool = False  # the files given belong to different dossiers

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.mixed

    @property
    def own_certificate(self) -> bool | None:
        """Whether every signed PDF given is signed with this installation's certificate (None:
        not known, no signed PDF or no certificate here)."""
        if self.own_fingerprint is None or not self.fingerprints:
            return None
        return all(f == self.own_fingerprint for f in self.fingerprints.values())

    @property
    def signing_time(self) -> FileVerdict | None:
        """The PDF verdict with the earliest signing time (its source says where it came from)."""
        timed = [v for v in self.report.verdicts if v.signing_time and v.name.lower().endswith(".pdf")]
        return min(timed, key=lambda v: v.signing_time or datetime.max) if timed else None


def accepted_name(name: str) -> bool:
    """Whether `name` is a plain file name of a file verify reads: a PDF, an e-mail, the manifest
    or its signature."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate names no file
        return False
    plain = 0 < size <= MAX_NAME_BYTES and not name.startswith(".") and not any(c in name for c in "/\\\0")
    return plain and (name in NAMES or name.lower().endswith(SUFFIXES))


def verify_uploads(app: App, uploads: Sequence[tuple[str, IO[bytes]]], *, now: datetime) -> Verification:
    """Check the uploaded files (each a plain file name that `accepted_name` takes, given once)
    as `verify` checks a file or a folder; InputRefused when they hold nothing to check,
    TrustUnavailable when this installation's trust file cannot be read. Blocking."""
    identity = _own_identity(app, now)
    with tempfile.TemporaryDirectory(prefix="petition-verify-") as tmp:
        root = Path(tmp)
        trust, kind = _trust(app.settings, identity, root)
        folder = root / "files"
        folder.mkdir(mode=0o700)
        for name, source in uploads:
            _write(folder / _checked(name), source)
        given = sorted(folder.iterdir())
        target = given[0] if len(given) == 1 else folder
        try:
            report = verify_path(target, trust=trust, allow_untrusted=False)
        except InputRefused as exc:
            if trust is not None and exc.source == str(trust):
                log.error("the verify page cannot use %s: %s", trust, exc.problem)
                raise TrustUnavailable(exc.problem) from exc
            raise InputRefused(target.name if target != folder else "the files", exc.problem) from exc
        preview = any(PREVIEW_PROBLEM in v.reason for v in report.verdicts)
        manifests, pdfs = _given(given)
        fingerprints = {name: fp for name, data in pdfs.items() if (fp := _fingerprint(data))}
        facts: Facts | None = None
        mixed = False
        if report.ok:
            try:
                facts, mixed = _facts(manifests, pdfs)
            except InputRefused:  # verify read these files already; the verdict stands without facts
                log.warning("the verify page could not read the facts of verified files")
    log.info("verify page: %d file(s) checked, %s", len(uploads),
             "verified" if report.ok and not mixed else "not verified")
    return Verification(report=report, trust=kind, own_fingerprint=identity.fingerprint if identity else None,
                        preview=preview, facts=facts, fingerprints=fingerprints, mixed=mixed)


def _checked(name: str) -> str:
    if not accepted_name(name):
        raise ValueError(f"not a plain name of a file verify reads: {name!r}")
    return name


def _write(path: Path, source: IO[bytes]) -> None:
    with path.open("xb") as out:
        shutil.copyfileobj(source, out, _COPY_CHUNK)


def _own_identity(app: App, now: datetime) -> SigningIdentity | None:
    try:
        return signing_keys.identity(app, now=now)
    except SigningError as exc:
        log.warning("the verify page knows no signing certificate of this service: %s", exc)
        return None


def _trust(settings: Settings, identity: SigningIdentity | None,
           folder: Path) -> tuple[Path | None, str | None]:
    """The file to give verify as --trust, and which kind of trust it is."""
    if settings.trust_roots is not None:
        return settings.trust_roots, ROOTS
    if identity is None:
        return None, None
    # Only the certificate itself: a chain file may name an intermediate CA, which would vouch
    # for every certificate it issued.
    path = folder / "campaign-cert.pem"  # as the README names it for `verify --trust`
    path.write_bytes(identity.cert.public_bytes(serialization.Encoding.PEM))
    return path, CERTIFICATE


# ---------------------------------------------------------------- facts of verified files

def _given(given: list[Path]) -> tuple[list[bytes], dict[str, bytes]]:
    """The manifests and the PDFs among the files given, those attached to e-mails included."""
    manifests: list[bytes] = []
    pdfs: dict[str, bytes] = {}
    for path in given:
        data = path.read_bytes()
        if path.name == MANIFEST_NAME:
            manifests.append(data)
        elif path.suffix.lower() == ".pdf":
            pdfs[path.name] = data
        elif path.suffix.lower() == ".eml":
            attached = _attachments(data)
            if MANIFEST_NAME in attached:
                manifests.append(attached[MANIFEST_NAME])
            pdfs.update({n: d for n, d in attached.items() if n.lower().endswith(".pdf")})
    return manifests, pdfs


def _facts(raw_manifests: list[bytes], pdfs: dict[str, bytes]) -> tuple[Facts | None, bool]:
    """The dossier facts, and whether the files belong to different dossiers; only for files
    that verify accepted."""
    manifests: list[dict[str, Any]] = [read_manifest(m) for m in raw_manifests]
    embedded = {name: doc for name, data in pdfs.items() if (doc := _embedded(data)) is not None}
    sources: list[Mapping[str, Any]] = [*manifests, *embedded.values()]
    if not sources:
        return None, False
    if len({str(s.get("dossier_id")) for s in sources}) > 1:
        return None, True
    facts = manifests[0] if manifests else next(iter(embedded.values()))
    listed = {f["name"]: f for f in manifests[0]["files"]} if manifests else {}
    parts = [_part(name, listed.get(name) or embedded[name].get("file") or {})
             for name in sorted(pdfs) if name in listed or name in embedded]
    missing: dict[str, list[int]] = {}
    for language in sorted({p.language for p in parts}):
        edition = [p for p in parts if p.language == language]
        total = max(p.parts for p in edition)
        missing[language] = sorted(set(range(1, total + 1)) - {p.part for p in edition})
    last_signer = facts.get("last_signer")
    last: Mapping[str, Any] = last_signer if isinstance(last_signer, dict) else {}
    other = sorted({str(f["language"]) for f in manifests[0]["files"]} - set(missing)) if manifests else []
    return Facts(dossier_id=str(facts["dossier_id"]), campaign=_text(facts.get("campaign"), "title"),
                 signer_count=_int(facts.get("signer_count")),
                 listed_count=_opt_int(facts.get("listed_count")),
                 last_number=_int(last.get("number")), last_signed_on=_date(last.get("signed_on")),
                 created_at=_moment(facts.get("created_at")), parts=parts, missing=missing,
                 other_languages=other), False


def _part(name: str, entry: Mapping[str, Any]) -> Part:
    return Part(name=name, language=str(entry.get("language", "")), part=_int(entry.get("part")) or 1,
                parts=_int(entry.get("parts")) or 1, pages=_opt_int(entry.get("pages")))


def _attachments(raw: bytes) -> dict[str, bytes]:
    """An e-mail's attachments by their plain file name (verify has judged the e-mail already)."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        found: dict[str, bytes] = {}
        for part in message.walk():
            name = (part.get_filename() or "").replace("\\", "/").rsplit("/", 1)[-1]
            payload = part.get_payload(decode=True)
            if name and isinstance(payload, bytes):
                found.setdefault(name, payload)
        return found
    except Exception:  # the parser raises many kinds on input it cannot follow
        return {}


def _embedded(data: bytes) -> dict[str, Any] | None:
    try:
        return read_embedded_dossier(data)
    except InputRefused:
        return None


def _fingerprint(data: bytes) -> str | None:
    """SHA-256 of the certificate that made the PDF's signature, as verify writes it."""
    try:
        signatures = PdfFileReader(BytesIO(data), strict=False).embedded_regular_signatures
        return str(signatures[0].signer_cert.sha256.hex(":").upper()) if signatures else None
    except Exception:  # pyHanko's parser raises several kinds on a damaged file
        return None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object, key: str) -> str:
    return str(value.get(key, "")) if isinstance(value, dict) else ""


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _moment(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
