"""Two `serve` instances on one PostgreSQL database: what an owner changes through one instance's
web admin is in force in the other's next tick, with A stopped and B never restarted: a signing
certificate uploaded through A signs the delivery B builds; milestones, a recipient's address and
the letter saved through A are those of B's next delivery."""

from __future__ import annotations

import html
import re
import signal
import subprocess
from datetime import timedelta
from email.message import EmailMessage
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from pyhanko.pdf_utils.reader import PdfFileReader

from delivery.campaigns.config import load_campaign
from delivery.campaigns.form import form_values
from tests.support.pdfs import make_cert, write_pem
from tests.support.serve_harness import (
    BIN,
    RECIPIENTS,
    SLUG,
    WED_NOON,
    deliveries,
    init_database,
    make_home,
    service_env,
    serving,
    set_clock,
    sign,
    wait_for,
)
from tests.support.smtpd import SmtpServer

PASSWORD = "correct horse battery staple"
SIGNER = "Uploaded Campaign Signer"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


@pytest.mark.slow
def test_a_certificate_uploaded_through_one_instance_signs_the_others_next_delivery(
        tmp_path: Path, pg_url: str, smtp_server: SmtpServer) -> None:
    home = make_home(tmp_path / "home", thresholds=[3])
    campaign = home / "schedules" / f"{SLUG}.toml"
    required = campaign.read_text(encoding="utf-8").replace('signing = "off"', 'signing = "required"')
    campaign.write_text(required, encoding="utf-8")
    clock = tmp_path / "clock"
    set_clock(clock, WED_NOON)
    env = service_env(home, pg_url, clock, DELIVERY_SECRET_KEY="s" * 40, **smtp_server.env())
    engine = init_database(env)
    made = subprocess.run([str(BIN), "users", "add", "owner", "--role", "owner", "--password-stdin"],
                          input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    # valid at the service's clock (WED_NOON) and at the web admin's (the wall clock)
    key, cert = make_cert(SIGNER, not_before=WED_NOON - timedelta(days=30))
    key_file, cert_file = write_pem(tmp_path / "upload", "campaign", key, cert)
    try:
        with serving(env, tmp_path / "a.log") as a, serving(env, tmp_path / "b.log") as b:
            with httpx.Client(base_url=f"http://127.0.0.1:{a.port}", timeout=30) as web:
                login = web.get("/login")
                web.post("/login", data={"csrf": _csrf(login.text), "name": "owner",
                                         "password": PASSWORD, "next": "/"})
                page = web.get("/signing")
                assert page.status_code == 200 and "No signing certificate yet" in page.text
                uploaded = web.post("/signing", data={"csrf": _csrf(page.text), "kind": "pem",
                                                      "key_passphrase": ""},
                                    files={"key": ("campaign-key.pem", key_file.read_bytes()),
                                           "cert": ("campaign-cert.pem", cert_file.read_bytes())},
                                    follow_redirects=True)
                assert uploaded.status_code == 200 and SIGNER in uploaded.text, uploaded.text[-2000:]
            a.signal(signal.SIGTERM)
            assert a.wait(timeout=30) == 0  # from here on only B ticks
            sign(engine, 1, 3, now=WED_NOON)
            wait_for(lambda: [d.status for d in deliveries(engine)] == ["done"], timeout=120,
                     what="the milestone's delivery, built by B")
            built_by_b = [r for r in b.records()
                          if str(r.get("message", "")).endswith("built and queued for sending")]
            assert len(built_by_b) == 1
    finally:
        engine.dispose()
    pdfs = [part.get_content() for received in smtp_server.received
            if isinstance(received.message, EmailMessage)
            for part in received.message.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert pdfs
    expected = cert.fingerprint(hashes.SHA256())
    for data in pdfs:
        [signature] = PdfFileReader(BytesIO(data)).embedded_signatures
        assert signature.signer_cert.sha256 == expected


def _log_in(web: httpx.Client) -> None:
    login = web.get("/login")
    web.post("/login", data={"csrf": _csrf(login.text), "name": "owner", "password": PASSWORD, "next": "/"})


@pytest.mark.slow
def test_settings_and_a_letter_saved_through_one_instance_are_in_force_at_the_others_next_tick(
        tmp_path: Path, pg_url: str, smtp_server: SmtpServer) -> None:
    home = make_home(tmp_path / "home", thresholds=[3])
    campaign = load_campaign(home / "schedules" / f"{SLUG}.toml")
    clock = tmp_path / "clock"
    set_clock(clock, WED_NOON)
    env = service_env(home, pg_url, clock, **smtp_server.env())
    engine = init_database(env)
    made = subprocess.run([str(BIN), "users", "add", "owner", "--role", "owner", "--password-stdin"],
                          input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    sentence = "This sentence was written in the web admin of the other instance."
    try:
        with serving(env, tmp_path / "a.log") as a, serving(env, tmp_path / "b.log"):
            with httpx.Client(base_url=f"http://127.0.0.1:{a.port}", timeout=60) as web:
                _log_in(web)
                page = web.get(f"/c/{SLUG}/settings")
                fields = form_values(campaign, ["en", "hy", "ru"]) | {
                    "csrf": _csrf(page.text), "based_on": "0", "thresholds": "2",
                    "r0-email": "office@pm.gov.am"}
                saved = web.post(f"/c/{SLUG}/settings", data=fields, follow_redirects=True)
                assert "Saved as version 2" in saved.text, saved.text[-2000:]
                editor = web.get(f"/c/{SLUG}/letter/en")
                found = re.search(r'<textarea id="f-source"[^>]*>(.*?)</textarea>', editor.text, re.S)
                assert found
                source = html.unescape(found.group(1)).replace("</p>", f" {sentence}</p>", 1)
                stored = web.post(f"/c/{SLUG}/letter/en", data={"csrf": _csrf(editor.text), "based_on": "0",
                                                                "source": source, "action": "save"},
                                  follow_redirects=True)
                assert "is saved as version 1" in stored.text, stored.text[-2000:]
            a.signal(signal.SIGTERM)
            assert a.wait(timeout=30) == 0  # from here on only B ticks
            sign(engine, 1, 2, now=WED_NOON)  # the new milestone, 2; the file's (3) is not reached
            wait_for(lambda: [(d.milestone, d.status) for d in deliveries(engine)] == [(2, "done")],
                     timeout=120, what="the delivery of the milestone set through A, built by B")
    finally:
        engine.dispose()
    to_office = [r for r in smtp_server.received if "office@pm.gov.am" in r.rcpt_tos]
    assert to_office and not [r for r in smtp_server.received if RECIPIENTS[0] in r.rcpt_tos]
    message = to_office[0].message
    assert isinstance(message, EmailMessage)
    assert sentence in " ".join(message.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
