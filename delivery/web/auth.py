"""Login form → a session for an organizer (limited per name and address, and per address, in the
database: delivery.services.accounts.log_in), which remembers the account's role for the menu;
logout → the end of every session of that organizer."""

from __future__ import annotations

import logging
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from delivery.campaigns.languages import N_
from delivery.services import accounts
from delivery.web.accounts import SESSION_ROLE
from delivery.web.common import (
    SESSION_ID,
    SESSION_LANGUAGE,
    actor,
    blocking,
    checked_form,
    client_ip,
    current_user,
    error_page,
    language,
    login_required,
    render,
    safe_next,
    state,
    translator,
)
from delivery.web.ratelimit import wait_text

log = logging.getLogger("delivery.web")
EXPIRED = N_("This form has expired. Go back, reload the page and try again.")


async def login_page(request: Request) -> Response:
    if await blocking(current_user, request):
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    first_run = not await blocking(accounts.any_user, state(request).app)
    return render(request, "login.html", title=translator(request).gettext("Log in"),
                  next=safe_next(request.query_params.get("next")), first_run=first_run)


def _check(request: Request, name: str, password: str) -> accounts.Login:
    web = state(request)
    return accounts.log_in(web.app, name, password, now=web.clock(), actor=actor(name), ip=client_ip(request),
                           limits=web.limiter.limits)


async def login(request: Request) -> Response:
    tr = translator(request)
    form = await checked_form(request)
    if form is None:
        return error_page(request, 403, tr.gettext(EXPIRED))
    name = str(form.get("name") or "").strip()[:100]
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or "/"))
    result = await blocking(_check, request, name, password) if name and password else accounts.Login()
    if result.retry_after:
        response = render(request, "login.html", status_code=429, title=tr.gettext("Log in"), next=target,
                          name=name, error=tr.gettext("Too many failed attempts. Try again in %(wait)s.")
                          % {"wait": wait_text(result.retry_after, tr)})
        response.headers["retry-after"] = str(result.retry_after)
        return response
    if result.session_id is None:
        log.warning("failed web login from %s", client_ip(request))
        return render(request, "login.html", status_code=401, title=tr.gettext("Log in"), next=target,
                      name=name, error=tr.gettext("Wrong name or password."))
    # A fresh session (and CSRF token) at login: a token planted before login is worth nothing.
    # Only the language chosen before login goes on (it counts until the account has its own).
    chosen = request.session.get(SESSION_LANGUAGE)
    request.session.clear()
    if isinstance(chosen, str) and chosen in state(request).languages:
        request.session[SESSION_LANGUAGE] = chosen
    request.session["user"] = name
    request.session[SESSION_ID] = result.session_id
    request.session[SESSION_ROLE] = result.role or accounts.ORGANIZER
    request.session["csrf"] = secrets.token_urlsafe(32)
    return RedirectResponse(target, status_code=303)


def _end(request: Request, user: str) -> None:
    web = state(request)
    accounts.log_out(web.app, user, str(request.session.get(SESSION_ID, "")), now=web.clock(),
                     actor=actor(user), ip=client_ip(request))


async def _logout(request: Request, user: str) -> Response:
    if await checked_form(request) is None:
        return error_page(request, 403, translator(request).gettext(EXPIRED))
    await blocking(_end, request, user)
    shown = language(request)
    request.session.clear()
    request.session[SESSION_LANGUAGE] = shown  # the login page stays in the language just used
    return RedirectResponse("/login", status_code=303)


routes = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", login_required(_logout), methods=["POST"]),
]
