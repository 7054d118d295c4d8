"""The web admin's Send now makes one delivery per confirmation: a double click (two posts at the
same moment) or a replay of the post, even with the session cookie it was first sent with, lands on
the first delivery and sends nothing more; on SQLite and PostgreSQL, real rendering and SMTP."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from delivery.services.app import App
from delivery.storage.db import reading
from delivery.storage.models import DeliveryRow
from delivery.web import create_web_app
from delivery.web.middleware import COOKIE
from tests.support.smtpd import SmtpServer
from tests.web.test_web import SLUG, add_signers, add_user, audit_actions, login, make_app, web_config

TO = "prime-minister@example.org"


@pytest.fixture
def app(engine: Engine, tmp_path: Path, smtp_server: SmtpServer) -> App:
    app = make_app(engine, tmp_path, extra_env=smtp_server.env())
    add_signers(app)
    add_user(app)
    add_user(app, "other")
    return app


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(create_web_app(app, config=web_config())) as c:
        yield c
        c.app.state.web.jobs.join_all(timeout=180)  # type: ignore[attr-defined]


def confirmation(client: TestClient, to: str = TO) -> dict[str, str]:
    """The confirmation form the review step shows, as the browser would post it."""
    csrf = login(client)
    review = client.post(f"/c/{SLUG}/send", data={"csrf": csrf, "to": to, "step": "review"})
    assert review.status_code == 200 and "Confirm sending" in review.text
    nonce = re.search(r'name="nonce" value="([^"]+)"', review.text)
    assert nonce
    return {"csrf": csrf, "to": to, "step": "confirm", "nonce": nonce.group(1)}


def post_as(client: TestClient, cookie: str, form: dict[str, str]) -> httpx2.Response:
    """The confirmation posted with the session cookie `cookie`, as a replayed request carries it."""
    return client.post(f"/c/{SLUG}/send", data=form, headers={"cookie": f"{COOKIE}={cookie}"},
                       follow_redirects=False)


def delivery_path(response: httpx2.Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(f"/c/{SLUG}/deliveries/"), location
    return location.split("?")[0]


def delivery_count(app: App) -> int:
    with reading(app.engine) as session:
        return len(list(session.scalars(select(DeliveryRow.id))))


def wait_for_jobs(client: TestClient) -> None:
    client.app.state.web.jobs.join_all(timeout=180)  # type: ignore[attr-defined]


def test_two_confirmations_at_once_make_one_delivery(app: App, client: TestClient,
                                                     smtp_server: SmtpServer) -> None:
    form = confirmation(client)
    cookie = client.cookies[COOKIE]
    barrier = threading.Barrier(2)
    responses: list[httpx2.Response] = []

    def click() -> None:
        barrier.wait()
        responses.append(post_as(client, cookie, form))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(responses) == 2
    paths = {delivery_path(r) for r in responses}
    assert len(paths) == 1 and delivery_count(app) == 1
    wait_for_jobs(client)
    done = client.get(paths.pop())
    assert '<span class="state done">done</span>' in done.text
    assert [r.rcpt_tos for r in smtp_server.received] == [[TO]]
    actions = [a for _, a in audit_actions(app) if a.startswith("delivery.")]
    assert actions == ["delivery.create", "delivery.create_replayed"]


def test_a_replayed_confirmation_lands_on_the_first_delivery(app: App, client: TestClient,
                                                             smtp_server: SmtpServer) -> None:
    form = confirmation(client)
    cookie = client.cookies[COOKIE]  # the request exactly as the browser first sent it
    first = post_as(client, cookie, form)
    path = delivery_path(first)
    wait_for_jobs(client)
    assert '<span class="state done">done</span>' in client.get(path).text
    for _ in range(3):
        assert delivery_path(post_as(client, cookie, form)) == path
    again = client.post(f"/c/{SLUG}/send", data=form)  # with the session as it is now
    assert again.url.path == path and "nothing was sent twice" in again.text
    wait_for_jobs(client)
    assert delivery_count(app) == 1
    assert [r.rcpt_tos for r in smtp_server.received] == [[TO]]
    actions = [a for _, a in audit_actions(app) if a.startswith("delivery.")]
    assert actions == ["delivery.create"] + ["delivery.create_replayed"] * 4


def test_a_replay_while_the_first_is_sending_shows_its_job(app: App, client: TestClient) -> None:
    form = confirmation(client)
    first = client.post(f"/c/{SLUG}/send", data=form, follow_redirects=False)
    second = client.post(f"/c/{SLUG}/send", data=form, follow_redirects=False)
    assert second.headers["location"] == first.headers["location"]
    assert "?job=" in first.headers["location"]
    wait_for_jobs(client)
    assert delivery_count(app) == 1


def test_a_key_is_good_only_for_its_session_and_recipients(app: App, client: TestClient) -> None:
    form = confirmation(client)
    # Other recipients than the ones confirmed, under the same key.
    tampered = client.post(f"/c/{SLUG}/send", data={**form, "to": "migration-service@example.org"})
    assert "has expired" in tampered.text
    forged = client.post(f"/c/{SLUG}/send", data={**form, "nonce": "A" * 24 + "." + "0" * 64})
    assert "has expired" in forged.text
    # Another organizer's session cannot use (or block) this confirmation's key.
    other = TestClient(client.app)  # no lifespan of its own: ending it would close the app's jobs
    stolen = other.post(f"/c/{SLUG}/send", data={**form, "csrf": login(other, "other")})
    assert "has expired" in stolen.text
    assert delivery_count(app) == 0
    made = client.post(f"/c/{SLUG}/send", data=form, follow_redirects=False)
    assert delivery_path(made) and delivery_count(app) == 1
