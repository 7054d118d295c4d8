"""The first-run setup page, the owner's accounts and API token pages, the organizer's 403, and the
second approval of a manual send, through the web admin's HTTP interface on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from delivery.campaigns.config import parse_campaign
from delivery.runtime.serve import announce_setup
from delivery.services import accounts
from delivery.services.app import App, init
from delivery.settings import load_settings
from delivery.storage.db import reading
from delivery.storage.models import AuditRow, DeliveryRow, SendRequestRow
from delivery.web import create_web_app
from tests.web.test_web import (
    NOW,
    PASSWORD,
    SLUG,
    _gc_after,
    add_signers,
    audit_actions,
    campaign_toml,
    csrf_of,
    login,
    make_app,
    web_config,
)

__all__ = ["_gc_after"]


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    return make_app(engine, tmp_path)


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(create_web_app(app, config=web_config()), client=("127.0.0.1", 40000)) as c:
        yield c


def new_client(app: App) -> TestClient:
    return TestClient(create_web_app(app, config=web_config()), client=("127.0.0.1", 40001))


def owner_and_organizer(app: App) -> None:
    accounts.add_user(app, "anna", PASSWORD, now=NOW, actor="cli:tester", role="owner")
    accounts.add_user(app, "maria", PASSWORD, now=NOW, actor="cli:tester")


def csrf_at(client: TestClient, path: str) -> str:
    return csrf_of(client.get(path).text)


def described_error(html: str, field: str) -> str:
    """The error text tied to a field: its input names e-FIELD in aria-describedby."""
    match = re.search(rf'<(?:input|fieldset|select)[^>]*id="f-{field}"[^>]*aria-describedby="([^"]+)"', html)
    assert match and f"e-{field}" in match.group(1).split(), f"no error tied to {field}"
    error = re.search(rf'<p class="field-error" id="e-{field}">(.*?)</p>', html, re.S)
    assert error
    return re.sub(r"<[^>]+>", "", error.group(1))


# --- first run ----------------------------------------------------------------------------------

def test_the_setup_link_makes_the_owner_and_then_is_gone(app: App, client: TestClient) -> None:
    token = accounts.issue_setup_token(app, now=datetime.now(UTC), actor="serve")
    assert token
    first = client.get("/login")
    assert "No account exists yet" in first.text
    assert client.get("/setup").status_code == 404
    assert client.get("/setup?token=pd_nothing").status_code == 404
    page = client.get(f"/setup?token={token}")
    assert page.status_code == 200 and "Create the owner" in page.text
    assert '<label for="f-name">' in page.text and '<label for="f-password2">' in page.text
    csrf = csrf_of(page.text)
    assert client.post("/setup", data={"token": token, "name": "anna", "password": PASSWORD,
                                       "password2": PASSWORD}).status_code == 403  # no CSRF token
    differ = client.post("/setup", data={"csrf": csrf, "token": token, "name": "anna", "password": PASSWORD,
                                         "password2": PASSWORD + "x"})
    assert differ.status_code == 400 and "differ" in described_error(differ.text, "password2")
    assert 'href="#f-password2"' in differ.text  # the summary leads to the field
    bad = client.post("/setup", data={"csrf": csrf, "token": token, "name": "an na", "password": "short",
                                      "password2": "short"})
    assert "at least 10 characters" in described_error(bad.text, "password")
    assert "letters" in described_error(bad.text, "name")
    assert accounts.list_users(app) == []
    made = client.post("/setup", data={"csrf": csrf, "token": token, "name": "anna", "password": PASSWORD,
                                       "password2": PASSWORD}, follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"] == "/accounts"
    welcome = client.get("/accounts")
    assert welcome.status_code == 200 and "Welcome, anna" in welcome.text
    assert 'href="/accounts"' in welcome.text  # the owner's menu has the link
    assert [(u.name, u.role) for u in accounts.list_users(app)] == [("anna", "owner")]
    with new_client(app) as other:
        gone = other.get(f"/setup?token={token}")
        assert gone.status_code == 410 and "an account exists already" in gone.text
        assert other.get("/setup?token=pd_nothing").status_code == 410
        again = other.post("/setup", data={"csrf": csrf_of(other.get("/login").text), "token": token,
                                           "name": "mallory", "password": PASSWORD, "password2": PASSWORD})
        assert again.status_code == 410
        assert "No account exists yet" not in other.get("/login").text
    assert audit_actions(app) == [("serve", "setup.link"), ("web:anna", "user.add"),
                                  ("web:anna", "user.login")]


def test_an_expired_setup_link_is_refused(app: App, client: TestClient) -> None:
    token = accounts.issue_setup_token(app, now=datetime.now(UTC) - timedelta(hours=1, seconds=1),
                                       actor="serve")
    page = client.get(f"/setup?token={token}")
    assert page.status_code == 404 and "older than an hour" in page.text


def test_serve_prints_a_setup_link_only_while_no_account_exists(app: App) -> None:
    printed: list[str] = []
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))  # never listened on
        port = sock.getsockname()[1]
        link = announce_setup(app, sock, out=printed.append)
        assert link is not None and link.startswith(f"http://127.0.0.1:{port}/setup?token=")
        assert link in printed[0] and "60 minutes" in printed[0]
        token = link.split("token=")[1]
        accounts.check_setup_token(app, token, now=datetime.now(UTC))
        accounts.add_user(app, "anna", PASSWORD, now=NOW, actor="cli:tester", role="owner")
        assert announce_setup(app, sock, out=printed.append) is None
    assert len(printed) == 1


# --- roles --------------------------------------------------------------------------------------

def test_an_organizer_gets_403_on_the_owners_pages_and_no_menu_link(app: App, client: TestClient) -> None:
    owner_and_organizer(app)
    csrf = login(client, "maria")
    assert 'href="/accounts"' not in client.get(f"/c/{SLUG}/").text
    for path in ("/accounts", "/accounts/anna", "/tokens"):
        refused = client.get(path)
        assert refused.status_code == 403, path
        assert "Only an owner" in refused.text and "anna" in refused.text
    for path, data in (("/accounts", {"name": "eve", "role": "owner", "password": PASSWORD,
                                      "password2": PASSWORD}),
                       ("/accounts/maria/role", {"role": "owner"}), ("/tokens", {"name": "x"}),
                       ("/accounts/anna/remove", {"confirm": "yes"})):
        assert client.post(path, data={"csrf": csrf, **data}).status_code == 403, path
    assert accounts.user_role(app, "maria") == "organizer" and accounts.list_tokens(app) == []
    assert client.get(f"/c/{SLUG}/send").status_code == 200  # what an organizer does stays open


def test_the_owner_makes_changes_and_removes_accounts_never_the_last_owner(app: App,
                                                                          client: TestClient) -> None:
    owner_and_organizer(app)
    csrf = login(client, "anna")
    listed = client.get("/accounts")
    assert "maria" in listed.text and "organizer" in listed.text and 'href="/tokens"' in listed.text
    taken = client.post("/accounts", data={"csrf": csrf, "name": "maria", "role": "organizer",
                                           "password": PASSWORD, "password2": PASSWORD})
    assert taken.status_code == 400 and "already" in described_error(taken.text, "name")
    no_role = client.post("/accounts", data={"csrf": csrf, "name": "lilit", "password": PASSWORD,
                                             "password2": PASSWORD})
    assert no_role.status_code == 400 and "owner or organizer" in described_error(no_role.text, "role")
    assert 'value="lilit"' in no_role.text  # what was typed stays, but never a password
    assert PASSWORD not in no_role.text
    made = client.post("/accounts", data={"csrf": csrf, "name": "lilit", "role": "organizer",
                                          "password": PASSWORD, "password2": PASSWORD},
                       follow_redirects=False)
    assert made.status_code == 303
    assert "Account lilit made" in client.get("/accounts").text

    last = client.post("/accounts/anna/role", data={"csrf": csrf, "role": "organizer"})
    assert last.status_code == 409 and "only owner" in described_error(last.text, "role")
    assert "cannot be removed" in client.get("/accounts/anna").text
    kept = client.post("/accounts/anna/remove", data={"csrf": csrf, "confirm": "yes"})
    assert kept.status_code == 409 and accounts.user_exists(app, "anna")

    with new_client(app) as maria:
        login(maria, "maria")
        promoted = client.post("/accounts/maria/role", data={"csrf": csrf, "role": "owner"},
                               follow_redirects=False)
        assert promoted.status_code == 303
        # her session ended: she logs in again, as an owner
        assert maria.get("/accounts", follow_redirects=False).status_code == 303
        login(maria, "maria")
        assert maria.get("/accounts").status_code == 200

    unconfirmed = client.post("/accounts/lilit/remove", data={"csrf": csrf})
    assert unconfirmed.status_code == 400 and "Tick the box" in described_error(unconfirmed.text, "confirm")
    client.post("/accounts/lilit/remove", data={"csrf": csrf, "confirm": "yes"})
    assert not accounts.user_exists(app, "lilit")
    assert client.get("/accounts/lilit").status_code == 404

    # with maria an owner too, anna may step down herself and keeps her session
    down = client.post("/accounts/anna/role", data={"csrf": csrf, "role": "organizer"},
                       follow_redirects=False)
    assert down.status_code == 303 and down.headers["location"] == "/"
    assert client.get("/accounts").status_code == 403
    assert 'href="/accounts"' not in client.get(f"/c/{SLUG}/").text
    assert [a for a in audit_actions(app) if a[0].startswith("web:")] == [
        ("web:anna", "user.login"), ("web:anna", "user.add"), ("web:maria", "user.login"),
        ("web:anna", "user.role"), ("web:maria", "user.login"), ("web:anna", "user.remove"),
        ("web:anna", "user.role")]


def test_the_owner_sets_a_new_password_which_ends_that_accounts_sessions(app: App,
                                                                        client: TestClient) -> None:
    owner_and_organizer(app)
    csrf = login(client, "anna")
    with new_client(app) as maria:
        login(maria, "maria")
        short = client.post("/accounts/maria/password", data={"csrf": csrf, "password": "short",
                                                              "password2": "short"})
        assert short.status_code == 400 and "too short" in described_error(short.text, "password")
        done = client.post("/accounts/maria/password", data={"csrf": csrf, "password": "a new long password",
                                                             "password2": "a new long password"},
                           follow_redirects=False)
        assert done.status_code == 303
        assert maria.get(f"/c/{SLUG}/", follow_redirects=False).status_code == 303
    assert accounts.authenticate(app, "maria", "a new long password")
    assert ("web:anna", "user.password") in audit_actions(app)


# --- API tokens ---------------------------------------------------------------------------------

SIGNATURE = {"name": "Lilit Hakobyan", "email": "lilit@example.net", "city": "Vanadzor", "country": "Armenia",
             "consent": True}


def test_a_token_is_shown_once_listed_without_itself_and_refused_by_the_api_once_revoked(
        app: App, client: TestClient) -> None:
    owner_and_organizer(app)
    csrf = login(client, "anna")
    bad = client.post("/tokens", data={"csrf": csrf, "name": "web site", "campaign": "nope"})
    assert bad.status_code == 400
    assert "letters" in described_error(bad.text, "name") and "list" in described_error(bad.text, "campaign")
    made = client.post("/tokens", data={"csrf": csrf, "name": "website", "campaign": SLUG})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    shown = re.search(r'<input id="new-token" value="(pd_[^"]+)" readonly', made.text)
    assert shown and "shown only this once" in made.text
    token = shown.group(1)
    assert '<script src="/static/copy.js"' in made.text
    assert client.get("/static/copy.js").headers["content-type"].startswith("text/javascript")
    listed = client.get("/tokens")
    assert "website" in listed.text and SLUG in listed.text and token not in listed.text
    api = f"/api/v1/campaigns/{SLUG}/signatures"
    bearer = {"authorization": f"Bearer {token}"}
    assert client.post(api, json=SIGNATURE, headers=bearer).status_code == 201
    assert client.post("/tokens", data={"csrf": csrf, "name": "website"}).status_code == 400  # taken
    revoked = client.post("/tokens/website/revoke", data={"csrf": csrf}, follow_redirects=False)
    assert revoked.status_code == 303
    assert "revoked" in client.get("/tokens").text
    assert client.post(api, json={**SIGNATURE, "email": "x@example.net"}, headers=bearer).status_code == 401
    assert client.post("/tokens/nothing/revoke", data={"csrf": csrf}).status_code == 404
    with reading(app.engine) as session:
        rows = list(session.execute(select(AuditRow.actor, AuditRow.action, AuditRow.detail)
                                    .where(AuditRow.action.like("token.%")).order_by(AuditRow.id)))
    assert [(a, b) for a, b, _ in rows] == [("web:anna", "token.add"), ("web:anna", "token.revoke")]
    assert token not in repr(rows)


# --- second approval of a manual send -------------------------------------------------------------

def approval_app(engine: Engine, tmp_path: Path) -> App:
    text = campaign_toml().replace('signing = "off"\n', 'signing = "off"\nrequire_second_approval = true\n')
    campaign = parse_campaign(text, "test.toml")
    assert campaign.require_second_approval
    env = {"DELIVERY_HOME": str(tmp_path), "DELIVERY_VAR_DIR": str(tmp_path / "var"),
           "DELIVERY_OUTBOX_DIR": str(tmp_path / "outbox")}
    app = App(settings=load_settings(env), engine=engine, campaigns={SLUG: campaign})
    init(app, now=NOW)
    add_signers(app)
    owner_and_organizer(app)
    return app


def confirm_send(client: TestClient, csrf: str) -> tuple[dict[str, str], str]:
    review = client.post(f"/c/{SLUG}/send", data={"csrf": csrf, "to": "prime-minister@example.org",
                                                  "step": "review"})
    assert "Ask for approval" in review.text and "second approval" in review.text
    nonce = re.search(r'name="nonce" value="([^"]+)"', review.text)
    assert nonce
    form = {"csrf": csrf, "to": "prime-minister@example.org", "step": "confirm", "nonce": nonce.group(1)}
    return form, nonce.group(1).split(".")[0]  # the key, without its MAC


def deliveries_count(app: App) -> int:
    with reading(app.engine) as session:
        return session.scalar(select(func.count()).select_from(DeliveryRow)) or 0


def test_a_send_waits_for_a_second_account_and_the_asker_cannot_approve_it(engine: Engine,
                                                                          tmp_path: Path) -> None:
    app = approval_app(engine, tmp_path)
    with new_client(app) as maria, new_client(app) as anna:
        csrf = login(maria, "maria")
        form, nonce = confirm_send(maria, csrf)
        asked = maria.post(f"/c/{SLUG}/send", data=form, follow_redirects=False)
        assert asked.status_code == 303 and asked.headers["location"] == f"/c/{SLUG}/send"
        page = maria.get(f"/c/{SLUG}/send")
        assert "waits for another account" in page.text and "You asked for this send" in page.text
        assert "Approve and send now" not in page.text
        again = maria.post(f"/c/{SLUG}/send", data=form)  # a double click: one request only
        assert "used already" in again.text
        with reading(app.engine) as session:
            [request] = session.scalars(select(SendRequestRow))
            assert request.status == "pending" and request.request_key == nonce
            assert json.loads(request.recipients) == ["prime-minister@example.org"]
        own = maria.post(f"/c/{SLUG}/send/requests/{request.id}/approve", data={"csrf": csrf})
        assert "another account must approve it" in own.text
        assert deliveries_count(app) == 0

        other = login(anna, "anna")
        waiting = anna.get(f"/c/{SLUG}/send")
        assert "<strong>maria</strong> asked" in waiting.text and "Approve and send now" in waiting.text
        assert "<strong>4</strong> signers" in waiting.text
        assert anna.post(f"/c/{SLUG}/send/requests/{request.id}/approve", data={}).status_code == 403
        approved = anna.post(f"/c/{SLUG}/send/requests/{request.id}/approve", data={"csrf": other},
                             follow_redirects=False)
        assert approved.status_code == 303 and "/deliveries/" in approved.headers["location"]
        replay = anna.post(f"/c/{SLUG}/send/requests/{request.id}/approve", data={"csrf": other},
                           follow_redirects=False)
        assert replay.headers["location"].split("?")[0] == approved.headers["location"].split("?")[0]
        assert deliveries_count(app) == 1
        anna.app.state.web.jobs.join_all(timeout=180)  # type: ignore[attr-defined]
        assert "No send request is waiting" in anna.get(f"/c/{SLUG}/send").text
    with reading(app.engine) as session:
        delivery = session.scalars(select(DeliveryRow)).one()
        assert delivery.request_key == nonce and delivery.trigger == "manual"
    steps = [a for a in audit_actions(app) if a[1].startswith(("send.", "delivery.create"))]
    assert steps == [("web:maria", "send.request"), ("web:anna", "send.approve"),
                     ("web:anna", "delivery.create"), ("web:anna", "delivery.create_replayed")]


def test_a_send_request_can_be_cancelled_and_then_not_approved(engine: Engine, tmp_path: Path) -> None:
    app = approval_app(engine, tmp_path)
    with new_client(app) as maria, new_client(app) as anna:
        csrf = login(maria, "maria")
        form, _ = confirm_send(maria, csrf)
        maria.post(f"/c/{SLUG}/send", data=form)
        with reading(app.engine) as session:
            request_id = session.scalars(select(SendRequestRow.id)).one()
        cancelled = maria.post(f"/c/{SLUG}/send/requests/{request_id}/cancel", data={"csrf": csrf})
        assert "cancelled: nothing was sent" in cancelled.text
        other = login(anna, "anna")
        late = anna.post(f"/c/{SLUG}/send/requests/{request_id}/approve", data={"csrf": other})
        assert "was cancelled by maria" in late.text
        assert anna.post(f"/c/{SLUG}/send/requests/99/approve", data={"csrf": other}).status_code == 404
    assert deliveries_count(app) == 0
