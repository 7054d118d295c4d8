"""The first-run setup link → the owner's account; an owner's forms → accounts (create, role,
password, removal) and API tokens (create, shown once; revoke), through delivery.services.accounts,
each audited with actor "web:NAME". Organizers get a 403 page here.

Every form works without JavaScript; /static/copy.js only adds a Copy button beside a new token.
A form's errors are shown beside their fields (aria-describedby) and summed up at its top.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from delivery.campaigns.languages import N_
from delivery.errors import NotFound, StateConflict, UsageError
from delivery.services import accounts
from delivery.web.common import (
    EXPIRED,
    SESSION_ID,
    SESSION_LANGUAGE,
    Page,
    actor,
    blocking,
    campaign_title,
    checked_form,
    client_ip,
    csrf_checked,
    error_page,
    flash,
    language,
    login_required,
    render,
    state,
    translator,
)

SESSION_ROLE = "role"  # the session's key for the role its user had when last checked (the menu's)
OWNERS_ONLY = N_("Only an owner of this installation manages accounts and API tokens. Ask one of "
                 "them: %(owners)s.")
ROLE_WORDS = {accounts.OWNER: N_("owner"), accounts.ORGANIZER: N_("organizer")}
ROLE_HINTS = {accounts.OWNER: N_("Owner: manages accounts and API tokens, and does everything an "
                                 "organizer does."),
              accounts.ORGANIZER: N_("Organizer: previews, sends and imports signers.")}
NAME_BAD = N_("Use 1 to 63 letters (a–z, A–Z), digits, dots, dashes or underscores, starting with a "
              "letter or a digit.")
NAME_TAKEN = N_("There is an account with this name already.")
PASSWORD_SHORT = N_("The password is too short: use at least %(n)s characters.")
PASSWORD_LONG = N_("The password is too long: use at most %(n)s characters.")
PASSWORD_DIFFERS = N_("The two passwords differ: type the same password twice.")
ROLE_BAD = N_("Choose owner or organizer.")
ROLE_NOW = {accounts.OWNER: N_("%(name)s is now an owner."),
            accounts.ORGANIZER: N_("%(name)s is now an organizer.")}
LAST_OWNER = N_("%(name)s is the only owner: make another account an owner first.")
CONFIRM_REMOVE = N_("Tick the box to confirm the removal.")
TOKEN_NAME_TAKEN = N_("There is a token with this name already.")
CAMPAIGN_BAD = N_("Choose a campaign of the list.")
SETUP_GONE = N_("The setup is done: an account exists already, so this setup link no longer works. "
                "Log in, or ask an owner for an account.")
SETUP_UNKNOWN = N_("This setup link is not valid: it was used already, or it is older than an hour. "
                   "Restart the service: it prints a new link while no account exists.")

# A Copy button beside a new API token, for browsers with JavaScript; without it the token is in
# a read-only field to select and copy by hand.
COPY_JS = """\
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var field = document.getElementById(button.getAttribute("data-copy"));
  var status = document.getElementById(button.getAttribute("data-status"));
  button.hidden = false;
  button.addEventListener("click", function () {
    field.select();
    var done = function () { status.textContent = button.getAttribute("data-done"); };
    if (navigator.clipboard) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        document.execCommand("copy");
        done();
      });
    } else {
      document.execCommand("copy");
      done();
    }
  });
});
"""


def owner_required(page: Page) -> Callable[[Request], Awaitable[Response]]:
    """Only for logged-in owners (checked in the database on every request); an organizer gets a
    403 page naming the owners to ask."""

    async def checked(request: Request, user: str) -> Response:
        web = state(request)
        role = await blocking(accounts.user_role, web.app, user)
        request.session[SESSION_ROLE] = role or accounts.ORGANIZER
        if role != accounts.OWNER:
            names = await blocking(accounts.owners, web.app)
            return error_page(request, 403, translator(request).gettext(OWNERS_ONLY)
                              % {"owners": ", ".join(names) or "–"})
        return await page(request, user)

    checked.__name__ = page.__name__
    return login_required(checked)


def _password_errors(request: Request, form: FormData, errors: dict[str, str]) -> str:
    """The password typed twice → itself; problems go into `errors` under password / password2."""
    tr = translator(request)
    password = str(form.get("password") or "")
    again = str(form.get("password2") or "")
    problem = accounts.password_problem(password)
    if problem == "short":
        errors["password"] = tr.gettext(PASSWORD_SHORT) % {"n": accounts.MIN_PASSWORD}
    elif problem == "long":
        errors["password"] = tr.gettext(PASSWORD_LONG) % {"n": accounts.MAX_PASSWORD}
    elif password != again:
        errors["password2"] = tr.gettext(PASSWORD_DIFFERS)
    return password


def _name_errors(request: Request, form: FormData, errors: dict[str, str]) -> str:
    name = str(form.get("name") or "").strip()[:100]
    if not accounts.usable_name(name):
        errors["name"] = translator(request).gettext(NAME_BAD)
    return name


def _roles(request: Request) -> list[tuple[str, str, str]]:
    tr = translator(request)
    return [(role, tr.gettext(ROLE_WORDS[role]), tr.gettext(ROLE_HINTS[role])) for role in accounts.ROLES]


def _form(request: Request) -> dict[str, Any]:
    """What the forms' templates need: each field's label (for the error summaries' links) and
    the password rules."""
    tr = translator(request)
    labels = {"name": tr.gettext("Name"), "password": tr.gettext("Password"),
              "password2": tr.gettext("Password again"), "role": tr.gettext("Role"),
              "confirm": tr.gettext("Confirm"), "campaign": tr.gettext("Campaign")}
    return {"labels": labels, "min_password": accounts.MIN_PASSWORD}


def _start_session(request: Request, name: str, session_id: str, role: str) -> None:
    """A fresh session for a new login (as auth.login makes one)."""
    chosen = request.session.get(SESSION_LANGUAGE)
    request.session.clear()
    if isinstance(chosen, str) and chosen in state(request).languages:
        request.session[SESSION_LANGUAGE] = chosen
    request.session["user"] = name
    request.session[SESSION_ID] = session_id
    request.session[SESSION_ROLE] = role
    request.session["csrf"] = secrets.token_urlsafe(32)


# --- first run --------------------------------------------------------------------------------

def _setup_refused(request: Request, exc: NotFound) -> Response:
    tr = translator(request)
    if isinstance(exc, accounts.SetupClosed):
        return error_page(request, 410, tr.gettext(SETUP_GONE))
    return error_page(request, 404, tr.gettext(SETUP_UNKNOWN))


async def setup_page(request: Request) -> Response:
    web = state(request)
    token = request.query_params.get("token", "")[:200]
    try:
        await blocking(accounts.check_setup_token, web.app, token, now=web.clock())
    except NotFound as exc:
        return _setup_refused(request, exc)
    return render(request, "setup.html", title=translator(request).gettext("Create the owner's account"),
                  token=token, errors={}, **_form(request), name="")


async def setup(request: Request) -> Response:
    web = state(request)
    tr = translator(request)
    form = await checked_form(request)
    if form is None:
        return error_page(request, 403, tr.gettext(EXPIRED))
    token = str(form.get("token") or "")[:200]
    errors: dict[str, str] = {}
    name = _name_errors(request, form, errors)
    password = _password_errors(request, form, errors)
    try:
        if errors:
            await blocking(accounts.check_setup_token, web.app, token, now=web.clock())
            return render(request, "setup.html", status_code=400,
                          title=tr.gettext("Create the owner's account"), token=token, errors=errors,
                          **_form(request), name=name)
        session_id = await blocking(accounts.complete_setup, web.app, token, name, password,
                                    now=web.clock(), ip=client_ip(request))
    except NotFound as exc:
        return _setup_refused(request, exc)
    _start_session(request, name, session_id, accounts.OWNER)
    flash(request, "ok", tr.gettext("Welcome, %(name)s: your account is made and you are its owner. "
                                    "Now make an account for each organizer.") % {"name": name})
    return RedirectResponse("/accounts", status_code=303)


# --- accounts -----------------------------------------------------------------------------------

async def _accounts_page(request: Request, user: str, *, status_code: int = 200,
                         errors: dict[str, str] | None = None,
                         values: dict[str, str] | None = None) -> Response:
    users = await blocking(accounts.list_users, state(request).app)
    return render(request, "accounts.html", status_code=status_code,
                  title=translator(request).gettext("Accounts"), users=users, roles=_roles(request),
                  role_words={r: translator(request).gettext(w) for r, w in ROLE_WORDS.items()},
                  errors=errors or {}, **_form(request),
                  values=values or {"role": accounts.ORGANIZER})


async def accounts_page(request: Request, user: str) -> Response:
    return await _accounts_page(request, user)


async def create_account(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    tr = translator(request)
    errors: dict[str, str] = {}
    name = _name_errors(request, form, errors)
    role = str(form.get("role") or "")
    if role not in accounts.ROLES:
        errors["role"] = tr.gettext(ROLE_BAD)
    password = _password_errors(request, form, errors)
    values = {"name": name, "role": role}
    if not errors:
        try:
            await blocking(accounts.add_user, web.app, name, password, now=web.clock(), actor=actor(user),
                           role=role)
        except StateConflict:
            errors["name"] = tr.gettext(NAME_TAKEN)
    if errors:
        return await _accounts_page(request, user, status_code=400, errors=errors, values=values)
    flash(request, "ok", tr.gettext("Account %(name)s made (%(role)s). Give them their name and password "
                                    "by a safe way: they can log in now.")
          % {"name": name, "role": tr.gettext(ROLE_WORDS[role])})
    return RedirectResponse("/accounts", status_code=303)


async def _account_page(request: Request, user: str, name: str, *, status_code: int = 200,
                        errors: dict[str, str] | None = None) -> Response:
    users = await blocking(accounts.list_users, state(request).app)
    found = next((u for u in users if u.name == name), None)
    tr = translator(request)
    if found is None:
        return error_page(request, 404, tr.gettext("There is no account %(name)s.") % {"name": name[:100]})
    only_owner = found.role == accounts.OWNER and sum(u.role == accounts.OWNER for u in users) == 1
    return render(request, "account.html", status_code=status_code,
                  title=tr.gettext("Account %(name)s") % {"name": name}, account=found, roles=_roles(request),
                  role_words={r: tr.gettext(w) for r, w in ROLE_WORDS.items()}, only_owner=only_owner,
                  errors=errors or {}, **_form(request), yourself=name == user)


async def account_page(request: Request, user: str) -> Response:
    return await _account_page(request, user, request.path_params["name"])


async def change_role(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    tr = translator(request)
    name = request.path_params["name"]
    role = str(form.get("role") or "")
    if role not in accounts.ROLES:
        return await _account_page(request, user, name, status_code=400,
                                   errors={"role": tr.gettext(ROLE_BAD)})
    try:
        # Your own sessions stay: you would be logged out by your own form otherwise.
        changed = await blocking(accounts.set_role, web.app, name, role, now=web.clock(), actor=actor(user),
                                 end_sessions=name != user)
    except NotFound:
        return await _account_page(request, user, name)
    except StateConflict:
        return await _account_page(request, user, name, status_code=409,
                                   errors={"role": tr.gettext(LAST_OWNER) % {"name": name}})
    if name == user:
        request.session[SESSION_ROLE] = role
    if changed:
        flash(request, "ok", tr.gettext(ROLE_NOW[role]) % {"name": name})
    if name == user and role != accounts.OWNER:
        return RedirectResponse("/", status_code=303)
    return RedirectResponse(f"/accounts/{name}", status_code=303)


async def reset_password(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    tr = translator(request)
    name = request.path_params["name"]
    errors: dict[str, str] = {}
    password = _password_errors(request, form, errors)
    if errors:
        return await _account_page(request, user, name, status_code=400, errors=errors)
    try:
        await blocking(accounts.set_password, web.app, name, password, now=web.clock(), actor=actor(user))
    except NotFound:
        return await _account_page(request, user, name)
    if name == user:  # a new password ends every session, this one included: log in again
        request.session.clear()
        return RedirectResponse("/login?next=/accounts", status_code=303)
    flash(request, "ok", tr.gettext("%(name)s has a new password: every session of theirs ended.")
          % {"name": name})
    return RedirectResponse(f"/accounts/{name}", status_code=303)


async def remove_account(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    tr = translator(request)
    name = request.path_params["name"]
    if form.get("confirm") != "yes":
        return await _account_page(request, user, name, status_code=400,
                                   errors={"confirm": tr.gettext(CONFIRM_REMOVE)})
    try:
        await blocking(accounts.remove_user, web.app, name, now=web.clock(), actor=actor(user))
    except NotFound:
        return await _account_page(request, user, name)
    except StateConflict:
        return await _account_page(request, user, name, status_code=409,
                                   errors={"confirm": tr.gettext(LAST_OWNER) % {"name": name}})
    if name == user:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)
    flash(request, "ok", tr.gettext("Account %(name)s removed: it can no longer log in.") % {"name": name})
    return RedirectResponse("/accounts", status_code=303)


# --- API tokens ---------------------------------------------------------------------------------

def _campaign_choices(request: Request) -> list[tuple[str, str]]:
    code = language(request)
    campaigns = sorted(state(request).app.campaigns.values(),
                       key=lambda c: campaign_title(c, code).casefold())
    return [(c.slug, f"{campaign_title(c, code)} ({c.slug})") for c in campaigns]


async def _tokens_page(request: Request, *, status_code: int = 200, errors: dict[str, str] | None = None,
                       values: dict[str, str] | None = None,
                       created: dict[str, Any] | None = None) -> Response:
    tokens = await blocking(accounts.list_tokens, state(request).app)
    return render(request, "tokens.html", status_code=status_code,
                  title=translator(request).gettext("API tokens"),
                  tokens=tokens, choices=_campaign_choices(request), errors=errors or {},
                  **_form(request), values=values or {}, created=created)


async def tokens_page(request: Request, user: str) -> Response:
    return await _tokens_page(request)


async def create_token(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    tr = translator(request)
    errors: dict[str, str] = {}
    name = str(form.get("name") or "").strip()[:100]
    if not accounts.usable_name(name):
        errors["name"] = tr.gettext(NAME_BAD)
    slug = str(form.get("campaign") or "")
    campaign = web.app.campaigns.get(slug) if slug else None
    if slug and campaign is None:
        errors["campaign"] = tr.gettext(CAMPAIGN_BAD)
    values = {"name": name, "campaign": slug}
    token = ""
    if not errors:
        try:
            token = await blocking(accounts.add_token, web.app, name, campaign=campaign, now=web.clock(),
                                   actor=actor(user))
        except StateConflict:
            errors["name"] = tr.gettext(TOKEN_NAME_TAKEN)
        except UsageError as exc:  # a campaign file not loaded into the database yet
            errors["campaign"] = str(exc)
    if errors:
        return await _tokens_page(request, status_code=400, errors=errors, values=values)
    # Shown in this answer only (never stored, never in a redirect's URL): the page is not cached.
    return await _tokens_page(request, created={"name": name, "token": token, "campaign": slug})


async def revoke_token(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    tr = translator(request)
    name = request.path_params["name"]
    try:
        revoked = await blocking(accounts.revoke_token, web.app, name, now=web.clock(), actor=actor(user))
    except NotFound:
        return error_page(request, 404, tr.gettext("There is no API token %(name)s.") % {"name": name[:100]})
    if revoked:
        flash(request, "ok", tr.gettext("Token %(name)s revoked: the API refuses it from now on.")
              % {"name": name})
    else:
        flash(request, "info", tr.gettext("Token %(name)s was revoked already.") % {"name": name})
    return RedirectResponse("/tokens", status_code=303)


async def copy_js(request: Request) -> Response:
    return Response(COPY_JS, media_type="text/javascript", headers={"cache-control": "max-age=3600"})


routes = [
    Route("/static/copy.js", copy_js, methods=["GET"]),
    Route("/setup", setup_page, methods=["GET"]),
    Route("/setup", setup, methods=["POST"]),
    Route("/accounts", owner_required(accounts_page), methods=["GET"]),
    Route("/accounts", owner_required(csrf_checked(create_account)), methods=["POST"]),
    Route("/accounts/{name}", owner_required(account_page), methods=["GET"]),
    Route("/accounts/{name}/role", owner_required(csrf_checked(change_role)), methods=["POST"]),
    Route("/accounts/{name}/password", owner_required(csrf_checked(reset_password)), methods=["POST"]),
    Route("/accounts/{name}/remove", owner_required(csrf_checked(remove_account)), methods=["POST"]),
    Route("/tokens", owner_required(tokens_page), methods=["GET"]),
    Route("/tokens", owner_required(csrf_checked(create_token)), methods=["POST"]),
    Route("/tokens/{name}/revoke", owner_required(csrf_checked(revoke_token)), methods=["POST"]),
]
