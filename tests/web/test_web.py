"""The web admin through its HTTP interface (Starlette TestClient): login, CSRF, rate limiting,
pages, actions and what they change in the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from delivery.campaigns.config import parse_campaign
from delivery.services import accounts, deliveries
from delivery.services.app import App, init
from delivery.settings import load_settings
from delivery.storage.db import transaction
from delivery.storage.models import AuditRow, DeliveryRow, SignerRow, UserRow
from delivery.web import create_web_app
from delivery.web.config import WebConfig
from tests.support.campaigns import campaign_file

SLUG = "test-petition"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
SECRET = "k" * 40


def campaign_toml(slug: str = SLUG, title: str = "Test petition: free the test",
                  thresholds: str = "[3, 10, 80000]", hold: str = "2h") -> str:
    return campaign_file(slug=slug, title=title, goal=80000, signing="off", hold=hold,
                         thresholds=thresholds, check_every="5m", second_language="en")


def make_app(engine: Engine, tmp_path: Path, extra_env: dict[str, str] | None = None,
             slugs: tuple[str, ...] = (SLUG,)) -> App:
    env = {"DELIVERY_HOME": str(tmp_path), "DELIVERY_VAR_DIR": str(tmp_path / "var"),
           "DELIVERY_OUTBOX_DIR": str(tmp_path / "outbox"), **(extra_env or {})}
    campaigns = {}
    for i, slug in enumerate(slugs):
        campaigns[slug] = parse_campaign(campaign_toml(slug, title=f"Test petition {i + 1}"), f"{slug}.toml")
    app = App(settings=load_settings(env), engine=engine, campaigns=campaigns)
    init(app, now=NOW)
    return app


SIGNERS = [("Anna Petrosyan", "anna@example.net", "Yerevan", "Armenia"),
           ("Ivan Petrov", "ivan@example.net", "Moscow", "Russia"),
           ("Marie Dupont", "marie@example.net", "Lyon", "France"),
           ("Գոհար Սարգսյան", "gohar@example.net", "Gyumri", "AM")]


def add_signers(app: App, slug: str = SLUG, rows: list[tuple[str, str, str, str]] = SIGNERS) -> None:
    from delivery.signers.intake import validate_signer
    from delivery.signers.store import add_signers as store

    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, app.campaigns[slug])
        inputs = [validate_signer({"name": n, "email": e, "city": c, "country": k,
                                   "signed_at": (NOW - timedelta(days=3 - i % 3)).isoformat()},
                                  now=NOW, source="test") for i, (n, e, c, k) in enumerate(rows)]
        store(session, campaign_id, inputs, now=NOW, keys=app.signer_keys)


def add_user(app: App, name: str = "organizer", password: str = PASSWORD) -> None:
    accounts.add_user(app, name, password, now=NOW, actor="cli:tester")


def held_delivery(app: App, slug: str = SLUG) -> str:
    _, _, public_id = deliveries.detect_milestones(app, app.campaigns[slug], now=datetime.now(UTC))
    assert public_id is not None
    return public_id


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def login(client: TestClient, name: str = "organizer", password: str = PASSWORD) -> str:
    page = client.get("/login")
    response = client.post("/login", data={"csrf": csrf_of(page.text), "name": name, "password": password,
                                           "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_of(client.get(f"/c/{SLUG}/").text)


def delivery_status(app: App, public_id: str) -> str:
    with transaction(app.engine) as session:
        return session.scalar(select(DeliveryRow.status).where(DeliveryRow.public_id == public_id)) or ""


def audit_actions(app: App) -> list[tuple[str, str]]:
    with transaction(app.engine) as session:
        return [(a.actor, a.action) for a in session.scalars(select(AuditRow).order_by(AuditRow.id))]


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    app = make_app(engine, tmp_path)
    add_signers(app)
    add_user(app)
    return app


def web_config(**overrides: object) -> WebConfig:
    return WebConfig(secret_key=SECRET, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(create_web_app(app, config=web_config()), client=("127.0.0.1", 40000)) as c:
        yield c


# --- login, sessions ---------------------------------------------------------------------------

def test_pages_need_a_login(client: TestClient) -> None:
    for path in ("/", f"/c/{SLUG}/", f"/c/{SLUG}/signers", f"/c/{SLUG}/audit", f"/c/{SLUG}/deliveries"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_login_with_a_wrong_password_fails_and_the_right_one_opens_the_dashboard(client: TestClient) -> None:
    page = client.get("/login")
    bad = client.post("/login", data={"csrf": csrf_of(page.text), "name": "organizer",
                                      "password": "nope-nope-nope"})
    assert bad.status_code == 401 and "Wrong name or password" in bad.text
    login(client)
    dashboard = client.get(f"/c/{SLUG}/")
    assert dashboard.status_code == 200
    assert "<strong>4</strong> signers of 80,000" in dashboard.text
    assert "<progress" in dashboard.text and "<svg" in dashboard.text
    assert "Next milestone: <strong>10</strong>" in dashboard.text


def test_login_without_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"name": "organizer", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403
    assert client.get(f"/c/{SLUG}/", follow_redirects=False).status_code == 303


def test_login_redirects_only_to_local_paths(client: TestClient) -> None:
    page = client.get("/login")
    response = client.post("/login", data={"csrf": csrf_of(page.text), "name": "organizer",
                                           "password": PASSWORD, "next": "//evil.example/x"},
                           follow_redirects=False)
    assert response.headers["location"] == "/"


def test_logout_ends_the_session(client: TestClient) -> None:
    csrf = login(client)
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.get(f"/c/{SLUG}/", follow_redirects=False).status_code == 303


def test_a_tampered_session_cookie_is_no_session(client: TestClient) -> None:
    login(client)
    value = client.cookies["pd_session"]
    client.cookies.clear()
    client.cookies.set("pd_session", value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"))
    assert client.get(f"/c/{SLUG}/", follow_redirects=False).status_code == 303


def test_a_session_signed_with_another_key_is_no_session(app: App, client: TestClient) -> None:
    login(client)
    other = TestClient(create_web_app(app, config=WebConfig(secret_key="x" * 40)))
    other.cookies.set("pd_session", client.cookies["pd_session"])
    assert other.get(f"/c/{SLUG}/", follow_redirects=False).status_code == 303


def test_a_removed_user_loses_their_session(app: App, client: TestClient) -> None:
    login(client)
    accounts.remove_user(app, "organizer", now=NOW, actor="cli:tester")
    assert client.get(f"/c/{SLUG}/", follow_redirects=False).status_code == 303


def test_session_cookie_flags_over_plain_http(client: TestClient) -> None:
    page = client.get("/login")
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_cookie_is_secure_behind_a_trusted_tls_proxy_only(app: App) -> None:
    trusted = web_config(trusted_proxies=(__import__("ipaddress").ip_network("127.0.0.1/32"),))
    with TestClient(create_web_app(app, config=trusted), client=("127.0.0.1", 1)) as c:
        assert "Secure" in c.get("/login", headers={"x-forwarded-proto": "https"}).headers["set-cookie"]
    with TestClient(create_web_app(app, config=web_config()), client=("127.0.0.1", 1)) as c:
        assert "Secure" not in c.get("/login", headers={"x-forwarded-proto": "https"}).headers["set-cookie"]
    with TestClient(create_web_app(app, config=web_config(secure_cookies="always"))) as c:
        headers = c.get("/login").headers
        assert "Secure" in headers["set-cookie"] and "strict-transport-security" in headers


def test_security_headers_on_pages_and_api(client: TestClient) -> None:
    for path in ("/login", "/api/v1/openapi.json"):
        headers = client.get(path).headers
        assert headers["x-frame-options"] == "DENY"
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["referrer-policy"] == "same-origin"
        assert headers["x-content-type-options"] == "nosniff"


def test_pages_have_no_inline_script_and_a_viewport(client: TestClient) -> None:
    login(client)
    for path in ("/login", f"/c/{SLUG}/", f"/c/{SLUG}/signers", f"/c/{SLUG}/send"):
        html = client.get(path).text
        assert "<script" not in html and " style=" not in html and "onclick" not in html
        assert 'name="viewport"' in html


# --- rate limiting -------------------------------------------------------------------------------

def _attempt(client: TestClient, name: str, password: str, ip: str | None = None) -> int:
    headers = {"x-forwarded-for": ip} if ip else {}
    page = client.get("/login", headers=headers)
    return client.post("/login", data={"csrf": csrf_of(page.text), "name": name, "password": password},
                       headers=headers, follow_redirects=False).status_code


def test_five_failures_block_the_user_even_with_the_right_password(client: TestClient) -> None:
    for _ in range(5):
        assert _attempt(client, "organizer", "wrong password!") == 401
    assert _attempt(client, "organizer", PASSWORD) == 429
    assert client.get(f"/c/{SLUG}/", follow_redirects=False).status_code == 303


# The limits per address, per (name, address), their backoff, and their sharing between
# instances: tests/web/test_logins.py.


# --- CSRF and unauthenticated posts change nothing ----------------------------------------------------

def test_posts_without_a_session_change_nothing(app: App, client: TestClient) -> None:
    public_id = held_delivery(app)
    before = audit_actions(app)
    for action in ("cancel", "release"):
        response = client.post(f"/c/{SLUG}/deliveries/{public_id}/{action}", data={"csrf": "x"},
                               follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    response = client.post(f"/c/{SLUG}/signers/withdraw", data={"email": "anna@example.net", "csrf": "x"},
                           follow_redirects=False)
    assert response.status_code == 303
    response = client.post(f"/c/{SLUG}/send", data={"to": "prime-minister@example.org", "step": "confirm"},
                           follow_redirects=False)
    assert response.status_code == 303
    assert delivery_status(app, public_id) == "held"
    assert audit_actions(app) == before
    with transaction(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(SignerRow).where(
            SignerRow.withdrawn_at.is_not(None))) == 0
        assert session.scalar(select(func.count()).select_from(DeliveryRow)) == 1


@pytest.mark.parametrize("token", [None, "", "wrong-token-wrong-token-wrong-token"])
def test_posts_with_a_bad_csrf_token_change_nothing(app: App, client: TestClient, token: str | None) -> None:
    login(client)
    public_id = held_delivery(app)
    before = audit_actions(app)
    data = {} if token is None else {"csrf": token}
    for path in (f"/c/{SLUG}/deliveries/{public_id}/cancel", f"/c/{SLUG}/deliveries/{public_id}/release",
                 f"/c/{SLUG}/preview", "/logout"):
        assert client.post(path, data=data).status_code == 403, path
    withdraw = client.post(f"/c/{SLUG}/signers/withdraw", data={**data, "email": "anna@example.net"})
    assert withdraw.status_code == 403
    assert client.post(f"/c/{SLUG}/send", data={**data, "to": "prime-minister@example.org",
                                                  "step": "confirm"}).status_code == 403
    assert delivery_status(app, public_id) == "held"
    assert audit_actions(app) == before
    assert client.get(f"/c/{SLUG}/", follow_redirects=False).status_code == 200  # still logged in


def test_a_csrf_token_from_another_session_is_refused(app: App, client: TestClient) -> None:
    other_csrf = login(TestClient(create_web_app(app, config=web_config())))
    login(client)
    public_id = held_delivery(app)
    response = client.post(f"/c/{SLUG}/deliveries/{public_id}/cancel", data={"csrf": other_csrf})
    assert response.status_code == 403
    assert delivery_status(app, public_id) == "held"


def test_oversized_and_lengthless_form_posts_are_refused(client: TestClient) -> None:
    csrf = login(client)
    big = client.post(f"/c/{SLUG}/signers/withdraw", data={"csrf": csrf, "email": "a" * 300_000})
    assert big.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b"csrf=" + csrf.encode()

    assert client.post(f"/c/{SLUG}/preview", content=chunks(),
                       headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 411


# --- actions ----------------------------------------------------------------------------------------

def test_cancel_a_held_delivery(app: App, client: TestClient) -> None:
    csrf = login(client)
    public_id = held_delivery(app)
    page = client.get(f"/c/{SLUG}/deliveries/{public_id}")
    assert "Cancel delivery" in page.text and "Release now" in page.text
    response = client.post(f"/c/{SLUG}/deliveries/{public_id}/cancel", data={"csrf": csrf})
    assert response.status_code == 200 and "cancelled" in response.text
    assert delivery_status(app, public_id) == "cancelled"
    assert ("web:organizer", "delivery.cancel") in audit_actions(app)
    again = client.post(f"/c/{SLUG}/deliveries/{public_id}/cancel", data={"csrf": csrf})
    assert "nothing to cancel" in again.text


def test_releasing_a_held_delivery_builds_and_sends_it_at_once(app: App, tmp_path: Path,
                                                                smtp_server: Any) -> None:
    """As `petition-delivery deliveries release` does: no waiting for the scheduler's next check."""
    app = make_app(app.engine, tmp_path, extra_env=smtp_server.env())
    public_id = held_delivery(app)
    with TestClient(create_web_app(app, config=web_config())) as c:
        csrf = login(c)
        released = c.post(f"/c/{SLUG}/deliveries/{public_id}/release", data={"csrf": csrf},
                          follow_redirects=False)
        assert released.status_code == 303 and "?job=" in released.headers["location"]
        _wait_for_jobs(c)
        assert delivery_status(app, public_id) == "done"
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [
        "migration-service@example.org", "prime-minister@example.org"]
    assert ("web:organizer", "delivery.release") in audit_actions(app)


def test_unknown_delivery_and_action_are_404(client: TestClient) -> None:
    csrf = login(client)
    for ref in ("NOPE-1", "99999999999999999999", "²", "a b"):
        assert client.post(f"/c/{SLUG}/deliveries/{ref}/cancel", data={"csrf": csrf}).status_code == 404
    assert client.post(f"/c/{SLUG}/deliveries/NOPE-1/explode", data={"csrf": csrf}).status_code == 404
    assert client.get(f"/c/{SLUG}/deliveries/NOPE-1").status_code == 404
    assert client.get("/c/no-such-campaign/").status_code == 404


def test_withdraw_a_signer_by_email(app: App, client: TestClient) -> None:
    csrf = login(client)
    done = client.post(f"/c/{SLUG}/signers/withdraw", data={"csrf": csrf, "email": " Anna@Example.NET "})
    assert "Signer withdrawn" in done.text and "anna@" not in done.text.lower()
    with transaction(app.engine) as session:
        withdrawn = session.scalars(select(SignerRow.name).where(SignerRow.withdrawn_at.is_not(None))).all()
    assert withdrawn == ["Anna Petrosyan"]
    assert ("web:organizer", "signers.withdraw") in audit_actions(app)
    missing = client.post(f"/c/{SLUG}/signers/withdraw", data={"csrf": csrf, "email": "nobody@example.net"})
    assert "No signer with that e-mail" in missing.text
    assert "<strong>3</strong> signers" in client.get(f"/c/{SLUG}/").text


def test_signers_page_counts_countries_and_finds_names(client: TestClient) -> None:
    login(client)
    page = client.get(f"/c/{SLUG}/signers", params={"q": "petr"})
    assert "Anna Petrosyan" in page.text and "Ivan Petrov" in page.text and "Marie Dupont" not in page.text
    assert "Armenia" in page.text and "France" in page.text and "<svg" in page.text
    assert "No signer" in client.get(f"/c/{SLUG}/signers", params={"q": "zzz%_"}).text


def test_no_page_shows_a_signer_email(app: App, client: TestClient) -> None:
    login(client)
    public_id = held_delivery(app)
    client.post(f"/c/{SLUG}/signers/withdraw", data={"csrf": csrf_of(client.get(f"/c/{SLUG}/signers").text),
                                                     "email": "ivan@example.net"})
    pages = [f"/c/{SLUG}/", f"/c/{SLUG}/deliveries", f"/c/{SLUG}/deliveries/{public_id}",
             f"/c/{SLUG}/signers?q=a", f"/c/{SLUG}/signers?q=%40", f"/c/{SLUG}/audit", f"/c/{SLUG}/send"]
    for path in pages:
        html = client.get(path).text
        for _, email, _, _ in SIGNERS:
            assert email not in html and email.split("@")[0] + "@" not in html, path
        assert "@example.net" not in html, path


def test_audit_log_page_shows_who_did_what(app: App, client: TestClient) -> None:
    csrf = login(client)
    public_id = held_delivery(app)
    client.post(f"/c/{SLUG}/deliveries/{public_id}/cancel", data={"csrf": csrf})
    page = client.get(f"/c/{SLUG}/audit").text
    assert "web:organizer" in page and "delivery.cancel" in page and "user.login" in page


def test_campaign_picker_with_several_campaigns(engine: Engine, tmp_path: Path) -> None:
    app = make_app(engine, tmp_path, slugs=(SLUG, "second-petition"))
    add_user(app)
    with TestClient(create_web_app(app, config=web_config())) as c:
        login(c)
        page = c.get("/")
        assert f'href="/c/{SLUG}/"' in page.text and 'href="/c/second-petition/"' in page.text
        assert "Test petition 2" in c.get("/c/second-petition/").text


def test_send_needs_a_confirmation_and_refuses_a_second_submit(app: App, client: TestClient) -> None:
    csrf = login(client)
    review = client.post(f"/c/{SLUG}/send", data={"csrf": csrf, "to": "prime-minister@example.org",
                                                  "step": "review"})
    assert "Confirm sending" in review.text and "<strong>4</strong> signers" in review.text
    with transaction(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(DeliveryRow)) == 0
    unknown = client.post(f"/c/{SLUG}/send", data={"csrf": csrf, "to": "someone@else.example",
                                                   "step": "review"})
    assert unknown.status_code == 400 and "not a recipient" in unknown.text
    none = client.post(f"/c/{SLUG}/send", data={"csrf": csrf, "step": "review"})
    assert none.status_code == 400
    stale = client.post(f"/c/{SLUG}/send", data={"csrf": csrf, "to": "prime-minister@example.org",
                                                 "step": "confirm", "nonce": "forged"})
    assert "used already or has expired" in stale.text
    with transaction(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(DeliveryRow)) == 0


def test_user_rows_hold_argon2_hashes(app: App) -> None:
    with transaction(app.engine) as session:
        stored = session.scalar(select(UserRow.password_hash))
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored


@pytest.fixture(autouse=True)
def _gc_after() -> Iterator[None]:
    """Collect garbage after each test (and after its engine is disposed), so that an abandoned
    database connection is reported by the test that abandoned it, not by a random later one."""
    yield
    import gc

    gc.collect()


# --- preview and send (real rendering, real SMTP on loopback) ----------------------------------------

def _wait_for_jobs(client: TestClient) -> None:
    client.app.state.web.jobs.join_all(timeout=180)  # type: ignore[attr-defined]


def test_preview_builds_files_to_view_and_download(client: TestClient) -> None:
    csrf = login(client)
    started = client.post(f"/c/{SLUG}/preview", data={"csrf": csrf}, follow_redirects=False)
    assert started.status_code == 303
    page_url = started.headers["location"]
    _wait_for_jobs(client)
    page = client.get(page_url)
    assert "Nothing was sent" in page.text and "with 4 signers" in page.text
    names = re.findall(r'/files/([^"?]+)"', page.text)
    pdf_name = next(n for n in names if n.endswith(".pdf"))
    inline = client.get(f"{page_url}/files/{pdf_name}")
    assert inline.content.startswith(b"%PDF") and inline.headers["content-type"] == "application/pdf"
    assert inline.headers["content-disposition"].startswith("inline")
    download = client.get(f"{page_url}/files/{pdf_name}?download=1")
    assert download.headers["content-disposition"].startswith("attachment")
    manifest = client.get(f"{page_url}/files/manifest.json").json()
    assert manifest["signer_count"] == 4
    assert client.get(f"{page_url}/files/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get(f"/c/{SLUG}/preview/not-a-job").status_code == 404


def test_a_second_preview_while_one_is_built_joins_it(client: TestClient) -> None:
    csrf = login(client)
    first = client.post(f"/c/{SLUG}/preview", data={"csrf": csrf}, follow_redirects=False)
    second = client.post(f"/c/{SLUG}/preview", data={"csrf": csrf}, follow_redirects=False)
    jobs = client.app.state.web.jobs  # type: ignore[attr-defined]
    running = [j for j in jobs.running() if j.kind == "preview"]
    _wait_for_jobs(client)
    assert first.headers["location"] == second.headers["location"]  # one build, both see it
    assert len(running) <= 1
    third = client.post(f"/c/{SLUG}/preview", data={"csrf": csrf}, follow_redirects=False)
    assert third.headers["location"] != first.headers["location"]  # once done, a new one may start
    _wait_for_jobs(client)


def test_send_now_sends_to_the_chosen_recipient(app: App, tmp_path: Path, smtp_server: Any) -> None:
    # The same database, signers and user, with SMTP pointed at the loopback server.
    app = make_app(app.engine, tmp_path, extra_env=smtp_server.env())
    with TestClient(create_web_app(app, config=web_config())) as c:
        csrf = login(c)
        review = c.post(f"/c/{SLUG}/send", data={"csrf": csrf, "to": "prime-minister@example.org",
                                                 "step": "review"})
        nonce = re.search(r'name="nonce" value="([^"]+)"', review.text)
        assert nonce
        form = {"csrf": csrf, "to": "prime-minister@example.org", "step": "confirm", "nonce": nonce.group(1)}
        sent = c.post(f"/c/{SLUG}/send", data=form, follow_redirects=False)
        assert sent.status_code == 303 and "/deliveries/" in sent.headers["location"]
        first = c.get(sent.headers["location"])
        assert 'http-equiv="refresh"' in first.text or "done" in first.text
        _wait_for_jobs(c)
        done = c.get(sent.headers["location"])
        assert '<span class="state done">done</span>' in done.text and 'http-equiv="refresh"' not in done.text
        again = c.post(f"/c/{SLUG}/send", data=form)  # the same confirmation a second time
        assert "used already" in again.text
        public_id = sent.headers["location"].split("/deliveries/")[1].split("?")[0]
        with transaction(app.engine) as session:
            from delivery.storage.models import DeliveryFileRow

            stored = session.scalars(select(DeliveryFileRow).where(DeliveryFileRow.kind == "pdf")).first()
            assert stored is not None
            name, content = stored.name, stored.content
            assert session.scalar(select(func.count()).select_from(DeliveryRow)) == 1
        pdf = c.get(f"/c/{SLUG}/deliveries/{public_id}/files/{name}")
        assert pdf.content == content
        assert c.get(f"/c/{SLUG}/deliveries/{public_id}/files/nothing.pdf").status_code == 404
    assert [r.rcpt_tos for r in smtp_server.received] == [["prime-minister@example.org"]]
    assert ("web:organizer", "delivery.create") in audit_actions(app)


# --- configuration ------------------------------------------------------------------------------------

