"""An uploaded PKCS#12 file, or a key and its certificate → the signing_identities row (audited
"signing.upload"); settings + that row → the identity dossiers are signed with, and the facts
the web admin's Signing page shows.

The DELIVERY_SIGNING_KEY files win when they are set; otherwise the uploaded identity is used.
The uploaded key is kept as PKCS#8 DER and its certificates as PEM, each sealed with AES-256-GCM
under a key derived by HKDF-SHA256 from DELIVERY_SECRET_KEY (`SEAL_INFO`), a fresh 96-bit nonce
in front, and the certificate's fingerprint as associated data, so that neither blob can be moved
to another row. Subject, issuer, validity, fingerprint and who uploaded it are kept in clear. An
upload replaces the stored one (the audit log keeps what each upload was); the passphrase is
used to open the upload and then forgotten.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select

from delivery.bundle.sign import (
    IdentityRefused,
    SigningIdentity,
    fingerprint,
    identity_from_bytes,
    load_identity,
)
from delivery.errors import SigningError
from delivery.services.app import App
from delivery.storage import audit
from delivery.storage.db import reading, transaction
from delivery.storage.models import SigningIdentityRow

SEAL_INFO = b"petition-delivery signing identity v1"
NONCE_BYTES = 12
FILES, UPLOADED = "files", "uploaded"
# messages, not secrets
NO_SECRET = ("DELIVERY_SECRET_KEY is not set: an uploaded signing key is kept encrypted under it, so "  # noqa: S105
             "set it (32+ random characters, the same on every instance) and restart the service")
WRONG_SECRET = ("the uploaded signing key cannot be decrypted: DELIVERY_SECRET_KEY is not the one it "  # noqa: S105
                "was uploaded under. Set that one again, or upload the certificate again")

# store and identity raise IdentityRefused and SigningError: entry points catch them from here
__all__ = ["FILES", "UPLOADED", "CertificateFacts", "IdentityRefused", "SigningError", "SigningView",
           "identity", "store", "view"]


@dataclass(frozen=True)
class CertificateFacts:
    """What the Signing page shows of one certificate."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    fingerprint: str
    uploaded_at: datetime | None = None  # None: from the DELIVERY_SIGNING_KEY files
    uploaded_by: str | None = None


@dataclass(frozen=True)
class SigningView:
    """The signing identity as configured: where it comes from and its facts."""

    source: str | None  # FILES, UPLOADED or None (none at all)
    files: tuple[str, ...]  # the DELIVERY_SIGNING_KEY (and _CERT) paths, when set
    files_certificate: CertificateFacts | None  # the files' certificate, when it could be read
    files_problem: str | None  # why the files cannot be used, when they cannot
    uploaded: CertificateFacts | None  # the stored upload (not used while the files are set)
    secret_key_set: bool  # uploads need DELIVERY_SECRET_KEY


def _facts(cert: x509.Certificate, *, uploaded_at: datetime | None = None,
           uploaded_by: str | None = None) -> CertificateFacts:
    return CertificateFacts(subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
                            not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                            fingerprint=fingerprint(cert), uploaded_at=uploaded_at, uploaded_by=uploaded_by)


def _row_facts(row: SigningIdentityRow) -> CertificateFacts:
    return CertificateFacts(subject=row.subject, issuer=row.issuer, not_before=row.not_before,
                            not_after=row.not_after, fingerprint=row.fingerprint,
                            uploaded_at=row.uploaded_at, uploaded_by=row.uploaded_by)


def _aead(app: App) -> AESGCM:
    secret = app.settings.web.secret_key
    if not secret:
        raise SigningError(NO_SECRET)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SEAL_INFO).derive(secret.encode())
    return AESGCM(key)


def _seal(aead: AESGCM, data: bytes, bound_to: str) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, data, bound_to.encode())


def _open(aead: AESGCM, sealed: bytes, bound_to: str) -> bytes:
    try:
        return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], bound_to.encode())
    except (InvalidTag, ValueError) as exc:
        raise SigningError(WRONG_SECRET) from exc


def store(app: App, *, now: datetime, actor: str, pkcs12: bytes | None = None, key: bytes | None = None,
          cert: bytes | None = None, passphrase: str | None = None) -> CertificateFacts:
    """Check the uploaded material (usable at `now`) and keep it in place of the stored one;
    IdentityRefused naming the piece at fault, SigningError without DELIVERY_SECRET_KEY."""
    aead = _aead(app)
    identity = identity_from_bytes(pkcs12_data=pkcs12, key_data=key, cert_data=cert,
                                   passphrase=passphrase or None, now=now)
    facts = _facts(identity.cert, uploaded_at=now, uploaded_by=actor)
    key_der = identity.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    certs_pem = b"".join(c.public_bytes(serialization.Encoding.PEM)
                         for c in (identity.cert, *identity.chain))
    with transaction(app.engine) as session:
        replaced = session.scalars(select(SigningIdentityRow.fingerprint)).all()
        session.execute(delete(SigningIdentityRow))
        session.add(SigningIdentityRow(
            subject=facts.subject, issuer=facts.issuer, not_before=facts.not_before,
            not_after=facts.not_after, fingerprint=facts.fingerprint,
            sealed_key=_seal(aead, key_der, facts.fingerprint),
            sealed_certs=_seal(aead, certs_pem, facts.fingerprint),
            uploaded_at=now, uploaded_by=actor))
        audit.record(session, at=now, actor=actor, action="signing.upload", subject=facts.fingerprint,
                     certificate=facts.subject, issuer=facts.issuer, not_after=facts.not_after,
                     kind="pkcs12" if pkcs12 is not None else "pem", replaced=list(replaced))
    return facts


def _stored(app: App) -> SigningIdentityRow | None:
    with reading(app.engine) as session:
        row = session.scalars(select(SigningIdentityRow).order_by(SigningIdentityRow.id.desc())
                              .limit(1)).first()
        if row is not None:
            session.expunge(row)
        return row


def _uploaded_identity(app: App, row: SigningIdentityRow, *, now: datetime) -> SigningIdentity:
    aead = _aead(app)
    key_der = _open(aead, row.sealed_key, row.fingerprint)
    certs_pem = _open(aead, row.sealed_certs, row.fingerprint)
    try:
        return identity_from_bytes(key_data=key_der, cert_data=certs_pem, now=now)
    except IdentityRefused as exc:
        raise SigningError(f"the uploaded signing certificate cannot be used: {exc}") from exc


def identity(app: App, *, now: datetime) -> SigningIdentity | None:
    """The identity to sign with at `now`: the DELIVERY_SIGNING_KEY files when set, else the
    uploaded one; None when there is neither. SigningError when the one there is cannot be used."""
    if app.settings.signing_key is not None:
        return load_identity(app.settings, now=now)
    row = _stored(app)
    return None if row is None else _uploaded_identity(app, row, now=now)


def view(app: App, *, now: datetime) -> SigningView:
    """What the Signing page shows: where the identity comes from, and each certificate's facts."""
    settings = app.settings
    files = tuple(str(p) for p in (settings.signing_key, settings.signing_cert) if p is not None)
    files_certificate, files_problem = None, None
    if settings.signing_key is not None:
        try:
            files_certificate = _facts(load_identity(settings, now=now).cert)
        except SigningError as exc:
            files_problem = str(exc)
    row = _stored(app)
    uploaded = _row_facts(row) if row is not None else None
    source = FILES if files else UPLOADED if uploaded is not None else None
    return SigningView(source=source, files=files, files_certificate=files_certificate,
                       files_problem=files_problem, uploaded=uploaded,
                       secret_key_set=bool(settings.web.secret_key))
