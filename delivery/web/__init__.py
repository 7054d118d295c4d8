"""App → the web admin and its JSON API as one Starlette application (`create_web_app`).

Server-rendered pages behind a login, for organizers; a bearer-token JSON API under /api/v1/ for
sign-up forms and dashboards. Both call the same service functions as the CLI.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from delivery.campaigns.languages import N_
from delivery.logs import safe_error
from delivery.services.app import App, refresh_campaigns
from delivery.web import (
    accounts,
    actions,
    api,
    auth,
    imports,
    language,
    letters,
    links,
    pages,
    settings,
    signing,
    verify,
)
from delivery.web.common import (
    USER,
    WebState,
    admin_languages,
    css_path,
    error_page,
    logged_in,
    translator,
)
from delivery.web.config import WebConfig, web_config
from delivery.web.middleware import WebSecurityMiddleware
from delivery.web.ratelimit import LoginLimiter

log = logging.getLogger("delivery.web")
FORM_LIMIT = 256 * 1024
LENGTH_REQUIRED = N_("This form was sent without its length: send it again from the page.")
TOO_LARGE = N_("This form is too large to be sent.")
NOT_ALLOWED = N_("This address does not take that kind of request.")
SERVER_ERROR = N_("Something went wrong; the error is in the service log.")
HTTP_TEXTS = {404: N_("There is no such page here."), 400: N_("This request is not understood.")}
CANNOT = N_("This request cannot be answered.")

__all__ = ["create_web_app"]


class UploadPage(Protocol):
    """A page module that takes uploads: its body limit by path, and what a larger body is told."""

    UPLOAD_LIMIT_MB: int
    TOO_LARGE: str

    def body_limit(self, path: str) -> int | None: ...


UPLOAD_PAGES: tuple[UploadPage, ...] = (imports, signing)


class FormSizeLimit:
    """Refuse oversized page posts before they are read (the API checks its own 64 KB limit)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # /verify counts its body as it streams (a chunked one too) and refuses it itself
        if scope["type"] == "http" and scope["method"] == "POST" and not scope["path"].startswith("/api/") \
                and scope["path"] != verify.PATH:
            length = dict(scope["headers"]).get(b"content-length")
            upload = _upload_page(scope["path"])
            limit = (upload.body_limit(scope["path"]) if upload else None) or FORM_LIMIT
            if length is None or not length.isdigit() or int(length) > limit:
                request = Request(scope)
                with contextlib.suppress(Exception):  # then the session's or the browser's language
                    await logged_in(request)
                if length is None:
                    status, text = 411, _translated(request, LENGTH_REQUIRED)
                elif upload:
                    status = 413
                    text = _translated(request, upload.TOO_LARGE) % {"n": upload.UPLOAD_LIMIT_MB}
                else:
                    status, text = 413, _translated(request, TOO_LARGE)
                await PlainTextResponse(text, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class CampaignsInForce:
    """Before each request: the campaigns' newest settings and letters put in force (one query
    when nothing changed), so that a change saved through another instance shows here at once."""

    def __init__(self, app: ASGIApp, service: App) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/static/"):
            try:
                await run_in_threadpool(refresh_campaigns, self.service)
            except Exception as exc:  # the database is down: the page's own call says so
                log.warning("the campaigns' settings could not be read: %s", safe_error(exc))
        await self.app(scope, receive, send)


def _upload_page(path: str) -> UploadPage | None:
    """The module of the page at `path` when it takes an upload, which says how much it takes."""
    return next((page for page in UPLOAD_PAGES if page.body_limit(path)), None)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail or "error"}, status_code=exc.status_code,
                            headers=exc.headers)
    if USER not in request.scope:  # not answered by login_required's page: an unknown address
        await logged_in(request)
    if exc.status_code == 405:
        return PlainTextResponse(_translated(request, NOT_ALLOWED), status_code=405, headers=exc.headers)
    detail = str(exc.detail)
    if detail == HTTPStatus(exc.status_code).phrase:  # Starlette's own (English) words: ours instead
        detail = translator(request).gettext(HTTP_TEXTS.get(exc.status_code, CANNOT))
    return error_page(request, exc.status_code, detail)


def _translated(request: Request, text: str) -> str:
    """`text` in the request's language; the English text when even that fails (these answers
    are the last ones and must not fail in turn)."""
    with contextlib.suppress(Exception):
        return translator(request).gettext(text)
    return text


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("web request failed: %s %s", request.method, request.url.path, exc_info=exc)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "internal error; see the service log"}, status_code=500)
    with contextlib.suppress(Exception):  # the failure may well be the database's
        if USER not in request.scope:
            await logged_in(request)
    return PlainTextResponse(_translated(request, SERVER_ERROR), status_code=500)


def create_web_app(app: App, *, config: WebConfig | None = None) -> Starlette:
    """The admin + API for this App; `config` defaults to the one its settings make."""
    config = config or web_config(app.settings.web)
    web = WebState(app=app, config=config, languages=admin_languages(app),
                   limiter=LoginLimiter(failures=config.login_failures, window=config.login_window))
    css = css_path(app)

    async def stylesheet(request: Request) -> Response:
        body = css.read_bytes() if css else b""
        return Response(body, media_type="text/css", headers={"cache-control": "max-age=3600"})

    routes = [Route("/static/admin.css", stylesheet, methods=["GET"]),
              *auth.routes, *accounts.routes, *language.routes, *pages.routes, *actions.routes,
              *imports.routes, *signing.routes, *settings.routes, *letters.routes, *api.routes,
              *links.routes, *verify.routes]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        web.jobs.close()

    starlette = Starlette(routes=routes,
                          middleware=[Middleware(WebSecurityMiddleware, config=config),
                                      Middleware(FormSizeLimit), Middleware(CampaignsInForce, service=app)],
                          exception_handlers={HTTPException: _http_error, Exception: _server_error},
                          lifespan=lifespan)
    starlette.state.web = web
    return starlette
