"""JSON requests with a bearer token → signatures stored (via intake, like the CSV import) and
the campaign's status, milestones and deliveries as JSON. Every error is a 4xx with a reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from delivery.campaigns.config import Campaign
from delivery.campaigns.milestones import next_milestone
from delivery.errors import RowRejected
from delivery.services import accounts, reports, signers
from delivery.services.accounts import TokenInfo
from delivery.services.signers import Added
from delivery.web.common import WebState, blocking, state
from delivery.web.openapi import SCHEMAS, document

Handler = Callable[[Request, Campaign, TokenInfo], Awaitable[Response]]
FIELDS = SCHEMAS["SignatureIn"]["properties"]
REQUIRED = SCHEMAS["SignatureIn"]["required"]


class ApiError(Exception):
    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.field = status, error, field

    def response(self) -> JSONResponse:
        body: dict[str, str] = {"error": self.error}
        if self.field:
            body["field"] = self.field
        headers = {"www-authenticate": 'Bearer realm="petition-delivery"'} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, headers=headers)


def _token(web: WebState, header: str) -> TokenInfo | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return accounts.verify_token(web.app, value.strip())


def endpoint(handler: Handler, query: tuple[str, ...] = ()) -> Callable[[Request], Awaitable[Response]]:
    """Token check, campaign lookup, query check and error mapping around one API handler."""

    async def run(request: Request) -> Response:
        web = state(request)
        try:
            unknown = sorted(set(request.query_params) - set(query))
            if unknown:
                raise ApiError(400, f"unknown query parameter '{unknown[0][:40]}'", unknown[0][:40])
            header = request.headers.get("authorization", "")
            info = await blocking(_token, web, header) if header else None
            if info is None:
                raise ApiError(401, "a valid API token is required (Authorization: Bearer <token>)")
            campaign = web.app.campaigns.get(request.path_params["slug"])
            if campaign is None:
                raise ApiError(404, "no such campaign")
            if info.campaign is not None and info.campaign != campaign.slug:
                raise ApiError(403, "this token is for another campaign")
            return await handler(request, campaign, info)
        except ApiError as exc:
            return exc.response()

    run.__name__ = handler.__name__
    return run


async def read_json(request: Request, limit: int) -> object:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, "send the body as application/json")
    length = request.headers.get("content-length")
    if length is not None and not re.fullmatch(r"[0-9]{1,18}", length):
        raise ApiError(400, "the Content-Length header is not a number")
    if length is not None and int(length) > limit:
        raise ApiError(413, f"the body is larger than {limit // 1024} KB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"the body is larger than {limit // 1024} KB")
    try:
        return json.loads(bytes(body).decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise ApiError(400, f"the body is not valid JSON: {exc.msg} at {where}") from None
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise ApiError(400, "the body holds a number too long to read") from None
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply") from None


def signature_fields(data: object) -> dict[str, object]:
    """The posted object checked against SignatureIn's shape (types, required, no extras)."""
    if not isinstance(data, dict):
        raise ApiError(422, "the body must be a JSON object")
    for key in data:
        if key not in FIELDS:
            shown = _printable(str(key)[:40])
            raise ApiError(422, f"unknown field '{shown}'", shown)
    for key in REQUIRED:
        if key not in data:
            raise ApiError(422, f"'{key}' is required", key)
    for key, value in data.items():
        spec = FIELDS[key]
        if spec["type"] == "boolean" and not isinstance(value, bool):
            raise ApiError(422, f"'{key}' must be true or false", key)
        if spec["type"] == "string":
            if not isinstance(value, str):
                raise ApiError(422, f"'{key}' must be a string", key)
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate (\ud800) decodes from JSON but cannot be stored
                raise ApiError(422, f"'{key}' is not valid Unicode text", key) from None
            if len(value) > spec.get("maxLength", 10_000) or len(value) < spec.get("minLength", 0):
                raise ApiError(422, f"'{key}' must be {spec.get('minLength', 0)}–{spec['maxLength']} "
                                    "characters long", key)
    return dict(data)


def _printable(text: str) -> str:
    """Text to echo back in an answer: a lone surrogate (valid in JSON, not in UTF-8) as \\udxxx."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _store(web: WebState, campaign: Campaign, info: TokenInfo, fields: dict[str, object]) -> Added:
    try:
        return signers.add_signer(web.app, campaign, fields, now=web.clock(), actor=f"api:{info.name}")
    except RowRejected as exc:
        raise ApiError(422, exc.reason) from None
    except (OverflowError, ValueError):  # e.g. year 1 at +14:00 has no UTC time; intake should say so
        raise ApiError(422, "a value is out of range (check signed_at)") from None


async def post_signature(request: Request, campaign: Campaign, info: TokenInfo) -> Response:
    web = state(request)
    data = await read_json(request, web.config.max_body)
    fields = signature_fields(data)
    if not str(fields["email"]).strip():  # intake would key a blank address by name and place instead
        raise ApiError(422, "'email' is required", "email")
    added = await blocking(_store, web, campaign, info, fields)
    return JSONResponse({"stored": added.stored, "duplicate": not added.stored, "signers": added.signers},
                        status_code=201 if added.stored else 200)


async def get_status(request: Request, campaign: Campaign, info: TokenInfo) -> Response:
    s = await blocking(reports.status, state(request).app, campaign, now=state(request).clock())
    return JSONResponse({"campaign": s.campaign, "title": s.title, "signers": s.signers,
                         "goal": s.goal, "percent": s.percent, "next_milestone": s.next_milestone,
                         "milestones_reached": [m.threshold for m in s.milestones_reached],
                         "top_countries": [asdict(c) for c in s.top_countries]})


async def get_milestones(request: Request, campaign: Campaign, info: TokenInfo) -> Response:
    s = await blocking(reports.status, state(request).app, campaign, now=state(request).clock())
    reached = {m.threshold: m for m in s.milestones_reached}
    rows = [{"threshold": t, "reached": t in reached,
             "reached_at": reached[t].reached_at if t in reached else None,
             "delivery": reached[t].delivery if t in reached else None}
            for t in sorted(set(campaign.thresholds) | set(reached))]
    return JSONResponse({"campaign": campaign.slug, "signers": s.signers,
                         "next_milestone": next_milestone(s.signers, campaign.thresholds),
                         "milestones": rows})


# What a token holder sees of a message: its Message-ID and crash counts stay in the admin.
_HIDDEN_MESSAGE_KEYS = ("crash_resends", "message_id")


async def get_deliveries(request: Request, campaign: Campaign, info: TokenInfo) -> Response:
    text = request.query_params.get("limit", "20")
    # ASCII digits only: str.isdigit() admits "²" and "①", which int() then refuses
    if not re.fullmatch(r"[0-9]{1,3}", text) or not 1 <= int(text) <= 100:
        raise ApiError(400, "limit must be a whole number from 1 to 100", "limit")
    rows = await blocking(reports.deliveries, state(request).app, campaign, limit=int(text),
                          now=state(request).clock())
    out: list[dict[str, object]] = []
    for d in rows:
        record = d.to_dict()
        record["messages"] = [{k: v for k, v in asdict(m).items() if k not in _HIDDEN_MESSAGE_KEYS}
                              for m in d.messages]
        out.append(record)
    return JSONResponse({"campaign": campaign.slug, "deliveries": out})


async def openapi(request: Request) -> Response:
    return JSONResponse(document())


routes = [
    Route("/api/v1/openapi.json", openapi, methods=["GET"]),
    Route("/api/v1/campaigns/{slug}/signatures", endpoint(post_signature), methods=["POST"]),
    Route("/api/v1/campaigns/{slug}/status", endpoint(get_status), methods=["GET"]),
    Route("/api/v1/campaigns/{slug}/milestones", endpoint(get_milestones), methods=["GET"]),
    Route("/api/v1/campaigns/{slug}/deliveries", endpoint(get_deliveries, ("limit",)), methods=["GET"]),
]
