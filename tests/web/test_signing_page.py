"""The owner's Signing page: the certificate in use and its uploads (PKCS#12, or a key and its
certificate), errors beside their fields, the organizer's 403, the audit row, the body limit;
through the web admin's HTTP interface on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine
from starlette.testclient import TestClient

from delivery.services import accounts, signing_keys
from delivery.services.app import App
from delivery.web import create_web_app
from tests.services.test_signing_keys import p12, pem
from tests.support.pdfs import make_cert, write_pem
from tests.web.test_accounts_pages import described_error, owner_and_organizer
from tests.web.test_web import PASSWORD, SECRET, _gc_after, audit_actions, csrf_of, make_app, web_config

__all__ = ["_gc_after"]
NOW = datetime.now(UTC)


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    app = make_app(engine, tmp_path, {"DELIVERY_SECRET_KEY": SECRET})
    owner_and_organizer(app)
    return app


def client_for(app: App, name: str) -> TestClient:
    client = TestClient(create_web_app(app, config=web_config()), client=("127.0.0.1", 40002))
    page = client.get("/login")
    response = client.post("/login", data={"csrf": csrf_of(page.text), "name": name, "password": PASSWORD,
                                           "next": "/"}, follow_redirects=False)
    assert response.status_code == 303
    return client


@pytest.fixture
def owner(app: App) -> Iterator[TestClient]:
    with client_for(app, "anna") as client:
        yield client


def post(client: TestClient, kind: str, files: dict[str, tuple[str, bytes]],
         passphrase: str = "") -> tuple[int, str]:
    csrf = csrf_of(client.get("/signing").text)
    field = "p12_passphrase" if kind == "pkcs12" else "key_passphrase"
    response = client.post("/signing", data={"csrf": csrf, "kind": kind, field: passphrase},
                           files={name: (filename, data, "application/octet-stream")
                                  for name, (filename, data) in files.items()})
    return response.status_code, response.text


def test_an_organizer_gets_403_and_no_menu_link(app: App) -> None:
    with client_for(app, "maria") as client:
        page = client.get("/signing")
        assert page.status_code == 403 and "anna" in page.text
        assert 'href="/signing"' not in client.get("/").text
        key, cert = make_cert("Campaign")
        refused = client.post("/signing", data={"csrf": csrf_of(page.text), "kind": "pkcs12",
                                                "p12_passphrase": "s3cret"},
                              files={"pkcs12": ("id.p12", p12(key, cert), "application/x-pkcs12")})
        assert refused.status_code == 403
    assert signing_keys.view(app, now=NOW).uploaded is None


def test_the_owner_uploads_a_pkcs12_file_and_sees_its_facts(app: App, owner: TestClient) -> None:
    first = owner.get("/signing")
    assert first.status_code == 200 and "No signing certificate yet" in first.text
    assert 'href="/signing"' in first.text  # the owner's menu has the link
    assert '<label for="f-pkcs12">' in first.text and 'enctype="multipart/form-data"' in first.text
    assert first.text.count('<fieldset class="plain">') == 2  # with DELIVERY_SECRET_KEY set: usable
    ca_key, ca_cert = make_cert("Campaign CA", key_usage="ca", ca=True)
    key, cert = make_cert("Campaign Signer", issuer=(ca_key, ca_cert))
    status, html = post(owner, "pkcs12", {"pkcs12": ("signer.p12", p12(key, cert, ca_cert))}, "s3cret")
    assert status == 200 and "The certificate CN=Campaign Signer is stored" in html
    facts = signing_keys.view(app, now=NOW).uploaded
    assert facts is not None
    for shown in ("CN=Campaign Signer", "CN=Campaign CA", facts.fingerprint, "by anna"):
        assert shown in html
    assert "s3cret" not in html and "PRIVATE KEY" not in html
    assert ("web:anna", "signing.upload") in audit_actions(app)
    assert "Replace it with a PKCS#12 file" in html
    russian = owner.get("/signing", headers={"Accept-Language": "ru"}).text
    assert "Сертификат подписи" in russian and "Заменить файлом PKCS#12" in russian


def test_the_owner_uploads_a_pem_pair_with_its_passphrase(app: App, owner: TestClient) -> None:
    key, cert = make_cert("PEM Signer")
    key_pem, cert_pem = pem(key, cert, passphrase=b"battery staple")
    status, html = post(owner, "pem", {"key": ("key.pem", key_pem), "cert": ("cert.pem", cert_pem)},
                        "battery staple")
    assert status == 200 and "CN=PEM Signer" in html
    assert "battery staple" not in html
    identity = signing_keys.identity(app, now=NOW)
    assert identity is not None and identity.cert == cert
    assert audit_actions(app)[-1] == ("web:anna", "signing.upload")


def test_refusals_are_shown_beside_their_fields(app: App, owner: TestClient) -> None:
    key, cert = make_cert("Campaign")
    key_pem, cert_pem = pem(key, cert, passphrase=b"pw")
    status, html = post(owner, "pem", {"key": ("key.pem", key_pem), "cert": ("cert.pem", cert_pem)}, "nope")
    assert status == 400 and "wrong passphrase" in described_error(html, "key_passphrase")
    assert 'href="#f-key_passphrase"' in html  # the summary leads to the field
    status, html = post(owner, "pem", {"key": ("key.pem", key_pem)}, "pw")
    assert status == 400 and "certificate" in described_error(html, "cert")
    other_cert = pem(*make_cert("Someone else"))[1]
    status, html = post(owner, "pem", {"key": ("key.pem", key_pem), "cert": ("c.pem", other_cert)}, "pw")
    assert status == 400 and "does not match" in described_error(html, "cert")
    old = make_cert("Old", not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1))
    status, html = post(owner, "pkcs12", {"pkcs12": ("old.p12", p12(*old))}, "s3cret")
    assert status == 400 and "expired on" in described_error(html, "pkcs12")
    status, html = post(owner, "pkcs12", {"pkcs12": ("id.p12", p12(key, cert))}, "wrong")
    assert status == 400 and "wrong passphrase" in described_error(html, "pkcs12")
    assert "wrong" not in html.split('id="f-p12_passphrase"')[1].split(">")[0]  # never echoed back
    status, html = post(owner, "pkcs12", {}, "s3cret")
    assert status == 400 and ".p12" in described_error(html, "pkcs12")
    assert signing_keys.view(app, now=NOW).uploaded is None
    assert ("web:anna", "signing.upload") not in audit_actions(app)


def test_without_delivery_secret_key_the_page_says_so_and_stores_nothing(engine: Engine,
                                                                         tmp_path: Path) -> None:
    app = make_app(engine, tmp_path)
    accounts.add_user(app, "anna", PASSWORD, now=NOW, actor="cli:tester", role="owner")
    with client_for(app, "anna") as client:
        page = client.get("/signing").text
        assert "DELIVERY_SECRET_KEY, which is not set" in page
        assert page.count('<fieldset class="plain" disabled>') == 2  # both forms, until it is set
        key, cert = make_cert("Campaign")
        status, html = post(client, "pkcs12", {"pkcs12": ("id.p12", p12(key, cert))}, "s3cret")
    assert status == 409 and "DELIVERY_SECRET_KEY is not set" in described_error(html, "pkcs12")
    assert signing_keys.view(app, now=NOW).uploaded is None


def test_the_page_says_the_files_win(engine: Engine, tmp_path: Path) -> None:
    key, cert = make_cert("From the files")
    key_path, cert_path = write_pem(tmp_path / "keys", "f", key, cert)
    app = make_app(engine, tmp_path, {"DELIVERY_SECRET_KEY": SECRET, "DELIVERY_SIGNING_KEY": str(key_path),
                                      "DELIVERY_SIGNING_CERT": str(cert_path)})
    accounts.add_user(app, "anna", PASSWORD, now=NOW, actor="cli:tester", role="owner")
    with client_for(app, "anna") as client:
        up_key, up_cert = make_cert("Uploaded")
        status, html = post(client, "pkcs12", {"pkcs12": ("id.p12", p12(up_key, up_cert))}, "s3cret")
    assert status == 200
    assert "From the files DELIVERY_SIGNING_KEY names" in html and str(key_path) in html
    assert "CN=From the files" in html
    assert "not used while the files are set" in html and "CN=Uploaded" in html


def test_an_upload_larger_than_a_megabyte_is_refused_unread(owner: TestClient) -> None:
    csrf = csrf_of(owner.get("/signing").text)
    big = owner.post("/signing", data={"csrf": csrf, "kind": "pkcs12"},
                     files={"pkcs12": ("big.p12", b"x" * (1024 * 1024 + 70 * 1024), "application/x-pkcs12")})
    assert big.status_code == 413 and "larger than 1 MB" in big.text
    just = owner.post("/signing", data={"csrf": csrf, "kind": "pkcs12"},
                      files={"pkcs12": ("big.p12", b"x" * (1024 * 1024 + 1), "application/x-pkcs12")})
    assert just.status_code == 400 and "larger than 1 MB" in described_error(just.text, "pkcs12")


def test_a_der_key_and_certificate_are_taken(app: App, owner: TestClient) -> None:
    key, cert = make_cert("DER Signer")
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    status, _ = post(owner, "pem", {"key": ("key.der", key_der),
                                    "cert": ("cert.der", cert.public_bytes(serialization.Encoding.DER))})
    assert status == 200
    identity = signing_keys.identity(app, now=NOW)
    assert identity is not None and identity.cert == cert
