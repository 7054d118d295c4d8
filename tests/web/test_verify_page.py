"""The public /verify page over HTTP (Starlette's test client; uvicorn on loopback for streamed
uploads), with dossiers built through the services: an intact PDF, a delivered e-mail and the files
of a download link are accepted; a changed byte, appended bytes, another certificate and a preview
are refused in plain words; uploads are limited in size (a 200 MB body is cut off at the limit,
not read), in number per address, and leave nothing behind; verify fetches nothing."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import tempfile
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from starlette.testclient import TestClient

from delivery.bundle.sign import ensure_demo_identity
from delivery.campaigns.config import parse_campaign
from delivery.errors import ConfigError
from delivery.services import deliveries, preview
from delivery.services.app import App, init
from delivery.settings import load_settings
from delivery.signers.store import withdraw_signer
from delivery.storage.db import make_engine, transaction
from delivery.web import create_web_app
from delivery.web.verify import UploadLimiter, VerifyState
from tests.conftest import REPO
from tests.services.test_deliveries import NAMES, add, campaign_toml
from tests.support.browser import serving
from tests.support.campaigns import campaign_file
from tests.support.pki import running_pki
from tests.web.test_web import web_config

PM = "prime-minister@example.org"
EN_PDF = "dossier-small-en.pdf"


@dataclass
class Dossiers:
    app: App
    email: bytes  # the e-mail the English-speaking recipient got
    files: dict[str, bytes]  # its attachments: the PDF, manifest.json, manifest.json.p7s
    preview: dict[str, bytes]  # a preview of the same campaign
    folder: Path

    @property
    def pdf(self) -> bytes:
        return self.files[EN_PDF]


def build_app(folder: Path, env: dict[str, str], toml: str | None = None) -> App:
    engine = make_engine(f"sqlite:///{folder / 'delivery.sqlite3'}")
    settings = load_settings({"DELIVERY_HOME": str(REPO), "DELIVERY_VAR_DIR": str(folder / "var"),
                              "DELIVERY_OUTBOX_DIR": str(folder / "outbox"), **env})
    campaign = parse_campaign(toml or campaign_toml(hold="0s"), "small.toml")
    app = App(settings=settings, engine=engine, campaigns={campaign.slug: campaign})
    init(app)
    return app


def deliver(app: App, folder: Path) -> tuple[bytes, dict[str, bytes]]:
    """A manual delivery of the signers stored, built, signed and sent to the outbox: the
    English recipient's e-mail and its attachments."""
    now = datetime.now(UTC)
    ref = deliveries.create_manual(app, app.campaign(None), now=now, actor="test")
    assert deliveries.build_and_send(app, ref.id, now=now)
    for path in sorted((folder / "outbox").glob("*.eml")):
        raw = path.read_bytes()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if PM in str(message["To"]) and ref.public_id in str(message["Subject"]):
            return raw, {str(p.get_filename()): p.get_content() for p in message.iter_attachments()}
    raise AssertionError("no e-mail to the prime minister in the outbox")


def build_dossiers(folder: Path, signing: tuple[Path, Path]) -> Dossiers:
    key, cert = signing
    app = build_app(folder, {"DELIVERY_SIGNING_KEY": str(key), "DELIVERY_SIGNING_CERT": str(cert)})
    add(app, NAMES, datetime.now(UTC) - timedelta(minutes=5))
    with transaction(app.engine) as session:  # signer no. 4 withdraws: the numbers keep a gap
        assert withdraw_signer(session, app.campaign_id(session, app.campaign(None)), "s3@example.net",
                               now=datetime.now(UTC), actor="test", keys=app.signer_keys)
    raw, files = deliver(app, folder)
    out = folder / "preview"
    preview.preview(app, app.campaign(None), out_dir=out, now=datetime.now(UTC))
    return Dossiers(app=app, email=raw, files=files, folder=folder,
                    preview={p.name: p.read_bytes() for p in out.iterdir()})


@pytest.fixture(scope="module")
def dossiers(tmp_path_factory: pytest.TempPathFactory,
             signing_files: tuple[Path, Path]) -> Iterator[Dossiers]:
    built = build_dossiers(tmp_path_factory.mktemp("verify"), signing_files)
    yield built
    built.app.engine.dispose()


@pytest.fixture
def client(dossiers: Dossiers) -> Iterator[TestClient]:
    with TestClient(create_web_app(dossiers.app, config=web_config()),
                    client=("198.51.100.7", 40000)) as c:
        yield c


def text_of(html: str) -> str:
    """The page's <main> as words: tags dropped, entities and white space undone."""
    import html as entities

    main = re.search(r"<main>(.*)</main>", html, re.S)
    assert main, html
    inline = re.sub(r"</?(?:span|strong|code|a|em)\b[^>]*>", "", main.group(1))
    return " ".join(entities.unescape(re.sub(r"<[^>]+>", " ", inline)).split())


def upload(client: TestClient, *files: tuple[str, bytes], **kwargs: Any) -> httpx2.Response:
    return client.post("/verify", files=[("file", (name, data)) for name, data in files], **kwargs)


def flipped(data: bytes) -> bytes:
    """One byte changed inside the signed range: in the text of the signer list."""
    at = data.index(b"stream", len(data) // 3) + 20
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


# ---------------------------------------------------------------- the form

def test_the_form_is_public_needs_no_script_and_sets_no_cookie(client: TestClient) -> None:
    page = client.get("/verify")
    assert page.status_code == 200 and "set-cookie" not in page.headers
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert '<form id="verify-form" method="post" action="/verify" enctype="multipart/form-data"' in html
    assert '<input id="verify-file" type="file" name="file" multiple required' in html
    assert "at most 60 MB and 20 files at once" in text_of(html)
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts == ['<script src="/static/verify.js" defer>']  # no inline script: the CSP forbids it
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = client.get("/static/verify.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert b"addEventListener(\"drop\"" in script.content


def test_the_page_reads_in_the_browsers_language(client: TestClient) -> None:
    page = client.get("/verify", headers={"accept-language": "hy, en;q=0.5"})
    assert '<html lang="hy">' in page.text
    assert '<html lang="ru">' in client.get("/verify", headers={"accept-language": "ru-RU"}).text
    assert '<html lang="en">' in client.get("/verify").text


# ---------------------------------------------------------------- verdicts

def test_an_intact_dossier_pdf_is_accepted_in_plain_words(client: TestClient, dossiers: Dossiers) -> None:
    response = upload(client, (EN_PDF, dossiers.pdf))
    assert response.status_code == 200 and "set-cookie" not in response.headers
    words = text_of(response.text)
    assert "Authentic These files are the dossier S-" in words
    assert "Signed by Organizational Unit: petition-delivery (self-signed), Common Name: Test campaign · " \
           "with the certificate this service signs with" in words
    assert re.search(r"Signed on \d+ \w+ 20\d\d, \d\d:\d\d UTC, as the signer's computer clock gave it: "
                     r"no timestamp", words), words
    assert "Signature level PAdES B-B: the signature alone" in words
    assert "Signatures 11 Signer numbers No. 1 to 12 · 1 number missing: a signature withdrawn · " \
           "the last signed on" in words
    assert "Complete Yes: the edition in English, 1 of 1 part" in words
    # each of verify's checks, as verify words it
    assert f"{EN_PDF} passed" in words
    for check in ("PAdES B-B", "footer 'S-", "signing time 20"):
        assert check in words
    assert "VERIFIED: every check holds (PAdES B-B)" in words


@pytest.mark.parametrize("change", ["flipped byte", "appended bytes"])
def test_a_changed_pdf_is_refused(client: TestClient, dossiers: Dossiers, change: str) -> None:
    data = flipped(dossiers.pdf) if change == "flipped byte" else dossiers.pdf + b"\n% a note added\n"
    words = text_of(upload(client, (EN_PDF, data)).text)
    assert "Not verified: do not rely on these files" in words and "Authentic" not in words
    assert f"{EN_PDF} failed" in words
    expected = ("signed bytes were altered (the digest does not match)" if change == "flipped byte"
                else "the signature does not cover the entire file (16 bytes after the signed range)")
    assert expected in words, words
    assert "Signer numbers" not in words  # no facts from a file that failed


def test_a_preview_is_refused_as_a_preview(client: TestClient, dossiers: Dossiers) -> None:
    for files in ([(EN_PDF, dossiers.preview[EN_PDF])], list(dossiers.preview.items())):
        words = text_of(upload(client, *files).text)
        assert "A preview, not a delivered dossier" in words
        assert "A preview is never delivered and proves nothing about the petition" in words
        assert "this is a preview built by the organizers, never a delivered dossier" in words
        assert "Authentic" not in words


def test_a_delivered_email_is_checked_with_its_attachments(client: TestClient, dossiers: Dossiers) -> None:
    words = text_of(upload(client, ("Petition dossier.eml", dossiers.email)).text)
    assert "Authentic These files are the dossier" in words and "no part is missing" in words
    for name in ("manifest.json passed", "manifest.json.p7s passed", f"{EN_PDF} passed",
                 "SHA-256 matches manifest.json", "signature over manifest.json valid"):
        assert name in words, name
    assert "Complete Yes: the edition in English, 1 of 1 part" in words
    assert "The dossier's other editions went to other recipients." in words
    # the same e-mail twice (a saved copy): its name is made unique, the verdict is the same
    twice = text_of(upload(client, ("m.eml", dossiers.email), ("m.eml", dossiers.email)).text)
    assert "Authentic" in twice


def test_the_files_of_a_download_link_are_checked_together(client: TestClient, dossiers: Dossiers) -> None:
    words = text_of(upload(client, *dossiers.files.items()).text)
    assert "Authentic" in words and "manifest.json.p7s passed" in words
    unsigned = {n: d for n, d in dossiers.files.items() if n != "manifest.json.p7s"}
    words = text_of(upload(client, *unsigned.items()).text)
    assert "Not verified" in words and "not signed: manifest.json.p7s is missing" in words


def test_a_dossier_signed_with_another_certificate_is_refused(dossiers: Dossiers, tmp_path: Path) -> None:
    key, cert = ensure_demo_identity(tmp_path, "Someone else", now=datetime(2026, 1, 1, tzinfo=UTC))
    other = build_app(tmp_path, {"DELIVERY_SIGNING_KEY": str(key), "DELIVERY_SIGNING_CERT": str(cert)})
    with TestClient(create_web_app(other, config=web_config())) as client:
        words = text_of(upload(client, (EN_PDF, dossiers.pdf)).text)
    other.engine.dispose()
    assert "Not verified" in words and "· not with the certificate this service signs with" in words
    assert "is not trusted by --trust campaign-cert.pem" in words  # verify's own words


def test_without_a_certificate_the_page_says_it_cannot_attribute(dossiers: Dossiers, tmp_path: Path) -> None:
    bare = build_app(tmp_path, {})
    with TestClient(create_web_app(bare, config=web_config())) as client:
        words = text_of(upload(client, (EN_PDF, dossiers.pdf)).text)
    bare.engine.dispose()
    assert "This service holds no signing certificate, so it cannot tell who signed these files." in words
    assert "Not verified" in words


def test_what_is_no_dossier_file_is_refused_in_plain_words(client: TestClient, dossiers: Dossiers) -> None:
    wrong = upload(client, ("letter.docx", b"PK\x03\x04"))
    assert wrong.status_code == 400 and "“letter.docx” is not a file this page checks" in text_of(wrong.text)
    hidden = upload(client, (".pdf", dossiers.pdf))
    assert hidden.status_code == 400 and "is not a file this page checks" in text_of(hidden.text)
    same = upload(client, (EN_PDF, dossiers.pdf), (EN_PDF, dossiers.pdf))
    assert same.status_code == 400 and f"Two files are named “{EN_PDF}”" in text_of(same.text)
    none = client.post("/verify", files={"file": ("", b"")})
    assert none.status_code == 400 and "Choose the files to check" in text_of(none.text)
    bare_mail = upload(client, ("hello.eml", b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"))
    assert bare_mail.status_code == 400 and "hold nothing to check" in text_of(bare_mail.text)
    garbage = upload(client, ("dossier.pdf", b"%PDF-1.7 not really"))
    assert garbage.status_code == 200 and "not a readable PDF" in text_of(garbage.text)
    not_a_form = client.post("/verify", content=b"file=x", headers={"content-type": "text/plain"})
    assert not_a_form.status_code == 400 and "The upload was not understood" in text_of(not_a_form.text)
    many = upload(client, *[(f"d{i}.pdf", b"%PDF") for i in range(21)])
    assert many.status_code == 413 and "At most 20 files are checked at once" in text_of(many.text)


# ---------------------------------------------------------------- limits

def test_uploads_are_limited_per_address(dossiers: Dossiers) -> None:
    web = create_web_app(dossiers.app, config=web_config())
    clock = [1000.0]
    web.state.verify = VerifyState(limiter=UploadLimiter(uploads=3, window=600, clock=lambda: clock[0]))
    tiny = ("x.pdf", b"%PDF")
    with TestClient(web, client=("2001:db8:1:2::10", 1)) as first, \
            TestClient(web, client=("2001:db8:1:2::99", 1)) as same_net, \
            TestClient(web, client=("203.0.113.9", 1)) as other:
        assert [upload(first, tiny).status_code for _ in range(3)] == [200, 200, 200]
        refused = upload(same_net, tiny)  # the same /64
        assert refused.status_code == 429 and refused.headers["retry-after"] == "600"
        assert "Many files were checked from your address" in text_of(refused.text)
        assert "try again in 10 minutes" in text_of(refused.text)
        assert upload(other, tiny).status_code == 200
        clock[0] += 601
        assert upload(first, tiny).status_code == 200


def test_nothing_is_kept(client: TestClient, dossiers: Dossiers, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    before = sorted(p for p in dossiers.folder.rglob("*") if "cache" not in p.parts)
    for files in ([("a.eml", dossiers.email)], list(dossiers.files.items()),
                  [(EN_PDF, flipped(dossiers.pdf))], [("hello.eml", b"Subject: x\r\n\r\nx")]):
        upload(client, *files)
    assert list(spool.iterdir()) == []
    assert sorted(p for p in dossiers.folder.rglob("*") if "cache" not in p.parts) == before


def test_the_limit_comes_from_the_environment() -> None:
    assert load_settings({}).web.verify_upload_mb == 60
    assert load_settings({"DELIVERY_VERIFY_MAX_MB": "5"}).web.verify_upload_mb == 5
    for wrong in ("0", "201", "ten", "1.5", "-3"):
        with pytest.raises(ConfigError, match="DELIVERY_VERIFY_MAX_MB"):
            load_settings({"DELIVERY_VERIFY_MAX_MB": wrong})


BOUNDARY = "verify-test-boundary"
MB = 1024 * 1024


def _big_body(size: int, sent: list[int]) -> Iterator[bytes]:
    """A multipart body with one file of `size` bytes, made as it is sent; `sent` counts what the
    client has handed over."""
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n").encode()
    chunk = b"%" * (256 * 1024)
    yield head
    while sent[0] < size:
        sent[0] += len(chunk)
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_200_mb_upload_is_refused_at_the_limit_without_being_read(dossiers: Dossiers,
                                                                    declared: bool) -> None:
    size = 200 * MB
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    if declared:
        headers["content-length"] = str(size + 1000)
    sent = [0]
    tracemalloc.start()
    try:
        with serving(dossiers.app, web_config()) as base:
            response = httpx.post(f"{base}/verify", content=_big_body(size, sent), headers=headers,
                                  timeout=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413 and response.headers["connection"] == "close"
    assert "These files are larger than 60 MB in all" in text_of(response.text)
    # The server stopped reading: the client could not hand over the rest. Declared, nothing was
    # read (what went is what the sockets' buffers took); streamed, it stopped at the limit.
    assert sent[0] < (8 * MB if declared else 60 * MB + 16 * MB), sent[0]
    assert peak < 24 * MB, peak  # nothing near the body's size was held in memory


# ---------------------------------------------------------------- nothing fetched

def test_verify_fetches_nothing_the_file_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A B-LTA dossier names its CA's OCSP responder, CRLs and issuer certificates; the page
    establishes B-LTA from the file alone, with the network closed and the PKI gone."""
    with running_pki(tmp_path / "pki") as pki:
        key, chain = pki.signing_files("signer")
        env = {"DELIVERY_SIGNING_KEY": str(key), "DELIVERY_SIGNING_CERT": str(chain),
               "DELIVERY_TIMESTAMP_URL": pki.tsa_url, "DELIVERY_TRUST_ROOTS": str(pki.root_pem)}
        toml = campaign_file(slug="small", title="Small test petition", goal=50, signing="required",
                             hold="0s", thresholds="[5, 10]", check_every="1m")
        app = build_app(tmp_path, env, toml)
        add(app, NAMES[:3], datetime.now(UTC) - timedelta(minutes=5))
        raw, _ = deliver(app, tmp_path)
        asked = pki.requests
    assert asked > 0  # the build did use the services
    tried: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        tried.append(args[1:] or kwargs)
        raise OSError("the network is closed in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with TestClient(create_web_app(app, config=web_config())) as client:
        words = text_of(upload(client, ("dossier.eml", raw)).text)
    app.engine.dispose()
    assert tried == []
    assert "Authentic" in words, words
    assert "Signature level PAdES B-LTA: with a timestamp, the data that shows the certificates" in words
    assert "from the timestamp of a timestamp authority" in words
    assert "Campaign Signer" in words and "with the certificate this service signs with" in words
    assert "VERIFIED: every check holds (PAdES B-LTA)" in words
