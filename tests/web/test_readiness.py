"""The dashboard's readiness panel (delivery.services.readiness), on SQLite and PostgreSQL: what
stands between a campaign and a real delivery, each line saying what to do, in the organizer's
language."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from delivery.campaigns.config import parse_campaign
from delivery.services import readiness
from delivery.services.app import App
from delivery.web import create_web_app
from delivery.web.pages import exact_duration
from tests.support.campaigns import campaign_file
from tests.support.pdfs import make_cert, write_pem
from tests.web.test_web import SLUG, add_user, campaign_toml, login, make_app, web_config

NOW = datetime.now(UTC)
REPO = Path(__file__).resolve().parents[2]


def codes(app: App) -> list[tuple[str, str]]:
    return [(f.code, f.severity) for f in readiness.readiness(app, app.campaigns[SLUG], now=NOW)]


def real_recipients(toml: str) -> str:
    return toml.replace("@example.org", "@gov.am")


@pytest.mark.parametrize(("address", "reserved"), [
    ("pm@example.org", True), ("pm@EXAMPLE.COM", True), ("a@office.example", True),
    ("a@mail.test", True), ("a@x.invalid", True), ("a@localhost", True),
    ("a@sub.example.net", True), ("info@gov.am", False), ("a@examples.org", False),
    ("a@example.org.am", False)])
def test_reserved_domains_are_those_of_rfc_2606_and_6761(address: str, reserved: bool) -> None:
    assert readiness.reserved_domain(address) is reserved


def test_the_shipped_placeholders_and_the_outbox_folder_are_found_errors_first(
        engine: Engine, tmp_path: Path) -> None:
    app = make_app(engine, tmp_path)
    assert codes(app) == [("reserved_recipients", "error"), ("no_smtp", "warning"),
                          ("milestone_held", "info")]
    [reserved] = readiness.readiness(app, app.campaigns[SLUG], now=NOW)[:1]
    assert reserved.facts == {"addresses": "prime-minister@example.org, "
                                           "migration-service@example.org"}


def test_a_campaign_with_real_recipients_smtp_and_no_hold_is_ready(engine: Engine,
                                                                   tmp_path: Path) -> None:
    app = make_app(engine, tmp_path, {"DELIVERY_SMTP_HOST": "127.0.0.1"})
    app.campaigns[SLUG] = parse_campaign(real_recipients(campaign_toml(hold="0s")), "x.toml")
    assert codes(app) == []


@pytest.mark.parametrize(("days_left", "expected"), [
    (10, [("signing_key_expires", "warning")]), (90, []), (None, [("no_signing_key", "error")])])
def test_the_signing_key_is_checked_when_the_campaign_requires_signing(
        engine: Engine, tmp_path: Path, days_left: int | None,
        expected: list[tuple[str, str]]) -> None:
    env = {"DELIVERY_SMTP_HOST": "127.0.0.1"}
    if days_left is not None:
        key, cert = make_cert("Campaign", not_before=NOW - timedelta(days=300),
                              not_after=NOW + timedelta(days=days_left))
        key_path, cert_path = write_pem(tmp_path / "keys", "c", key, cert)
        env |= {"DELIVERY_SIGNING_KEY": str(key_path), "DELIVERY_SIGNING_CERT": str(cert_path)}
    app = make_app(engine, tmp_path, env)
    plain = parse_campaign(real_recipients(campaign_toml(hold="0s")), "x.toml")
    app.campaigns[SLUG] = dataclasses.replace(plain, signing="required")
    assert codes(app) == expected


def test_an_unusable_signing_key_is_an_error_naming_why(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("not a key")
    app = make_app(engine, tmp_path, {"DELIVERY_SMTP_HOST": "127.0.0.1",
                                      "DELIVERY_SIGNING_KEY": str(tmp_path / "key.pem"),
                                      "DELIVERY_SIGNING_CERT": str(tmp_path / "key.pem")})
    plain = parse_campaign(real_recipients(campaign_toml(hold="0s")), "x.toml")
    app.campaigns[SLUG] = dataclasses.replace(plain, signing="required")
    [finding] = readiness.readiness(app, app.campaigns[SLUG], now=NOW)
    assert finding.code == "signing_key_unusable" and finding.facts["reason"]


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    app = make_app(engine, tmp_path)
    add_user(app)
    with TestClient(create_web_app(app, config=web_config())) as client:
        yield client


def test_the_dashboard_lists_each_finding_with_what_to_do(client: TestClient,
                                                          tmp_path: Path) -> None:
    login(client)
    page = client.get(f"/c/{SLUG}/").text
    assert "Before a real delivery" in page
    assert ('<li class="finding error">Recipients on example addresses, which reach no one: '
            "prime-minister@example.org, migration-service@example.org. An owner puts the "
            "offices&#39; real addresses on the Settings page.</li>") in page
    assert f"e-mails are written to the folder {tmp_path / 'outbox'} and reach no one" in page
    assert "waits 2 hours (the hold) before it goes out" in page
    russian = client.get(f"/c/{SLUG}/", headers={"Accept-Language": "ru"}).text
    assert "Перед настоящей отправкой" in russian and "Нет SMTP-сервера" in russian
    assert "ждёт 2 часа (выдержка)" in russian
    assert "No SMTP server" not in russian


def test_a_ready_campaigns_dashboard_says_so(engine: Engine, tmp_path: Path) -> None:
    app = make_app(engine, tmp_path, {"DELIVERY_SMTP_HOST": "127.0.0.1"})
    app.campaigns[SLUG] = parse_campaign(real_recipients(campaign_toml(hold="0s")), "x.toml")
    add_user(app)
    with TestClient(create_web_app(app, config=web_config())) as client:
        login(client)
        page = client.get(f"/c/{SLUG}/").text
    assert '<p class="finding ok">Ready: real recipients, a signing key and an SMTP server' in page
    assert 'class="finding error"' not in page


def test_a_letter_removed_after_start_is_an_error_naming_it(engine: Engine, tmp_path: Path) -> None:
    app = make_app(engine, tmp_path, {"DELIVERY_SMTP_HOST": "127.0.0.1"})
    campaign = parse_campaign(real_recipients(campaign_file(
        slug=SLUG, title="T", goal=100, signing="off", hold="0s", thresholds="[10]",
        check_every="5m", second_language="hy")), "x.toml")
    app.campaigns[SLUG] = campaign
    assert codes(app) == []
    shutil.copytree(REPO / "templates", tmp_path / "templates")  # the installation's own folder now
    assert codes(app) == []
    (tmp_path / "templates" / "letters" / "salman-mukaev" / "hy.html.j2").unlink()
    [finding] = readiness.readiness(app, campaign, now=NOW)
    assert (finding.code, finding.severity, finding.facts["languages"]) == ("texts_missing", "error", "hy")
    assert "hy.html.j2" in finding.facts["what"]
    add_user(app)
    with TestClient(create_web_app(app, config=web_config())) as client:
        login(client)
        page = client.get(f"/c/{SLUG}/").text
    assert '<li class="finding error">Texts in hy are missing or broken (' in page
    assert "hy.html.j2" in page


@pytest.mark.parametrize(("seconds", "locale", "shown"), [
    (7200, "en_GB", "2 hours"), (5400, "en_GB", "90 minutes"), (129600, "ru", "36 часов"),
    (172800, "hy", "2 օր")])
def test_a_hold_is_written_exactly_in_the_pages_language(seconds: int, locale: str,
                                                         shown: str) -> None:
    assert exact_duration(seconds, locale) == shown


def test_a_link_recipient_without_a_public_address_is_an_error_until_it_is_set(
        engine: Engine, tmp_path: Path) -> None:
    toml = real_recipients(campaign_toml(hold="0s")).replace(
        'email = "prime-minister@gov.am"', 'email = "prime-minister@gov.am"\ndelivery = "link"', 1)
    app = make_app(engine, tmp_path, {"DELIVERY_SMTP_HOST": "127.0.0.1"})
    app.campaigns[SLUG] = parse_campaign(toml, "x.toml")
    assert codes(app) == [("link_needs_public_url", "error")]
    assert readiness.readiness(app, app.campaigns[SLUG], now=NOW)[0].facts == {
        "addresses": "prime-minister@gov.am"}
    app = make_app(engine, tmp_path, {"DELIVERY_SMTP_HOST": "127.0.0.1",
                                      "DELIVERY_PUBLIC_URL": "https://petition.example.net"})
    app.campaigns[SLUG] = parse_campaign(toml, "x.toml")
    assert codes(app) == []
