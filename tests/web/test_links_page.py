"""The download page over HTTP (Starlette's test client), on SQLite and PostgreSQL: in the
recipient's language, never cached, nothing recorded on GET, files only by POST."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from starlette.testclient import TestClient

from delivery.services.app import App
from delivery.storage.db import transaction
from delivery.storage.models import DownloadRow
from delivery.web import create_web_app
from tests.services.test_deliveries import campaign_toml
from tests.services.test_links import MIGRATION, PUBLIC, delivered, token_of
from tests.support.smtpd import SmtpServer
from tests.web.test_web import web_config

AppFactory = Callable[..., App]


def test_an_armenian_recipients_page_is_in_armenian_and_gives_files_only_to_a_post(
        make_app: AppFactory, smtp_server: SmtpServer) -> None:
    toml = campaign_toml().replace(f'email = "{MIGRATION}"', f'email = "{MIGRATION}"\ndelivery = "link"', 1)
    app = make_app({**smtp_server.env(), "DELIVERY_PUBLIC_URL": PUBLIC}, toml)
    _, mails = delivered(app, smtp_server)
    token = token_of(mails[MIGRATION])
    with TestClient(create_web_app(app, config=web_config())) as client:
        page = client.get(f"/d/{token}")
        assert page.status_code == 200 and '<html lang="hy">' in page.text
        assert "Ներբեռնել բոլոր ֆայլերը" in page.text and "Download" not in page.text
        assert page.headers["cache-control"] == "no-store" and "noindex" in page.headers["x-robots-tag"]
        assert "set-cookie" not in page.headers  # a recipient gets no session
        assert client.get(f"/d/{token}/files/manifest.json").status_code == 405  # GET gives no file
        with transaction(app.engine) as session:
            assert session.scalar(select(func.count()).select_from(DownloadRow)) == 0
        got = client.post(f"/d/{token}/files/manifest.json")
        assert got.status_code == 200 and got.headers["content-disposition"].startswith("attachment")
        assert got.content.startswith(b"{")
        wrong = client.get(f"/d/{token[:-2]}xx")
        assert wrong.status_code == 404 and "This link is not valid" in wrong.text
        received = client.post(f"/d/{token}/received", follow_redirects=False)
        assert received.status_code == 303 and received.headers["location"] == f"/d/{token}?acknowledged=1"
        assert "Ստացումը հաստատված է" in client.get(received.headers["location"]).text
