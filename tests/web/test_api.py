"""The JSON API: bearer tokens, idempotent signatures through intake's validation, the read
endpoints, and 4xx (never 5xx) for every bad request; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from delivery.services import accounts, deliveries
from delivery.services.app import App
from delivery.storage.db import transaction
from delivery.storage.models import AuditRow, SignerRow
from delivery.web import create_web_app
from tests.web.test_web import NOW, SLUG, _gc_after, add_signers, make_app, web_config

__all__ = ["_gc_after"]
BASE = f"/api/v1/campaigns/{SLUG}"
SIGNATURE = {"name": "Lilit Hakobyan", "email": "lilit@example.net", "city": "Vanadzor", "country": "Armenia",
             "consent": True}


def make_token(app: App, name: str = "site", slug: str | None = None) -> str:
    return accounts.add_token(app, name, campaign=app.campaigns[slug] if slug else None, now=NOW,
                              actor="cli:tester")


@pytest.fixture
def app(engine: Any, tmp_path: Any) -> App:
    app = make_app(engine, tmp_path, slugs=(SLUG, "other-petition"))
    add_signers(app)
    return app


@pytest.fixture
def token(app: App) -> str:
    return make_token(app)


@pytest.fixture
def client(app: App, token: str) -> Iterator[TestClient]:
    with TestClient(create_web_app(app, config=web_config()),
                    headers={"authorization": f"Bearer {token}"}) as c:
        yield c


def signer_rows(app: App) -> int:
    with transaction(app.engine) as session:
        return session.scalar(select(func.count()).select_from(SignerRow)) or 0


def test_a_signature_posted_twice_is_stored_once(app: App, client: TestClient) -> None:
    first = client.post(f"{BASE}/signatures", json=SIGNATURE)
    assert first.status_code == 201 and first.json() == {"stored": True, "duplicate": False, "signers": 5}
    same = {**SIGNATURE, "email": "  LILIT@example.NET", "name": "L. H."}
    again = client.post(f"{BASE}/signatures", json=same)
    assert again.status_code == 200 and again.json() == {"stored": False, "duplicate": True, "signers": 5}
    assert signer_rows(app) == 5
    with transaction(app.engine) as session:
        row = session.scalars(select(SignerRow).where(SignerRow.name == "Lilit Hakobyan")).one()
        audits = session.scalars(select(AuditRow).where(AuditRow.action == "signers.add")).all()
    assert row.source == "api:site" and row.consent is True and row.country == "Armenia"
    assert [a.actor for a in audits] == ["api:site"]


def test_the_same_email_in_another_campaign_is_another_signature(app: App, client: TestClient) -> None:
    assert client.post(f"{BASE}/signatures", json=SIGNATURE).status_code == 201
    assert client.post("/api/v1/campaigns/other-petition/signatures", json=SIGNATURE).status_code == 201


def test_consent_false_and_signed_at_are_kept(app: App, client: TestClient) -> None:
    signed = (NOW - timedelta(days=2)).isoformat()
    body = {**SIGNATURE, "consent": False, "signed_at": signed}
    assert client.post(f"{BASE}/signatures", json=body).status_code == 201
    with transaction(app.engine) as session:
        row = session.scalars(select(SignerRow).where(SignerRow.name == "Lilit Hakobyan")).one()
    assert row.consent is False and row.signed_at == NOW - timedelta(days=2)


@pytest.mark.parametrize(("body", "status", "words"), [
    ({k: v for k, v in SIGNATURE.items() if k != "email"}, 422, "'email' is required"),
    ({**SIGNATURE, "email": "   "}, 422, "'email' is required"),
    ({**SIGNATURE, "email": "not-an-address"}, 422, "invalid e-mail"),
    ({**SIGNATURE, "name": ""}, 422, "name"),
    ({**SIGNATURE, "name": "\u202e\u0007"}, 422, "name"),
    ({**SIGNATURE, "name": 12}, 422, "'name' must be a string"),
    ({**SIGNATURE, "consent": "perhaps"}, 422, "'consent' must be true or false"),
    ({**SIGNATURE, "signed_at": "2999-01-01T00:00:00Z"}, 422, "future"),
    ({**SIGNATURE, "signed_at": "yesterday-ish"}, 422, "unreadable date"),
    ({**SIGNATURE, "phone": "123"}, 422, "unknown field 'phone'"),
    ({**SIGNATURE, "\udc00": "x"}, 422, "unknown field '\\udc00'"),
    ([SIGNATURE], 422, "must be a JSON object"),
    ({**SIGNATURE, "city": "c" * 101}, 422, "'city' must be"),
    ({**SIGNATURE, "country": "\ud800"}, 422, "not valid Unicode"),
    ({**SIGNATURE, "signed_at": "0001-01-01T00:00:00+14:00"}, 422, "out of range"),
    ({**SIGNATURE, "signed_at": "9999-12-31T23:59:59-12:00"}, 422, ""),
])
def test_invalid_signatures_get_a_4xx_with_a_reason(app: App, client: TestClient, body: object, status: int,
                                                    words: str) -> None:
    response = client.post(f"{BASE}/signatures", content=json.dumps(body).encode(),  # ASCII: \ud800 escaped
                           headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert signer_rows(app) == 4


def test_bad_json_wrong_type_and_oversize_bodies(app: App, client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    bad = client.post(f"{BASE}/signatures", content=b'{"name": ', headers=headers)
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
    assert client.post(f"{BASE}/signatures", content=b"\xff\xfe", headers=headers).status_code == 400
    long_number = client.post(f"{BASE}/signatures", content=b'{"name": ' + b"9" * 5000 + b"}",
                              headers=headers)
    assert long_number.status_code == 400 and "number too long" in long_number.json()["error"]
    deep = client.post(f"{BASE}/signatures", content=b"[" * 30000 + b"]" * 30000, headers=headers)
    assert deep.status_code == 400
    form = client.post(f"{BASE}/signatures", data=SIGNATURE)
    assert form.status_code == 415 and "application/json" in form.json()["error"]
    assert client.post(f"{BASE}/signatures", content=json.dumps(SIGNATURE)).status_code == 415
    odd_length = client.post(f"{BASE}/signatures", content=b"{}",
                             headers={**headers, "content-length": "-1"})
    assert odd_length.status_code == 400
    big = {**SIGNATURE, "name": "x" * 70_000}
    assert client.post(f"{BASE}/signatures", json=big).status_code == 413

    def chunked() -> Iterator[bytes]:
        for _ in range(70):
            yield b" " * 1024

    streamed = client.post(f"{BASE}/signatures", content=chunked(), headers=headers)
    assert streamed.status_code == 413
    assert signer_rows(app) == 4


def test_charset_parameter_is_accepted(client: TestClient) -> None:
    response = client.post(f"{BASE}/signatures", content=json.dumps(SIGNATURE).encode(),
                           headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 201


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer pd_unknown-token", "Basic dXNlcjpwYXNz",
                                    "Bearer " + "pd_" + "x" * 300])
def test_missing_or_unknown_token_gets_401(app: App, header: str | None) -> None:
    headers = {"authorization": header} if header else {}
    with TestClient(create_web_app(app, config=web_config()), headers=headers) as c:
        for method, path in (("post", "/signatures"), ("get", "/status"), ("get", "/milestones"),
                             ("get", "/deliveries")):
            response = c.request(method.upper(), BASE + path, json=SIGNATURE if method == "post" else None)
            assert response.status_code == 401, (header, path)
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert signer_rows(app) == 4


def test_a_revoked_token_gets_401(app: App, client: TestClient) -> None:
    assert client.get(f"{BASE}/status").status_code == 200
    assert accounts.revoke_token(app, "site", now=NOW, actor="cli:tester")
    assert client.get(f"{BASE}/status").status_code == 401
    assert client.post(f"{BASE}/signatures", json=SIGNATURE).status_code == 401
    assert signer_rows(app) == 4


def test_a_campaign_token_works_only_for_its_campaign(app: App) -> None:
    scoped = make_token(app, "scoped", slug="other-petition")
    headers = {"authorization": f"Bearer {scoped}"}
    with TestClient(create_web_app(app, config=web_config()), headers=headers) as c:
        assert c.get(f"{BASE}/status").status_code == 403
        assert c.post(f"{BASE}/signatures", json=SIGNATURE).status_code == 403
        assert c.get("/api/v1/campaigns/other-petition/status").status_code == 200
    assert signer_rows(app) == 4


def test_unknown_campaign_and_route_are_json_404s(client: TestClient) -> None:
    response = client.get("/api/v1/campaigns/nope/status")
    assert response.status_code == 404 and response.json() == {"error": "no such campaign"}
    assert client.get("/api/v1/nothing-here").json()["error"]
    wrong = client.put(f"{BASE}/status")
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_status_milestones_and_deliveries(app: App, client: TestClient) -> None:
    status = client.get(f"{BASE}/status").json()
    assert status["signers"] == 4 and status["goal"] == 80000 and status["next_milestone"] == 10
    assert {"country": "Armenia", "signers": 2} in status["top_countries"]
    _, reached, public_id = deliveries.detect_milestones(app, app.campaigns[SLUG], now=NOW)
    assert reached == [3]
    milestones = client.get(f"{BASE}/milestones").json()
    assert milestones["milestones"][0] == {"threshold": 3, "reached": True, "reached_at": NOW.isoformat(),
                                           "delivery": public_id}
    assert [m["reached"] for m in milestones["milestones"]] == [True, False, False]
    listed = client.get(f"{BASE}/deliveries", params={"limit": 5}).json()["deliveries"]
    assert [d["id"] for d in listed] == [public_id]
    assert listed[0]["status"] == "held" and listed[0]["signer_count"] == 4
    for bad in ("0", "101", "x", "-1", "1e3", "²", "①", "٣", "9" * 5000):
        response = client.get(f"{BASE}/deliveries", params={"limit": bad})
        assert response.status_code == 400 and response.json()["field"] == "limit"


def test_api_output_has_no_signer_email(app: App, client: TestClient) -> None:
    client.post(f"{BASE}/signatures", json=SIGNATURE)
    deliveries.detect_milestones(app, app.campaigns[SLUG], now=NOW)
    for path in ("/status", "/milestones", "/deliveries"):
        assert "example.net" not in client.get(BASE + path).text


def test_openapi_document(client: TestClient) -> None:
    doc = TestClient(client.app).get("/api/v1/openapi.json").json()  # served without a token
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {f"/api/v1/campaigns/{{slug}}/{p}"
                                 for p in ("signatures", "status", "milestones", "deliveries")}
    responses = doc["paths"]["/api/v1/campaigns/{slug}/signatures"]["post"]["responses"]
    assert {"200", "201", "400", "401", "403", "404", "413", "415", "422"} <= set(responses)
