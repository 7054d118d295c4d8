"""The signing certificate uploaded in the web admin (delivery.services.signing_keys), on SQLite and
PostgreSQL: kept encrypted under DELIVERY_SECRET_KEY, refused when unusable, signing dossiers that
verify, the DELIVERY_SIGNING_KEY files winning over it, and the readiness finding it settles."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import Engine, select, text

from delivery.bundle.assemble import assemble_bundle
from delivery.bundle.verify import verify_path
from delivery.campaigns.config import parse_campaign
from delivery.errors import SigningError
from delivery.services import pipeline, readiness, signing_keys
from delivery.services.app import App
from delivery.services.signing_keys import IdentityRefused
from delivery.storage.db import reading
from delivery.storage.models import AuditRow, SigningIdentityRow
from tests.bundle.test_verify import FACTS
from tests.support.pdfs import make_cert, unsigned, write_pem
from tests.web.test_web import SECRET, SLUG, campaign_toml, make_app

NOW = datetime.now(UTC)
OTHER_SECRET = "z" * 40


def app_with(engine: Engine, tmp_path: Path, **env: str) -> App:
    app = make_app(engine, tmp_path, {"DELIVERY_SMTP_HOST": "127.0.0.1", **env})
    plain = parse_campaign(campaign_toml(hold="0s").replace("@example.org", "@gov.am"), "x.toml")
    app.campaigns[SLUG] = dataclasses.replace(plain, signing="required")
    return app


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    return app_with(engine, tmp_path, DELIVERY_SECRET_KEY=SECRET)


def with_secret(app: App, secret: str | None) -> App:
    web = dataclasses.replace(app.settings.web, secret_key=secret)
    return dataclasses.replace(app, settings=dataclasses.replace(app.settings, web=web))


def pem(key: Any, *certs: x509.Certificate, passphrase: bytes | None = None) -> tuple[bytes, bytes]:
    enc = (serialization.BestAvailableEncryption(passphrase) if passphrase
           else serialization.NoEncryption())
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc),
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))


def p12(key: Any, cert: x509.Certificate, *chain: x509.Certificate, passphrase: bytes = b"s3cret") -> bytes:
    return pkcs12.serialize_key_and_certificates(b"signer", key, cert, list(chain),
                                                 serialization.BestAvailableEncryption(passphrase))


def raw_rows(app: App) -> list[bytes]:
    """Every stored signing_identities row as bytes, every column, as the database hands them."""
    with app.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM signing_identities")).all()
    return [b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row) for row in rows]


def test_a_pkcs12_upload_is_kept_encrypted_with_its_facts_in_clear_and_audited(app: App) -> None:
    ca_key, ca_cert = make_cert("Campaign CA", key_usage="ca", ca=True)
    key, cert = make_cert("Campaign Signer", issuer=(ca_key, ca_cert))
    facts = signing_keys.store(app, now=NOW, actor="web:anna", pkcs12=p12(key, cert, ca_cert),
                               passphrase="s3cret")
    assert facts.subject == "CN=Campaign Signer" and facts.issuer == "CN=Campaign CA"
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    secret_number = key.private_numbers().private_value.to_bytes(32, "big")
    [row] = raw_rows(app)
    for plain in (key_der, key_pem, secret_number, key_pem.split(b"\n")[1]):
        assert plain not in row
    assert b"s3cret" not in row
    with reading(app.engine) as session:
        stored = session.scalars(select(SigningIdentityRow)).one()
        audit = session.scalars(select(AuditRow).where(AuditRow.action == "signing.upload")).one()
    assert (stored.subject, stored.issuer, stored.fingerprint) == (facts.subject, facts.issuer,
                                                                   facts.fingerprint)
    assert stored.not_after == cert.not_valid_after_utc
    assert (stored.uploaded_by, audit.actor, audit.subject) == ("web:anna", "web:anna", facts.fingerprint)
    detail = json.loads(audit.detail)
    assert detail["kind"] == "pkcs12" and detail["replaced"] == []
    assert "s3cret" not in audit.detail and "PRIVATE" not in audit.detail
    identity = signing_keys.identity(app, now=NOW)
    assert identity is not None and identity.cert == cert and identity.chain == (ca_cert,)
    assert identity.key.private_numbers() == key.private_numbers()  # type: ignore[union-attr]


def test_a_pem_pair_replaces_the_stored_one(app: App) -> None:
    first_key, first = make_cert("First")
    replaced = signing_keys.store(app, now=NOW, actor="web:anna", pkcs12=p12(first_key, first),
                                  passphrase="s3cret")
    key, cert = make_cert("Second")
    key_pem, cert_pem = pem(key, cert, passphrase=b"battery staple")
    signing_keys.store(app, now=NOW, actor="web:maria", key=key_pem, cert=cert_pem,
                       passphrase="battery staple")
    shown = signing_keys.view(app, now=NOW)
    assert shown.source == signing_keys.UPLOADED and shown.files == ()
    assert shown.uploaded is not None and shown.uploaded.subject == "CN=Second"
    assert shown.uploaded.uploaded_by == "web:maria"
    assert len(raw_rows(app)) == 1
    identity = signing_keys.identity(app, now=NOW)
    assert identity is not None and identity.cert == cert
    with reading(app.engine) as session:
        details = [json.loads(d) for d in session.scalars(
            select(AuditRow.detail).where(AuditRow.action == "signing.upload").order_by(AuditRow.id))]
    assert details[1]["replaced"] == [replaced.fingerprint]
    assert details[1]["kind"] == "pem" and details[1]["certificate"] == "CN=Second"


def test_without_delivery_secret_key_nothing_is_stored(app: App) -> None:
    key, cert = make_cert("Campaign")
    keyless = with_secret(app, None)
    with pytest.raises(SigningError, match="DELIVERY_SECRET_KEY is not set"):
        signing_keys.store(keyless, now=NOW, actor="web:anna", pkcs12=p12(key, cert), passphrase="s3cret")
    assert raw_rows(app) == []
    assert not signing_keys.view(keyless, now=NOW).secret_key_set


def test_a_changed_delivery_secret_key_is_a_clear_refusal(app: App) -> None:
    key, cert = make_cert("Campaign")
    signing_keys.store(app, now=NOW, actor="web:anna", pkcs12=p12(key, cert), passphrase="s3cret")
    for secret in (OTHER_SECRET, None):
        other = with_secret(app, secret)
        with pytest.raises(SigningError, match="DELIVERY_SECRET_KEY") as err:
            signing_keys.identity(other, now=NOW)
        assert "\n" not in str(err.value)
        [finding] = [f for f in readiness.readiness(other, other.campaigns[SLUG], now=NOW)
                     if f.code.startswith("signing")]
        assert finding.code == "signing_key_unusable" and "DELIVERY_SECRET_KEY" in finding.facts["reason"]
    assert signing_keys.identity(app, now=NOW) is not None


def test_a_row_whose_sealed_key_was_moved_is_refused(app: App) -> None:
    key, cert = make_cert("Campaign")
    signing_keys.store(app, now=NOW, actor="web:anna", pkcs12=p12(key, cert), passphrase="s3cret")
    with app.engine.begin() as conn:
        conn.execute(text("UPDATE signing_identities SET fingerprint = 'AA:BB'"))
    with pytest.raises(SigningError, match="cannot be decrypted"):
        signing_keys.identity(app, now=NOW)


@pytest.mark.parametrize(("case", "part", "message"), [
    ("expired", "cert", "expired on"),
    ("not_yet", "cert", "not valid yet"),
    ("mismatch", "cert", "does not match the certificate in the certificate file"),
    ("encrypted", "passphrase", "the key file is encrypted: give its passphrase"),
    ("wrong_passphrase", "passphrase", "wrong passphrase for the key file"),
    ("garbage_key", "key", "the key file is not a readable PEM or DER private key"),
    ("garbage_cert", "cert", "the certificate file is not a readable PEM or DER certificate"),
    ("no_usage", "cert", "has no key usage"),
    ("p12_passphrase", "pkcs12", "cannot open the PKCS#12 file: wrong passphrase or not a PKCS#12 file"),
    ("no_cert", "cert", "the certificate file is missing"),
])
def test_an_unusable_upload_is_refused_naming_the_piece(app: App, case: str, part: str,
                                                        message: str) -> None:
    key, cert = make_cert("Campaign")
    key_pem, cert_pem = pem(key, cert)
    given: dict[str, Any] = {"key": key_pem, "cert": cert_pem}
    if case == "expired":
        given["key"], given["cert"] = pem(*make_cert("Old", not_before=NOW - timedelta(days=400),
                                                     not_after=NOW - timedelta(days=1)))
    elif case == "not_yet":
        given["key"], given["cert"] = pem(*make_cert("Soon", not_before=NOW + timedelta(days=2),
                                                     not_after=NOW + timedelta(days=400)))
    elif case == "mismatch":
        given["cert"] = pem(*make_cert("Someone else"))[1]
    elif case == "encrypted":
        given["key"] = pem(key, cert, passphrase=b"pw")[0]
    elif case == "wrong_passphrase":
        given |= {"key": pem(key, cert, passphrase=b"pw")[0], "passphrase": "nope"}
    elif case == "garbage_key":
        given["key"] = b"not a key"
    elif case == "garbage_cert":
        given["cert"] = b"-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n"
    elif case == "no_usage":
        given["key"], given["cert"] = pem(*make_cert("Plain", key_usage=None))
    elif case == "p12_passphrase":
        given = {"pkcs12": p12(key, cert), "passphrase": "nope"}
    elif case == "no_cert":
        del given["cert"]
    with pytest.raises(IdentityRefused) as err:
        signing_keys.store(app, now=NOW, actor="web:anna", **given)
    assert err.value.part == part and message in str(err.value)
    assert raw_rows(app) == []
    with reading(app.engine) as session:
        assert session.scalars(select(AuditRow).where(AuditRow.action == "signing.upload")).all() == []


def test_the_uploaded_identity_signs_a_dossier_that_verify_accepts(app: App, tmp_path: Path) -> None:
    key, cert = make_cert("Uploaded Campaign Signer")
    key_pem, cert_pem = pem(key, cert)
    signing_keys.store(app, now=NOW, actor="web:anna", key=key_pem, cert=cert_pem)
    identity = pipeline.signing_identity(app, app.campaigns[SLUG], now=NOW)
    assert identity is not None
    bundle = assemble_bundle([unsigned("dossier-en.pdf")], FACTS, identity, reason="Petition dossier",
                             location="Yerevan")
    folder = tmp_path / "bundle"
    folder.mkdir()
    for f in bundle:
        (folder / f.name).write_bytes(f.data)
    trust = tmp_path / "trust.pem"
    trust.write_bytes(cert_pem)
    report = verify_path(folder, trust=trust)
    assert report.ok, report
    other = tmp_path / "other.pem"
    other.write_bytes(pem(*make_cert("Someone else"))[1])
    assert not verify_path(folder, trust=other).ok


def test_the_signing_key_files_win_over_the_upload(engine: Engine, tmp_path: Path) -> None:
    file_key, file_cert = make_cert("From the files")
    key_path, cert_path = write_pem(tmp_path / "keys", "f", file_key, file_cert)
    app = app_with(engine, tmp_path, DELIVERY_SECRET_KEY=SECRET, DELIVERY_SIGNING_KEY=str(key_path),
                   DELIVERY_SIGNING_CERT=str(cert_path))
    key, cert = make_cert("Uploaded")
    signing_keys.store(app, now=NOW, actor="web:anna", pkcs12=p12(key, cert), passphrase="s3cret")
    identity = signing_keys.identity(app, now=NOW)
    assert identity is not None and identity.cert == file_cert
    pipelined = pipeline.signing_identity(app, app.campaigns[SLUG], now=NOW)
    assert pipelined is not None and pipelined.cert == file_cert
    shown = signing_keys.view(app, now=NOW)
    assert shown.source == signing_keys.FILES and shown.files == (str(key_path), str(cert_path))
    assert shown.files_certificate is not None and shown.files_certificate.subject == "CN=From the files"
    assert shown.uploaded is not None and shown.uploaded.subject == "CN=Uploaded"


def test_readiness_turns_green_once_a_usable_pair_is_uploaded(app: App) -> None:
    def signing_findings() -> list[str]:
        return [f.code for f in readiness.readiness(app, app.campaigns[SLUG], now=NOW)]

    assert signing_findings() == ["no_signing_key"]
    with pytest.raises(SigningError, match="no certificate was uploaded"):
        pipeline.signing_identity(app, app.campaigns[SLUG], now=NOW)
    key, cert = make_cert("Campaign", not_after=NOW + timedelta(days=10))
    signing_keys.store(app, now=NOW, actor="web:anna", pkcs12=p12(key, cert), passphrase="s3cret")
    assert signing_findings() == ["signing_key_expires"]
    key, cert = make_cert("Campaign")
    signing_keys.store(app, now=NOW, actor="web:anna", pkcs12=p12(key, cert), passphrase="s3cret")
    assert signing_findings() == []
    later = NOW + timedelta(days=400)
    [finding] = readiness.readiness(app, app.campaigns[SLUG], now=later)
    assert finding.code == "signing_key_unusable" and "expired on" in finding.facts["reason"]
