"""Key files + PDF bytes → PAdES-certified PDF bytes; manifest bytes → detached CMS signature.

`load_identity` reads DELIVERY_SIGNING_KEY / DELIVERY_SIGNING_CERT (PEM, or one PKCS#12 file) and
fails closed with a `SigningError` naming the problem in one line; `identity_from_bytes` does the
same for uploaded bytes (a PKCS#12 file, or a key and its certificate). `sign_pdf` certifies a PDF with
DocMDP "no changes allowed" (PAdES subfilter, SHA-256, the certificate chain, reason, location and
the signing time in /M) at the PAdES level of a `SignaturePolicy` (delivery.bundle.ltv: B-B, or
with an RFC 3161 timestamp, validation data and a document timestamp up to B-LTA). Every call
signs anew, so the same input gives different bytes: the caller stores what it gets.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from delivery.bundle import ltv
from delivery.bundle.appearance import (
    Appearance,
    add_tagged_field,
    described,
    field_spec,
    stamp_style,
    stamp_text,
)
from delivery.bundle.ltv import SignaturePolicy
from delivery.errors import SigningError
from delivery.settings import Settings

SigningKey = (rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
              | ed448.Ed448PrivateKey)
PKCS12_SUFFIXES = (".p12", ".pfx")
DEMO_VALIDITY = timedelta(days=730)
T = TypeVar("T")


@dataclass(frozen=True)
class SigningIdentity:
    """A private key, its certificate, and the certificates that chain it to a root."""

    key: SigningKey = field(repr=False)
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def display_name(self) -> str:
        """The certificate's common name (its organization, or its whole subject, without one)."""
        for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
            found = self.cert.subject.get_attributes_for_oid(oid)
            if found:
                return str(found[0].value)
        return self.subject

    @property
    def not_after(self) -> datetime:
        return self.cert.not_valid_after_utc

    @property
    def self_signed(self) -> bool:
        return is_self_signed(self.cert)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate, as `openssl x509 -fingerprint -sha256` prints it."""
        return fingerprint(self.cert)


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


# ---------------------------------------------------------------- loading (fail closed)

class IdentityRefused(SigningError):
    """Key or certificate material that cannot make an identity; `part` is the piece at fault:
    "key", "cert", "pkcs12" or "passphrase"."""

    def __init__(self, message: str, *, part: str) -> None:
        super().__init__(message)
        self.part = part


@dataclass(frozen=True)
class _Names:
    """How the messages name the material: the configured files and variables, or uploads."""

    key: str
    certs: str
    pkcs12: str
    pkcs12_key: str
    encrypted_hint: str  # what to do about an encrypted key given without a passphrase
    wrong_hint: str = ""  # after "wrong passphrase": where the passphrase came from


def _file_names(key_path: Path, cert_path: Path | None) -> _Names:
    return _Names(key=f"signing key {key_path}", certs=f"signing certificate {cert_path}",
                  pkcs12=f"PKCS#12 file {key_path}", pkcs12_key=f"signing key {key_path}",
                  encrypted_hint="set DELIVERY_SIGNING_PASSPHRASE",
                  wrong_hint=" (DELIVERY_SIGNING_PASSPHRASE)")


UPLOADED = _Names(key="the key file", certs="the certificate file", pkcs12="the PKCS#12 file",
                  pkcs12_key="the key in the PKCS#12 file", encrypted_hint="give its passphrase")


def load_identity(settings: Settings, *, now: datetime) -> SigningIdentity:
    """The configured signing identity, checked for use at `now`; SigningError on any problem."""
    key_path, cert_path = settings.signing_key, settings.signing_cert
    if key_path is None:
        raise SigningError("signing is not configured: set DELIVERY_SIGNING_KEY (and "
                           "DELIVERY_SIGNING_CERT for a PEM key)")
    passphrase = settings.signing_passphrase
    names = _file_names(key_path, cert_path)
    if key_path.suffix.lower() in PKCS12_SUFFIXES:
        if cert_path is not None:
            raise SigningError(f"DELIVERY_SIGNING_KEY {key_path} is a PKCS#12 file, which holds the "
                               "certificate: leave DELIVERY_SIGNING_CERT unset")
        key, certs = _load_pkcs12(_read(key_path, "PKCS#12 file"), passphrase, names)
    elif cert_path is None:
        raise SigningError("DELIVERY_SIGNING_CERT is not set: a PEM key needs its certificate "
                           "(or point DELIVERY_SIGNING_KEY at a .p12/.pfx file)")
    else:
        key = _load_key(_read(key_path, "signing key"), passphrase, names)
        certs = _load_certs(_read(cert_path, "signing certificate"), names)
    identity = _pair(key, certs, str(cert_path or key_path))
    check_usable(identity, now=now)
    return identity


def identity_from_bytes(*, pkcs12_data: bytes | None = None, key_data: bytes | None = None,
                        cert_data: bytes | None = None, passphrase: str | None = None,
                        now: datetime) -> SigningIdentity:
    """Uploaded material → the identity it makes, checked for use at `now`: a PKCS#12 file
    (`pkcs12_data`), or a PEM/DER private key with its PEM/DER certificate and chain
    (`key_data`, `cert_data`). IdentityRefused naming the piece at fault, or SigningError."""
    if pkcs12_data is not None:
        if key_data is not None or cert_data is not None:
            raise IdentityRefused("give either a PKCS#12 file or a key and its certificate, not both",
                                  part="pkcs12")
        key, certs = _load_pkcs12(pkcs12_data, passphrase, UPLOADED)
        source = UPLOADED.pkcs12
    else:
        if key_data is None:
            raise IdentityRefused("the key file is missing", part="key")
        if cert_data is None:
            raise IdentityRefused("the certificate file is missing", part="cert")
        key = _load_key(key_data, passphrase, UPLOADED)
        certs = _load_certs(cert_data, UPLOADED)
        source = UPLOADED.certs
    identity = _pair(key, certs, source)
    try:
        check_usable(identity, now=now)
    except SigningError as exc:
        raise IdentityRefused(str(exc), part="cert") from exc
    return identity


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _load_key(data: bytes, passphrase: str | None, names: _Names) -> SigningKey:
    load = (serialization.load_pem_private_key if b"-----BEGIN" in data
            else serialization.load_der_private_key)
    password = passphrase.encode() if passphrase else None
    try:
        try:
            key = load(data, password)
        except TypeError as exc:
            if password is None:
                raise IdentityRefused(f"{names.key} is encrypted: {names.encrypted_hint}",
                                      part="passphrase") from exc
            key = load(data, None)  # a passphrase for an unencrypted key is harmless
    except ValueError as exc:
        if password is not None and b"ENCRYPTED" in data:
            raise IdentityRefused(f"wrong passphrase for {names.key}{names.wrong_hint}",
                                  part="passphrase") from exc
        raise IdentityRefused(f"{names.key} is not a readable PEM or DER private key", part="key") from exc
    except UnsupportedAlgorithm as exc:
        raise IdentityRefused(f"{names.key} uses an unsupported algorithm", part="key") from exc
    return _supported_key(key, names.key, part="key")


def _supported_key(key: object, name: str, *, part: str) -> SigningKey:
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise IdentityRefused(f"{name} is RSA-{key.key_size}: use at least 2048 bits", part=part)
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
                  | ed448.Ed448PrivateKey):
        return key
    raise IdentityRefused(f"{name} is not an RSA, EC or EdDSA key", part=part)


def _load_certs(data: bytes, names: _Names) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise IdentityRefused(f"{names.certs} is not a readable PEM or DER certificate",
                              part="cert") from exc


def _load_pkcs12(data: bytes, passphrase: str | None,
                 names: _Names) -> tuple[SigningKey, list[x509.Certificate]]:
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            data, passphrase.encode() if passphrase else None)
    except ValueError as exc:
        raise IdentityRefused(f"cannot open {names.pkcs12}: wrong passphrase{names.wrong_hint} "
                              "or not a PKCS#12 file", part="pkcs12") from exc
    if key is None or cert is None:
        raise IdentityRefused(f"{names.pkcs12} must hold both a private key and its certificate",
                              part="pkcs12")
    return _supported_key(key, names.pkcs12_key, part="pkcs12"), [cert, *extra]


def _pair(key: SigningKey, certs: list[x509.Certificate], source: str) -> SigningIdentity:
    """Pick the certificate of `key` among `certs`; the others are its chain."""
    spki = _spki(key.public_key())
    for i, cert in enumerate(certs):
        if _spki(cert.public_key()) == spki:
            return SigningIdentity(key=key, cert=cert, chain=tuple(certs[:i] + certs[i + 1:]))
    raise IdentityRefused(f"the signing key does not match the certificate in {source}", part="cert")


def _spki(public_key: Any) -> bytes:
    data: bytes = public_key.public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


def check_usable(identity: SigningIdentity, *, now: datetime) -> None:
    """SigningError unless the certificate is valid at `now` and allowed to sign documents."""
    cert, now = identity.cert, now if now.tzinfo else now.replace(tzinfo=UTC)
    name = identity.subject
    if now < cert.not_valid_before_utc:
        raise SigningError(f"signing certificate {name} is not valid yet: valid from "
                           f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if now > cert.not_valid_after_utc:
        raise SigningError(f"signing certificate {name} expired on "
                           f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise SigningError(f"signing certificate {name} has no key usage: it needs "
                           "digitalSignature or nonRepudiation") from exc
    if not (usage.digital_signature or usage.content_commitment):
        raise SigningError(f"signing certificate {name} may not sign documents: its key usage "
                           "lacks digitalSignature and nonRepudiation")


# ---------------------------------------------------------------- demo identity

def ensure_demo_identity(var_dir: Path, common_name: str, *, now: datetime) -> tuple[Path, Path]:
    """A self-signed EC P-256 key and certificate under var_dir/signing/, made once and reused
    while valid for at least another day; returns (key_path, cert_path)."""
    folder = var_dir / "signing"
    key_path, cert_path = folder / "demo-key.pem", folder / "demo-cert.pem"
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    if key_path.is_file() and cert_path.is_file():
        try:
            names = _file_names(key_path, cert_path)
            identity = _pair(_load_key(_read(key_path, "signing key"), None, names),
                             _load_certs(_read(cert_path, "signing certificate"), names), str(cert_path))
            check_usable(identity, now=now + timedelta(days=1))
            return key_path, cert_path
        except SigningError:
            pass  # expired or damaged demo material: make a new pair
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = demo_certificate(key, common_name, now=now)
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def demo_certificate(key: ec.EllipticCurvePrivateKey, common_name: str, *,
                     now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                                         "petition-delivery (self-signed)")])
    usage = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                          crl_sign=False, encipher_only=False, decipher_only=False)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + DEMO_VALIDITY)
            .add_extension(usage, critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- signing

def _asn1(cert: x509.Certificate) -> Any:
    # pyHanko works on asn1crypto objects: hand it DER and let it parse
    return next(iter(load_certs_from_pemder_data(cert.public_bytes(serialization.Encoding.DER))))


def _signer(identity: SigningIdentity) -> signers.SimpleSigner:
    key_der = identity.key.private_bytes(serialization.Encoding.DER,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    registry = SimpleCertificateStore()  # type: ignore[no-untyped-call]
    for cert in identity.chain:
        registry.register(_asn1(cert))
    return signers.SimpleSigner(
        signing_cert=_asn1(identity.cert),
        signing_key=load_private_key_from_pemder_data(key_der, passphrase=None),
        cert_registry=registry,
    )


def check_signing_services(identity: SigningIdentity, policy: SignaturePolicy) -> None:
    """At B-T and above, that the timestamp authority answers; at B-LT and above, that the
    signing certificate is not revoked (asked online now) and both chain to the trust roots.
    SigningError, or SigningUnavailable when a service did not answer; B-B checks nothing."""
    if not policy.timestamped:
        return
    run_sync(ltv.check_services(_asn1(identity.cert), [_asn1(c) for c in identity.chain], policy,
                                signer=identity.subject))


def sign_pdf(data: bytes, identity: SigningIdentity, *, reason: str, location: str,
             policy: SignaturePolicy | None = None,
             prepare: Callable[[IncrementalPdfFileWriter], None] | None = None,
             appearance: Appearance | None = None) -> bytes:
    """`data` certified by `identity` (DocMDP no changes) at `policy`'s PAdES level (B-B when
    None); SigningError if it cannot be done, SigningUnavailable when a service it needs did not
    answer. `prepare` adds to the signing revision first (what it raises is raised as it is).
    With `appearance`, the signature is visible (delivery.bundle.appearance); else invisible."""
    policy = policy or SignaturePolicy()
    try:
        writer = IncrementalPdfFileWriter(BytesIO(data), strict=True)
    except Exception as exc:  # pyHanko's reader raises many kinds for a PDF it cannot read
        raise SigningError(f"cannot sign the PDF: {_first_line(exc)}") from exc
    if prepare is not None:
        prepare(writer)
    visible: dict[str, Any] = {}
    if appearance is not None:
        visible["stamp_style"] = stamp_style(stamp_text(appearance, identity.display_name))
        if not add_tagged_field(writer, appearance, described(appearance, identity.display_name)):
            visible["new_field_spec"] = field_spec(appearance)

    async def sign() -> bytes:
        # made in the event loop that uses it: its HTTP sessions belong to that loop
        context = ltv.validation_context(policy)
        meta = signers.PdfSignatureMetadata(
            field_name="Signature", md_algorithm="sha256", reason=reason, location=location,
            certify=True, docmdp_permissions=fields.MDPPerm.NO_CHANGES,
            subfilter=fields.SigSeedSubFilter.PADES, validation_context=context,
            embed_validation_info=policy.long_term, use_pades_lta=policy.archival,
        )
        pdf_signer = signers.PdfSigner(meta, signer=_signer(identity),
                                       timestamper=ltv.timestamper(policy), **visible)
        try:
            out = await pdf_signer.async_sign_pdf(writer)
        finally:
            if context is not None:
                await context.aclose()  # type: ignore[no-untyped-call]
        signed: bytes = out.getvalue()
        return signed

    try:
        return run_sync(sign())
    except Exception as exc:  # pyHanko and aiohttp raise many kinds; nothing may go out unsigned
        raise ltv.explain(exc, policy, signer=identity.subject) from exc


def sign_detached(data: bytes, identity: SigningIdentity,
                  policy: SignaturePolicy | None = None) -> bytes:
    """A detached CMS SignedData (DER) over `data`, with the certificate chain, and from B-T on
    an RFC 3161 timestamp of the signature (CAdES-T)."""
    policy = policy or SignaturePolicy()

    async def sign() -> bytes:
        info = await _signer(identity).async_sign_general_data(
            data, "sha256", detached=True, timestamper=ltv.timestamper(policy))
        der: bytes = info.dump()
        return der

    try:
        return run_sync(sign())
    except Exception as exc:  # same as above: fail closed whatever pyHanko raises
        raise ltv.explain(exc, policy, signer=identity.subject, signing="the manifest") from exc


def _first_line(exc: BaseException) -> str:
    return ltv.first_line(exc)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run pyHanko's async API from sync code, also when called inside a running event loop."""
    result: list[T] = []

    async def kept() -> None:
        # The task's result stays None: Python 3.11's asyncio.run, in the main thread, takes the
        # repr of its task twice (CPython gh-112559), its result's included, and the repr of a
        # signed PDF is up to four times its size: 2 × 35 ms of the 125 ms a 6.1 MB part took.
        result.append(await coro)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(kept())
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, kept()).result()
    return result[0]
