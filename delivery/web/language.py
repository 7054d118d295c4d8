"""The header's language form → the admin's language: stored on the account of a logged-in
organizer (delivery.services.accounts.set_language, audited as "web:NAME"), kept in the session
before login; then back to the page it was sent from. No JavaScript: a select and a button."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from delivery.campaigns.languages import N_
from delivery.errors import UsageError
from delivery.services import accounts
from delivery.web.common import (
    SESSION_LANGUAGE,
    actor,
    blocking,
    checked_form,
    error_page,
    logged_in,
    safe_next,
    state,
    translator,
)

EXPIRED = N_("This form has expired (or was not sent from this site). Go back, reload the page and "
             "try again.")


async def choose_language(request: Request) -> Response:
    web = state(request)
    user = await logged_in(request)  # a refusal below is in the language the pages were in
    form = await checked_form(request)
    if form is None:
        return error_page(request, 403, translator(request).gettext(EXPIRED))
    code = form.get("language")
    if not isinstance(code, str) or code not in web.languages:
        return error_page(request, 400, translator(request).gettext(
            "The admin is not written in that language: choose one of the list."))
    target = safe_next(str(form.get("next") or "/"))
    if user is None:
        request.session[SESSION_LANGUAGE] = code
        return RedirectResponse(target, status_code=303)
    try:
        await blocking(accounts.set_language, web.app, user, code, now=web.clock(), actor=actor(user))
    except UsageError as exc:  # a templates folder whose languages.toml does not list it
        return error_page(request, 400, str(exc))
    request.session.pop(SESSION_LANGUAGE, None)  # the account's choice decides from now on
    return RedirectResponse(target, status_code=303)


routes = [Route("/language", choose_language, methods=["POST"])]
