"""delivery.bundle.sign: loading a signing identity fails closed; signed PDFs are PAdES certifications that
pdfsig and pyHanko accept; the demo identity is made once; RFC 3161 timestamps from a loopback TSA."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import MDPPerm

from delivery.bundle.ltv import SignaturePolicy
from delivery.bundle.sign import (
    SigningIdentity,
    ensure_demo_identity,
    load_identity,
    run_sync,
    sign_detached,
    sign_pdf,
)
from delivery.errors import SigningError, SigningUnavailable
from tests.support.pdfs import make_cert, make_pdf, settings_for, tsa_server, write_pem

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def pem_identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key, cert = make_cert("Campaign Test Signer")
    return write_pem(tmp_path_factory.mktemp("pem"), "signer", key, cert)


@pytest.fixture(scope="module")
def identity(pem_identity: tuple[Path, Path]) -> SigningIdentity:
    return load_identity(settings_for(*pem_identity), now=NOW)


def _fail(tmp_path: Path, **kw: Any) -> str:
    key, cert = make_cert("Broken", **kw)
    with pytest.raises(SigningError) as err:
        load_identity(settings_for(*write_pem(tmp_path, "s", key, cert)), now=NOW)
    return str(err.value)


# ---------------------------------------------------------------- loading

def test_pem_identity_loads_with_its_facts(identity: SigningIdentity) -> None:
    assert identity.subject == "CN=Campaign Test Signer"
    assert identity.self_signed
    assert identity.chain == ()
    assert NOW < identity.not_after < NOW + timedelta(days=366)
    expected = identity.cert.fingerprint(hashes.SHA256()).hex(":").upper()
    assert identity.fingerprint == expected and len(identity.fingerprint) == 95
    assert "PrivateKey" not in repr(identity)


def test_not_configured_fails(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="not configured"):
        load_identity(settings_for(None, None), now=NOW)
    key_path, _ = write_pem(tmp_path, "s", *make_cert("X"))
    with pytest.raises(SigningError, match="DELIVERY_SIGNING_CERT is not set"):
        load_identity(settings_for(key_path, None), now=NOW)


def test_expired_certificate_fails(tmp_path: Path) -> None:
    reason = _fail(tmp_path, not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1))
    assert "expired on" in reason and "CN=Broken" in reason and "\n" not in reason


def test_not_yet_valid_certificate_fails(tmp_path: Path) -> None:
    reason = _fail(tmp_path, not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=30))
    assert "not valid yet" in reason


def test_certificate_without_signing_key_usage_fails(tmp_path: Path) -> None:
    assert "lacks digitalSignature and nonRepudiation" in _fail(tmp_path, key_usage="encipher")
    assert "has no key usage" in _fail(tmp_path / "b", key_usage=None)


def test_wrong_or_missing_passphrase_fails(tmp_path: Path) -> None:
    key, cert = make_cert("Encrypted")
    key_path, cert_path = write_pem(tmp_path, "s", key, cert, passphrase="correct horse")
    with pytest.raises(SigningError, match="wrong passphrase"):
        load_identity(settings_for(key_path, cert_path, "battery staple"), now=NOW)
    with pytest.raises(SigningError, match="is encrypted: set DELIVERY_SIGNING_PASSPHRASE"):
        load_identity(settings_for(key_path, cert_path), now=NOW)
    ok = load_identity(settings_for(key_path, cert_path, "correct horse"), now=NOW)
    assert ok.subject == "CN=Encrypted"


def test_unreadable_files_fail(tmp_path: Path, pem_identity: tuple[Path, Path]) -> None:
    key_path, cert_path = pem_identity
    with pytest.raises(SigningError, match=r"cannot read signing key .*missing\.pem"):
        load_identity(settings_for(tmp_path / "missing.pem", cert_path), now=NOW)
    with pytest.raises(SigningError, match="cannot read signing certificate"):
        load_identity(settings_for(key_path, tmp_path / "missing.pem"), now=NOW)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SigningError, match="not a readable PEM or DER private key"):
        load_identity(settings_for(garbage, cert_path), now=NOW)
    with pytest.raises(SigningError, match="not a readable PEM or DER certificate"):
        load_identity(settings_for(key_path, garbage), now=NOW)
    if os.geteuid() != 0:  # root reads files whatever their mode
        locked = tmp_path / "locked.pem"
        locked.write_bytes(key_path.read_bytes())
        locked.chmod(0)
        with pytest.raises(SigningError, match="cannot read signing key"):
            load_identity(settings_for(locked, cert_path), now=NOW)


def test_key_that_does_not_match_the_certificate_fails(tmp_path: Path) -> None:
    key, _ = make_cert("Key A")
    _, cert = make_cert("Cert B")
    with pytest.raises(SigningError, match="does not match the certificate"):
        load_identity(settings_for(*write_pem(tmp_path, "s", key, cert)), now=NOW)


def test_weak_rsa_key_fails(tmp_path: Path) -> None:
    key = rsa.generate_private_key(65537, 1024)
    _, cert = make_cert("Weak", key=key)
    with pytest.raises(SigningError, match="RSA-1024"):
        load_identity(settings_for(*write_pem(tmp_path, "s", key, cert)), now=NOW)


def _ca_and_leaf() -> tuple[Any, x509.Certificate, Any, x509.Certificate]:
    ca_key, ca_cert = make_cert("Campaign Test CA", key_usage="ca", ca=True)
    leaf_key, leaf_cert = make_cert("Campaign Leaf", issuer=(ca_key, ca_cert))
    return ca_key, ca_cert, leaf_key, leaf_cert


def test_pkcs12_loads_with_the_right_passphrase_and_keeps_the_chain(tmp_path: Path) -> None:
    _, ca_cert, leaf_key, leaf_cert = _ca_and_leaf()
    p12 = tmp_path / "signer.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"signer", leaf_key, leaf_cert, [ca_cert],
        serialization.BestAvailableEncryption(b"s3cret")))
    identity = load_identity(settings_for(p12, None, "s3cret"), now=NOW)
    assert identity.cert == leaf_cert and identity.chain == (ca_cert,)
    assert not identity.self_signed
    with pytest.raises(SigningError, match=r"cannot open PKCS#12 file .*wrong passphrase"):
        load_identity(settings_for(p12, None, "nope"), now=NOW)
    with pytest.raises(SigningError, match="leave DELIVERY_SIGNING_CERT unset"):
        load_identity(settings_for(p12, tmp_path / "x.pem", "s3cret"), now=NOW)


def test_pem_chain_in_any_order_picks_the_key_s_certificate(tmp_path: Path) -> None:
    _, ca_cert, leaf_key, leaf_cert = _ca_and_leaf()
    key_path, cert_path = write_pem(tmp_path, "s", leaf_key, ca_cert, leaf_cert)
    identity = load_identity(settings_for(key_path, cert_path), now=NOW)
    assert identity.cert == leaf_cert and identity.chain == (ca_cert,)


# ---------------------------------------------------------------- demo identity

def test_demo_identity_is_made_once_and_reused(tmp_path: Path) -> None:
    key_path, cert_path = ensure_demo_identity(tmp_path, "Demo Campaign", now=NOW)
    assert (key_path.parent, key_path.name) == (tmp_path / "signing", "demo-key.pem")
    assert key_path.stat().st_mode & 0o777 == 0o600
    first = (key_path.read_bytes(), cert_path.read_bytes())
    assert ensure_demo_identity(tmp_path, "Demo Campaign", now=NOW + timedelta(days=300)) == (
        key_path, cert_path)
    assert (key_path.read_bytes(), cert_path.read_bytes()) == first
    identity = load_identity(settings_for(key_path, cert_path), now=NOW)
    assert identity.self_signed and "CN=Demo Campaign" in identity.subject
    usage = identity.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    assert timedelta(days=729) < identity.not_after - NOW <= timedelta(days=730)


def test_demo_identity_is_renewed_when_expired(tmp_path: Path) -> None:
    _, cert_path = ensure_demo_identity(tmp_path, "Demo Campaign", now=NOW)
    old = cert_path.read_bytes()
    later = NOW + timedelta(days=800)
    _, cert_path = ensure_demo_identity(tmp_path, "Demo Campaign", now=later)
    assert cert_path.read_bytes() != old
    assert load_identity(settings_for(tmp_path / "signing/demo-key.pem", cert_path), now=later)


# ---------------------------------------------------------------- signing

def test_signed_pdf_is_a_pades_certification_pdfsig_accepts(identity: SigningIdentity,
                                                              tmp_path: Path) -> None:
    signed = sign_pdf(make_pdf(), identity, reason="Petition dossier", location="Yerevan, Armenia")
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    out = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=False).stdout
    assert "Signature Validation: Signature is Valid." in out
    assert "Signature Type: ETSI.CAdES.detached" in out
    assert "Total document signed" in out
    sig = PdfFileReader(BytesIO(signed)).embedded_signatures[0]
    assert sig.docmdp_level == MDPPerm.NO_CHANGES
    assert sig.sig_object["/Reason"] == "Petition dossier"
    assert sig.sig_object["/Location"] == "Yerevan, Armenia"
    assert abs(sig.self_reported_timestamp - datetime.now(UTC)) < timedelta(minutes=2)
    assert sig.signer_cert.sha256 == identity.cert.fingerprint(hashes.SHA256())


def test_signing_twice_gives_different_bytes(identity: SigningIdentity) -> None:
    first = sign_pdf(make_pdf(), identity, reason="r", location="l")
    second = sign_pdf(make_pdf(), identity, reason="r", location="l")
    assert first != second


def test_signature_carries_the_certificate_chain(tmp_path: Path) -> None:
    _, ca_cert, leaf_key, leaf_cert = _ca_and_leaf()
    identity = load_identity(settings_for(*write_pem(tmp_path, "s", leaf_key, leaf_cert, ca_cert)),
                             now=NOW)
    sig = PdfFileReader(BytesIO(sign_pdf(make_pdf(), identity, reason="r", location="l"))
                        ).embedded_signatures[0]
    embedded = {c.subject.human_friendly for c in sig.other_embedded_certs}
    assert "Common Name: Campaign Test CA" in embedded


def test_signing_garbage_fails_closed(identity: SigningIdentity) -> None:
    with pytest.raises(SigningError, match="cannot sign the PDF"):
        sign_pdf(b"%PDF-1.7 this is not a PDF", identity, reason="r", location="l")


def test_signing_works_inside_a_running_event_loop(identity: SigningIdentity) -> None:
    async def inside() -> bytes:
        return sign_pdf(make_pdf(), identity, reason="r", location="l")

    assert PdfFileReader(BytesIO(asyncio.run(inside()))).embedded_signatures


def test_the_signed_bytes_are_never_turned_into_their_repr() -> None:
    """Python 3.11's asyncio.run takes its task's repr twice in the main thread, its result's
    included (CPython gh-112559): for a signed 6 MB part, 2 × 35 ms of its 125 ms."""
    taken = []

    class Signed:
        def __repr__(self) -> str:
            taken.append(threading.current_thread().name)
            return "<signed>"

    async def signed() -> Signed:
        return Signed()

    async def inside() -> bool:  # run_sync inside a running loop: asyncio.run in a thread
        return isinstance(run_sync(signed()), Signed)

    assert threading.current_thread() is threading.main_thread()
    assert isinstance(run_sync(signed()), Signed) and asyncio.run(inside())
    assert taken == []


def test_detached_signature_is_der_cms_over_the_data(identity: SigningIdentity) -> None:
    from asn1crypto import cms

    p7s = sign_detached(b'{"a": 1}\n', identity)
    info = cms.ContentInfo.load(p7s)
    assert info["content_type"].native == "signed_data"
    assert info["content"]["encap_content_info"]["content"].native is None  # detached


# ---------------------------------------------------------------- RFC 3161 timestamps

@pytest.fixture(scope="module")
def tsa_url() -> Iterator[str]:
    with tsa_server() as url:
        yield url


def test_timestamp_is_added_when_a_tsa_url_is_set(identity: SigningIdentity, tsa_url: str,
                                                   tmp_path: Path) -> None:
    signed = sign_pdf(make_pdf(), identity, reason="r", location="l",
                      policy=SignaturePolicy("B-T", tsa_url))
    sig = PdfFileReader(BytesIO(signed)).embedded_signatures[0]
    unsigned = {a["type"].native for a in sig.signer_info["unsigned_attrs"]}
    assert "signature_time_stamp_token" in unsigned
    path = tmp_path / "ts.pdf"
    path.write_bytes(signed)
    out = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=False).stdout
    assert "Signature Validation: Signature is Valid." in out


def test_unreachable_timestamp_service_fails_closed(identity: SigningIdentity) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SigningUnavailable, match=f"timestamp service http://127.0.0.1:{port}"):
        sign_pdf(make_pdf(), identity, reason="r", location="l",
                 policy=SignaturePolicy("B-T", f"http://127.0.0.1:{port}/tsa"))
