"""Logins an attacker cannot brute-force, spoof or outlive, through the web admin's HTTP interface,
on SQLite and PostgreSQL: the login limits are counted in the database (atomically, shared by every
instance), a name locked from one address still logs in from another, X-Forwarded-* is believed
only from DELIVERY_TRUSTED_PROXIES (under the real `serve`, whose uvicorn must not believe it
either), and logout, a new password or a removal ends every session cookie made before."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from delivery.services import accounts
from delivery.services.app import App, open_app
from delivery.settings import load_settings
from delivery.storage.db import make_engine, reading
from delivery.storage.models import AuditRow, LoginAttemptRow
from delivery.web import create_web_app
from delivery.web.middleware import COOKIE
from tests.support.serve_harness import WED_NOON, init_database, make_home, service_env, serving, set_clock
from tests.web.test_web import (
    NOW,
    PASSWORD,
    SLUG,
    _gc_after,
    add_user,
    csrf_of,
    login,
    make_app,
    web_config,
)

__all__ = ["_gc_after"]
ATTACKER = "198.51.100.66"
VICTIM = "203.0.113.5"


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    app = make_app(engine, tmp_path)
    add_user(app)
    return app


@contextmanager
def client_at(app: App, ip: str, **config: object) -> Iterator[TestClient]:
    """A browser at `ip` (the socket's peer address, as uvicorn reports it)."""
    with TestClient(create_web_app(app, config=web_config(**config)), client=(ip, 40000)) as c:
        yield c


def attempt(client: TestClient, name: str, password: str, headers: dict[str, str] | None = None) -> int:
    page = client.get("/login", headers=headers)
    return client.post("/login", data={"csrf": csrf_of(page.text), "name": name, "password": password},
                       headers=headers, follow_redirects=False).status_code


def attempt_rows(app: App) -> list[tuple[str, str]]:
    with reading(app.engine) as session:
        rows = session.scalars(select(LoginAttemptRow).order_by(LoginAttemptRow.id))
        return [(r.address, r.name) for r in rows]


def login_ips(engine: Engine) -> list[str]:
    with reading(engine) as session:
        return [json.loads(d)["ip"] for d in session.scalars(
            select(AuditRow.detail).where(AuditRow.action == "user.login").order_by(AuditRow.id))]


def refused_to_login_page(client: TestClient, cookie: str) -> bool:
    """Whether a browser with (only) this session cookie, for client's app, is sent to log in."""
    with TestClient(client.app, client=(VICTIM, 40001)) as replay:
        replay.cookies.set(COOKIE, cookie)
        response = replay.get(f"/c/{SLUG}/", follow_redirects=False)
    return response.status_code == 303 and response.headers["location"].startswith("/login")


# --- limits in the database --------------------------------------------------------------------------

def test_thirty_parallel_wrong_passwords_are_checked_at_most_five_times(app: App) -> None:
    web = create_web_app(app, config=web_config())

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=web, client=(ATTACKER, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            csrf = csrf_of((await client.get("/login")).text)
            form = {"csrf": csrf, "name": "organizer", "password": "wrong password!"}
            responses = await asyncio.gather(*(client.post("/login", data=form) for _ in range(30)))
            return [r.status_code for r in responses]

    codes = asyncio.run(main())
    assert sorted(codes) == [401] * 5 + [429] * 25
    assert attempt_rows(app) == [(ATTACKER, "organizer")] * 5  # one row per password check


def test_the_limit_holds_across_two_instances_and_a_restart(app: App, database_url: str) -> None:
    other = App(settings=app.settings, engine=make_engine(database_url), campaigns=app.campaigns)
    try:
        with client_at(app, ATTACKER) as first, client_at(other, ATTACKER) as second:
            for client in (first, second, first, second, first):
                assert attempt(client, "organizer", "wrong password!") == 401
            assert attempt(second, "organizer", PASSWORD) == 429
            assert attempt(first, "organizer", PASSWORD) == 429
        with client_at(other, ATTACKER) as restarted:
            response = restarted.post("/login", data={"csrf": csrf_of(restarted.get("/login").text),
                                                      "name": "organizer", "password": PASSWORD})
            assert response.status_code == 429 and 0 < int(response.headers["retry-after"]) <= 60
            assert re.search(r"Try again in (1 minute|\d+ seconds?)\.", response.text)
    finally:
        other.close()


def test_a_name_locked_from_an_attackers_address_still_logs_in_from_another(app: App) -> None:
    web = create_web_app(app, config=web_config())
    with TestClient(web, client=(ATTACKER, 1)) as attacker, TestClient(web, client=(VICTIM, 2)) as victim:
        codes = [attempt(attacker, "organizer", "wrong password!") for _ in range(10)]
        assert codes == [401] * 5 + [429] * 5
        assert attempt(attacker, "organizer", PASSWORD) == 429
        login(victim)
        assert victim.get(f"/c/{SLUG}/").status_code == 200
        assert attempt(attacker, "organizer", PASSWORD) == 429  # still locked, for the attacker only
    assert login_ips(app.engine) == [VICTIM]


def test_the_wait_doubles_and_passes(app: App) -> None:
    now = [NOW]
    with client_at(app, ATTACKER) as client:
        client.app.state.web.clock = lambda: now[0]  # type: ignore[attr-defined]
        for _ in range(5):
            assert attempt(client, "organizer", "wrong password!") == 401
        for wait in (60, 120, 240):
            assert attempt(client, "organizer", PASSWORD) == 429
            now[0] += timedelta(seconds=wait)
            assert attempt(client, "organizer", "wrong password!") == 401
        now[0] += timedelta(seconds=480)
        login(client)
    assert attempt_rows(app) == []  # the login cleared the pair's failures


def test_one_address_trying_many_names_is_limited_for_every_name(app: App) -> None:
    web = create_web_app(app, config=web_config())
    with TestClient(web, client=(ATTACKER, 1)) as attacker, TestClient(web, client=(VICTIM, 2)) as victim:
        for i in range(20):
            assert attempt(attacker, f"guess{i}", "wrong password!") == 401
        assert attempt(attacker, "organizer", PASSWORD) == 429
        login(victim)


def test_an_ipv6_client_cannot_escape_the_limit_by_changing_its_interface_id(app: App) -> None:
    for i in range(5):
        with client_at(app, f"2001:db8:0:42::{i + 1:x}") as client:
            assert attempt(client, "organizer", "wrong password!") == 401
    with client_at(app, "2001:db8:0:42:dead:beef::1") as client:
        assert attempt(client, "organizer", PASSWORD) == 429
    with client_at(app, "2001:db8:0:43::1") as client:
        login(client)


# --- forwarded headers -------------------------------------------------------------------------------

TRUSTED = (ipaddress.ip_network("127.0.0.1/32"),)


def test_forwarded_for_is_ignored_from_an_untrusted_peer(app: App) -> None:
    with client_at(app, "127.0.0.1") as client:
        for i in range(5):
            assert attempt(client, "organizer", "wrong password!", {"x-forwarded-for": f"192.0.2.{i}"}) == 401
        assert attempt(client, "organizer", PASSWORD, {"x-forwarded-for": "192.0.2.200"}) == 429
    assert attempt_rows(app) == [("127.0.0.1", "organizer")] * 5


def test_a_trusted_proxys_own_forwarded_for_line_wins_over_the_clients(app: App) -> None:
    """A client's X-Forwarded-For line comes first; the line the proxy adds, last."""
    with client_at(app, "127.0.0.1", trusted_proxies=TRUSTED) as client:
        page = client.get("/login")
        response = client.post("/login", data={"csrf": csrf_of(page.text), "name": "organizer",
                                               "password": PASSWORD},
                               headers=[("x-forwarded-for", "192.0.2.1"), ("x-forwarded-for", VICTIM)],
                               follow_redirects=False)
        assert response.status_code == 303
        assert attempt(client, "x", "wrong password!", {"x-forwarded-for": "not-an-address"}) == 401
        assert attempt(client, "x", "wrong password!", {"x-forwarded-for": f"{ATTACKER}, 127.0.0.1"}) == 401
    assert login_ips(app.engine) == [VICTIM]
    assert attempt_rows(app) == [("127.0.0.1", "x"), (ATTACKER, "x")]


@contextmanager
def served(tmp_path: Path, **env: str) -> Iterator[tuple[str, Engine]]:
    """`petition-delivery serve` on loopback, with one organizer, on a SQLite database."""
    home = make_home(tmp_path / "home", thresholds=[100])
    clock = tmp_path / "clock"
    set_clock(clock, WED_NOON)
    service = service_env(home, f"sqlite:///{tmp_path / 'delivery.sqlite3'}", clock,
                          DELIVERY_SECRET_KEY="k" * 40, **env)
    init_database(service).dispose()
    organizers = open_app(load_settings(service))
    try:
        accounts.add_user(organizers, "organizer", PASSWORD, now=datetime.now(UTC), actor="cli:tester")
        with serving(service, tmp_path / "serve.log") as child:
            yield f"http://127.0.0.1:{child.port}", organizers.engine
    finally:
        organizers.close()


def http_login(base: str, password: str, headers: dict[str, str]) -> tuple[httpx.Response, httpx.Response]:
    """(the login page, the login's answer), the cookie carried by hand (a Secure one too)."""
    page = httpx.get(f"{base}/login", headers=headers, timeout=10)
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    cookie = page.headers["set-cookie"].split(";")[0]
    answer = httpx.post(f"{base}/login", data={"csrf": match.group(1), "name": "organizer",
                                               "password": password},
                        headers={**headers, "cookie": cookie}, timeout=10)
    return page, answer


def test_under_serve_forwarded_headers_from_loopback_are_ignored_without_trusted_proxies(
        tmp_path: Path) -> None:
    spoofed = {"x-forwarded-for": "192.0.2.99", "x-forwarded-proto": "https"}
    with served(tmp_path) as (base, engine):
        page, answer = http_login(base, PASSWORD, spoofed)
        assert answer.status_code == 303, answer.text
        for response in (page, answer):
            assert "Secure" not in response.headers["set-cookie"]
            assert "strict-transport-security" not in response.headers
        assert login_ips(engine) == ["127.0.0.1"]
        codes = [http_login(base, "wrong password!", {**spoofed, "x-forwarded-for": f"192.0.2.{i}"})[1]
                 .status_code for i in range(6)]
        assert codes == [401] * 5 + [429]
        with reading(engine) as session:
            assert set(session.scalars(select(LoginAttemptRow.address))) == {"127.0.0.1"}


def test_under_serve_forwarded_headers_from_a_trusted_proxy_are_believed(tmp_path: Path) -> None:
    forwarded = {"x-forwarded-for": f"192.0.2.1, {VICTIM}", "x-forwarded-proto": "https"}
    with served(tmp_path, DELIVERY_TRUSTED_PROXIES="127.0.0.1/32") as (base, engine):
        page, answer = http_login(base, PASSWORD, forwarded)
        assert answer.status_code == 303, answer.text
        for response in (page, answer):
            assert "Secure" in response.headers["set-cookie"]
            assert response.headers["strict-transport-security"] == "max-age=31536000"
        assert login_ips(engine) == [VICTIM]


# --- sessions that end -------------------------------------------------------------------------------

def test_after_logout_the_old_cookie_is_refused(app: App) -> None:
    with client_at(app, VICTIM) as client, client_at(app, ATTACKER) as other_browser:
        login(other_browser)
        csrf = login(client)
        old = client.cookies[COOKIE]
        assert not refused_to_login_page(client, old)
        assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
        assert refused_to_login_page(client, old)
        # every session of that organizer ends, the other browser's too
        assert other_browser.get(f"/c/{SLUG}/", follow_redirects=False).status_code == 303
    with reading(app.engine) as session:
        logouts = list(session.execute(select(AuditRow.actor, AuditRow.detail)
                                       .where(AuditRow.action == "user.logout")))
    assert logouts == [("web:organizer", json.dumps({"ip": VICTIM}))]


def test_after_a_password_change_the_old_cookie_is_refused(app: App) -> None:
    with client_at(app, VICTIM) as client:
        login(client)
        old = client.cookies[COOKIE]
        assert not refused_to_login_page(client, old)
        accounts.add_user(app, "organizer", "a brand new password", now=NOW, actor="cli:tester", replace=True)
        assert refused_to_login_page(client, old)
        login(client, password="a brand new password")
        assert client.cookies[COOKIE] != old


def test_a_removed_and_recreated_user_does_not_inherit_the_old_cookie(app: App) -> None:
    with client_at(app, VICTIM) as client:
        login(client)
        old = client.cookies[COOKIE]
        assert not refused_to_login_page(client, old)
        accounts.remove_user(app, "organizer", now=NOW, actor="cli:tester")
        add_user(app)
        assert refused_to_login_page(client, old)
        login(client)  # the new user's own session ...
        assert refused_to_login_page(client, old)  # ... does not revive the old cookie
