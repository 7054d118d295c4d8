"""Two `serve` instances on one PostgreSQL database: what an owner changes through one instance's
web admin is in force in the other's next tick. Here the signing certificate: uploaded through
instance A, it signs the delivery instance B builds, with A stopped and B never restarted."""

from __future__ import annotations

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

from tests.support.pdfs import make_cert, write_pem
from tests.support.serve_harness import (
    BIN,
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
