"""Shared fixtures: every database test runs on SQLite and on PostgreSQL; mail goes to a real
aiosmtpd server on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from delivery.storage.db import make_engine, transaction, upgrade_schema
from delivery.storage.models import Base, CampaignRow
from tests.support.smtpd import SmtpServer

PG_ADMIN_URL = os.environ.get("DELIVERY_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of our own for this test run, dropped at the end. PostgreSQL is required."""
    name = f"petition_delivery_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the suite must not pass silently without PostgreSQL
        pytest.exit(f"PostgreSQL is required for the tests ({PG_ADMIN_URL}): {exc}", returncode=3)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'delivery.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def signing_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed campaign key and certificate, made once per test run, valid from 2026-01-01
    so that tests may run the service on fixed dates of this year."""
    from datetime import UTC, datetime

    from delivery.bundle.sign import ensure_demo_identity

    return ensure_demo_identity(tmp_path_factory.mktemp("signing"), "Test campaign",
                                now=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
def make_app(engine: Engine, tmp_path: Path, signing_files: tuple[Path, Path]):  # type: ignore[no-untyped-def]
    """Builds an App on the test database; campaign files may be overridden per test."""
    from delivery.campaigns.config import load_campaigns, parse_campaign
    from delivery.services.app import App, init
    from delivery.settings import load_settings

    apps = []

    def factory(env: dict[str, str] | None = None, campaign_toml: str | None = None):  # type: ignore[no-untyped-def]
        key, cert = signing_files
        settings = load_settings({
            "DELIVERY_HOME": str(REPO), "DELIVERY_VAR_DIR": str(tmp_path / "var"),
            "DELIVERY_DATABASE_URL": str(engine.url.render_as_string(hide_password=False)),
            "DELIVERY_OUTBOX_DIR": str(tmp_path / "outbox"),
            "DELIVERY_SIGNING_KEY": str(key), "DELIVERY_SIGNING_CERT": str(cert),
            **(env or {})})
        if campaign_toml is None:
            campaigns = load_campaigns(REPO / "schedules")
        else:
            campaign = parse_campaign(campaign_toml, "test.toml")
            campaigns = {campaign.slug: campaign}
        app = App(settings=settings, engine=engine, campaigns=campaigns)
        init(app)
        apps.append(app)
        return app

    return factory


@pytest.fixture
def campaign_id(engine: Engine) -> int:
    """A campaign row of its own (slug "test") for tests of the stages below the services."""
    with transaction(engine) as session:
        campaign = CampaignRow(slug="test", title="Test", goal=100,
                               created_at=datetime(2026, 11, 1, tzinfo=UTC))
        session.add(campaign)
        session.flush()
        return campaign.id
