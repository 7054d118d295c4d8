"""App → the web admin and its JSON API as one Starlette application (`create_web_app`).

Server-rendered pages behind a login, for organizers; a bearer-token JSON API under /api/v1/ for
sign-up forms and dashboards. Both call the same service functions as the CLI.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from delivery.services.app import App
from delivery.web import actions, api, auth, imports, pages
from delivery.web.common import WebState, css_path, error_page, template_env
from delivery.web.config import WebConfig, web_config
from delivery.web.middleware import WebSecurityMiddleware
from delivery.web.ratelimit import LoginLimiter

log = logging.getLogger("delivery.web")
FORM_LIMIT = 256 * 1024

__all__ = ["create_web_app"]


class FormSizeLimit:
    """Refuse oversized page posts before they are read (the API checks its own 64 KB limit)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope["path"].startswith("/api/"):
            length = dict(scope["headers"]).get(b"content-length")
            limit = imports.body_limit(scope["path"]) or FORM_LIMIT  # an upload's page takes more
            if length is None or not length.isdigit() or int(length) > limit:
                status, text = (411, "Length Required") if length is None else (413, "Request too large")
                await PlainTextResponse(text, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail or "error"}, status_code=exc.status_code,
                            headers=exc.headers)
    if exc.status_code == 405:
        return PlainTextResponse("Method Not Allowed", status_code=405, headers=exc.headers)
    return error_page(request, exc.status_code, str(exc.detail))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("web request failed: %s %s", request.method, request.url.path, exc_info=exc)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "internal error; see the service log"}, status_code=500)
    return PlainTextResponse("Something went wrong; the error is in the service log.", status_code=500)


def create_web_app(app: App, *, config: WebConfig | None = None) -> Starlette:
    """The admin + API for this App; `config` defaults to the one its settings make."""
    config = config or web_config(app.settings.web)
    web = WebState(app=app, config=config, templates=template_env(app),
                   limiter=LoginLimiter(failures=config.login_failures, window=config.login_window))
    css = css_path(app)

    async def stylesheet(request: Request) -> Response:
        body = css.read_bytes() if css else b""
        return Response(body, media_type="text/css", headers={"cache-control": "max-age=3600"})

    routes = [Route("/static/admin.css", stylesheet, methods=["GET"]),
              *auth.routes, *pages.routes, *actions.routes, *imports.routes, *api.routes]
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        web.jobs.close()

    starlette = Starlette(routes=routes,
                          middleware=[Middleware(WebSecurityMiddleware, config=config),
                                      Middleware(FormSizeLimit)],
                          exception_handlers={HTTPException: _http_error, Exception: _server_error},
                          lifespan=lifespan)
    starlette.state.web = web
    return starlette
