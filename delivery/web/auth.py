"""Login form → a session for an organizer (rate-limited per user and per IP); logout → none."""

from __future__ import annotations

import logging
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from delivery.services import accounts
from delivery.web.common import (
    actor,
    blocking,
    checked_form,
    client_ip,
    error_page,
    login_required,
    render,
    safe_next,
    state,
)

log = logging.getLogger("delivery.web")


async def login_page(request: Request) -> Response:
    if request.session.get("user"):
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return render(request, "login.html", title="Log in", next=safe_next(request.query_params.get("next")))


def _check(request: Request, name: str, password: str) -> bool:
    web = state(request)
    return accounts.log_in(web.app, name, password, now=web.clock(), actor=actor(name), ip=client_ip(request))


async def login(request: Request) -> Response:
    web = state(request)
    form = await checked_form(request)
    if form is None:
        return error_page(request, 403, "This form has expired. Go back, reload the page and try again.")
    name = str(form.get("name") or "").strip()[:100]
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or "/"))
    keys = (f"user:{name.casefold()}", f"ip:{client_ip(request)}")
    wait = web.limiter.retry_after(*keys)
    if wait:
        response = render(request, "login.html", status_code=429, title="Log in", next=target, name=name,
                          error=f"Too many failed attempts. Try again in {(wait + 59) // 60} minutes.")
        response.headers["retry-after"] = str(wait)
        return response
    if not name or not password or not await blocking(_check, request, name, password):
        web.limiter.failed(*keys)
        log.warning("failed web login from %s", client_ip(request))
        return render(request, "login.html", status_code=401, title="Log in", next=target, name=name,
                      error="Wrong name or password.")
    web.limiter.succeeded(keys[0])
    # A fresh session (and CSRF token) at login: a token planted before login is worth nothing.
    request.session.clear()
    request.session["user"] = name
    request.session["csrf"] = secrets.token_urlsafe(32)
    return RedirectResponse(target, status_code=303)


async def _logout(request: Request, user: str) -> Response:
    if await checked_form(request) is None:
        return error_page(request, 403, "This form has expired. Go back, reload the page and try again.")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


routes = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", login_required(_logout), methods=["POST"]),
]
