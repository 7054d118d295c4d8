"""Request → the pieces every admin page needs: the logged-in user, the CSRF check, the campaign
from the URL, the language, template rendering and flash messages.

The admin is written in English (the msgids) and translated through the `admin` catalogs of
templates/locale/ (scripts/translations.py --domain admin extracts them from templates/admin/ and
delivery/web/). A request's language: the logged-in organizer's stored choice, else the one
chosen in this session before login, else the browser's Accept-Language, else English. Each
language has its own Jinja2 environment, made at start, with its catalog and its CLDR locale's
number and date filters: requests never share a mutable translator.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from babel import Locale
from babel.dates import format_skeleton
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Match

from delivery.campaigns.config import Campaign
from delivery.campaigns.languages import (
    ADMIN,
    LOCALE_DIR,
    N_,
    SOURCE_LANGUAGE,
    Language,
    negotiate,
    read_languages,
    translations,
)
from delivery.errors import ConfigError
from delivery.services import accounts
from delivery.services.app import App
from delivery.settings import BUILTIN, SOURCE_TREE
from delivery.signers.countries import country_code
from delivery.web.config import WebConfig
from delivery.web.jobs import Jobs
from delivery.web.ratelimit import LoginLimiter

P = ParamSpec("P")
T = TypeVar("T")
Page = Callable[[Request, str], Awaitable[Response]]
MAX_FORM_FIELDS = 50
SESSION_ID = "sid"  # the session's key for the user's session id (accounts.session_user)
USER = "delivery.user"  # the request scope's key for the user login_required found
LANGUAGE = "delivery.language"  # the request scope's key for the language its pages are in
SESSION_LANGUAGE = "language"  # the session's key for a language chosen before login
ENGLISH = Language(SOURCE_LANGUAGE, "en_GB", "English")  # when no languages.toml is found
log = logging.getLogger("delivery.web")


# Words the pages show for stored states, triggers and kinds (which stay the CSS classes).
WORDS = {
    "held": N_("held"), "queued": N_("queued"), "building": N_("building"), "sending": N_("sending"),
    "done": N_("done"), "failed": N_("failed"), "cancelled": N_("cancelled"), "sent": N_("sent"),
    "retry": N_("retry"), "blocked": N_("blocked"), "bounced": N_("bounced"), "milestone": N_("milestone"),
    "manual": N_("manual"),
    "preview": N_("preview"), "dossier": N_("dossier"), "alert": N_("alert"),
    "open": N_("open"), "expired": N_("expired"), "revoked": N_("withdrawn"),
    "recut": N_("to send in smaller e-mails"), "replaced": N_("replaced by smaller e-mails"),
}


@dataclass(frozen=True)
class AdminLanguage:
    """One language of the admin: its code, CLDR locale and own name, its catalog, and the
    template environment that writes in it."""

    language: Language
    texts: NullTranslations
    templates: Environment


@dataclass
class WebState:
    app: App
    config: WebConfig
    languages: dict[str, AdminLanguage]  # by code, in templates/languages.toml's order
    limiter: LoginLimiter
    jobs: Jobs = field(default_factory=Jobs)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    send_nonces: dict[str, str] = field(default_factory=dict)


def catalog_root(app: App) -> Path | None:
    """The first templates folder with a locale/ folder: where languages.toml and the admin's
    catalogs are read (the same order the admin templates are looked for in)."""
    for folder in (app.settings.templates_dir, SOURCE_TREE / "templates", BUILTIN / "templates"):
        if (folder / LOCALE_DIR).is_dir():
            return folder
    return None


def admin_languages(app: App) -> dict[str, AdminLanguage]:
    """Every language of templates/languages.toml that has an admin catalog (English needs
    none), each with its template environment. A language without one (a recipient language
    added for the dossier only) is left out of the admin, with a warning."""
    root = catalog_root(app)
    languages = read_languages(root) if root is not None else {SOURCE_LANGUAGE: ENGLISH}
    out: dict[str, AdminLanguage] = {}
    for code, language in languages.items():
        try:
            texts = translations(root, code, ADMIN) if root is not None else NullTranslations()
        except ConfigError as exc:
            log.warning("the web admin is not offered in %s: %s", language.name, exc)
            continue
        out[code] = AdminLanguage(language, texts, template_env(app, language, texts))
    return out


def template_env(app: App, language: Language, texts: NullTranslations) -> Environment:
    """The admin's templates writing in `language`: its catalog, its numbers and dates."""
    folders = [app.settings.templates_dir / "admin", SOURCE_TREE / "templates" / "admin",
               BUILTIN / "templates" / "admin"]
    env = Environment(loader=ChoiceLoader([FileSystemLoader(str(f)) for f in folders if f.is_dir()]),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      extensions=["jinja2.ext.i18n"])
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(texts, newstyle=True)  # type: ignore[attr-defined]
    locale = Locale.parse(language.locale)
    env.filters["num"] = lambda n: number(n, locale)
    env.filters["percent"] = lambda n: percent(n, locale)
    env.filters["size"] = lambda n: human_size(n, locale, texts)
    env.filters["when"] = lambda value: when(value, locale)
    env.filters["word"] = lambda value: texts.gettext(WORDS[value]) if value in WORDS else value
    env.filters["country"] = lambda name: country_name(name, locale)
    return env


def admin_asset(app: App, name: str) -> Path | None:
    """A file of the admin's templates folder (a stylesheet, a script), looked for where the
    admin's templates are."""
    for folder in (app.settings.templates_dir / "admin", SOURCE_TREE / "templates" / "admin",
                   BUILTIN / "templates" / "admin"):
        if (folder / name).is_file():
            return folder / name
    return None


def css_path(app: App) -> Path | None:
    return admin_asset(app, "admin.css")


def number(n: object, locale: Locale | str = ENGLISH.locale) -> str:
    """A count as the locale writes it ("80,000", "80 000"); "–" for none."""
    if n is None:
        return "–"
    if isinstance(n, int) and not isinstance(n, bool):
        return format_decimal(n, locale=locale)
    return str(n)


def country_name(name: str | None, locale: Locale | str = ENGLISH.locale) -> str:
    """A stored country (the canonical English name, or free text) → its name in the locale, as
    the dossier writes it; free text ("Kurdistan") stays as the signers wrote it."""
    code = country_code(name) if name else None
    return Locale.parse(locale).territories.get(code, name) if code else (name or "")


def percent(value: float | int | None, locale: Locale | str = ENGLISH.locale) -> str:
    """A percentage (37.5 for 37.5 %) as the locale writes it: "37.5%", "37,5 %"; "–" for none."""
    if value is None:
        return "–"
    # through the decimal text: 12.3 / 100 as a float would print as 0.12300000000000001
    return format_percent(Decimal(str(value)) / 100, locale=locale, decimal_quantization=False)


def human_size(n: int | None, locale: Locale | str = ENGLISH.locale,
               texts: NullTranslations | None = None) -> str:
    texts = texts or NullTranslations()
    if n is None:
        return "–"
    units = (texts.gettext("KB"), texts.gettext("MB"), texts.gettext("GB"))
    if n < 1024:
        return texts.ngettext("%(n)s byte", "%(n)s bytes", n) % {"n": format_decimal(n, locale=locale)}
    size = n / 1024
    for unit in units:
        if size < 1024 or unit == units[-1]:
            break
        size /= 1024
    return f"{format_decimal(size, format='#,##0.0', locale=locale)} {unit}"


def moment(value: datetime, locale: Locale | str, zone: tzinfo) -> str:
    """A time to the minute as the locale writes it, in `zone`: "4 Mar 2026, 14:05"."""
    locale = Locale.parse(locale)
    local = value.astimezone(zone)
    date_text = format_skeleton("yMMMd", local, locale=locale)
    time_text = format_skeleton("Hm", local, tzinfo=zone, locale=locale)
    pattern = str(locale.datetime_formats.get("medium", "{1}, {0}")).replace("'", "")
    return pattern.replace("{1}", date_text).replace("{0}", time_text)


def when(value: datetime | str | None, locale: Locale | str = ENGLISH.locale) -> str:
    """A stored time, in UTC, as the locale writes it: "20 Nov 2026, 10:00 UTC"."""
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        value = parsed
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return f"{moment(value, locale, UTC)} UTC"


def when_filter(request: Request) -> Callable[[datetime], str]:
    """The page language's `when` (a moment as the language writes it, in UTC)."""
    return state(request).languages[language(request)].templates.filters["when"]  # type: ignore[no-any-return]


def state(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


async def blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a database or service call off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 20:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def client_ip(request: Request) -> str:
    return str(request.scope.get("delivery.client_ip", "unknown"))


def flash(request: Request, kind: str, text: str) -> None:
    request.session["flash"] = [kind, text]


def language(request: Request) -> str:
    """The code of the language this request's pages are in (see the module's docstring);
    login_required puts a logged-in organizer's stored choice in the scope."""
    code = request.scope.get(LANGUAGE)
    languages = state(request).languages
    if isinstance(code, str) and code in languages:
        return code
    chosen = request.session.get(SESSION_LANGUAGE)
    if isinstance(chosen, str) and chosen in languages:
        code = chosen
    else:
        code = negotiate(request.headers.get("accept-language", "")[:1000],
                         {c: a.language for c, a in languages.items()})
    if code not in languages:
        code = SOURCE_LANGUAGE if SOURCE_LANGUAGE in languages else next(iter(languages))
    request.scope[LANGUAGE] = code
    return code


def translator(request: Request) -> NullTranslations:
    """The catalog of this request's language: `translator(request).gettext("…")`."""
    return state(request).languages[language(request)].texts


def locale_of(request: Request) -> str:
    """The CLDR locale of this request's language (for Babel)."""
    return state(request).languages[language(request)].language.locale


def campaign_title(campaign: Campaign, language: str) -> str:
    return campaign.text(language).title


def page_title(*parts: str) -> str:
    """A page's <title>: what it is, then the campaign: "Deliveries · Free the test"."""
    return " · ".join(p for p in parts if p)


def here(request: Request) -> str:
    """Where the language form sends the browser back to: this page, when it can be fetched again
    (a GET route at this path), the start otherwise."""
    path = request.url.path
    if request.method == "GET":
        return path + (f"?{request.url.query}" if request.url.query else "")
    probe = {"type": "http", "path": path, "method": "GET"}
    routes = getattr(request.app, "routes", [])
    if any(route.matches(probe)[0] == Match.FULL for route in routes):
        return path
    return "/"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    web = state(request)
    code = language(request)
    shown = request.session.pop("flash", None)
    context.setdefault("user", request.scope.get(USER))
    context.setdefault("campaign", None)
    campaigns = sorted(web.app.campaigns.values(), key=lambda c: campaign_title(c, code).casefold())
    html = web.languages[code].templates.get_template(template).render(
        request=request, csrf=csrf_token(request), flash=shown, campaigns=campaigns, lang=code,
        languages=[(c, a.language.name) for c, a in web.languages.items()], back=here(request),
        **context)
    return HTMLResponse(html, status_code=status_code)


ERROR_TITLES = {403: N_("Not allowed"), 404: N_("Not found"), 409: N_("Not possible now"),
                429: N_("Too many attempts")}
ERROR_TITLE = N_("Error")


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    tr = translator(request)
    return render(request, "error.html", status_code=status_code, message=message,
                  title=tr.gettext(ERROR_TITLES.get(status_code, ERROR_TITLE)))


def campaign_for(request: Request) -> Campaign:
    slug = request.path_params.get("slug", "")
    campaign = state(request).app.campaigns.get(slug)
    if campaign is None:
        raise HTTPException(404, translator(request).gettext("There is no campaign '%(slug)s'.")
                            % {"slug": slug[:64]})
    return campaign


def safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def current_user(request: Request) -> str | None:
    """The organizer this request's session stands for: the user exists and the session id it
    carries is still that user's (no logout, new password or removal since). Blocking."""
    return accounts.session_user(state(request).app, request.session.get("user"),
                                 request.session.get(SESSION_ID))


def current_user_and_language(request: Request) -> tuple[str | None, str | None]:
    """current_user, and the admin language that user chose (None: none). Blocking."""
    user = current_user(request)
    return user, (accounts.user_language(state(request).app, user) if user else None)


async def logged_in(request: Request) -> str | None:
    """The organizer this request's session stands for, put in the request's scope with the
    language they chose (what their pages are written in); None when there is none. For the
    answers outside login_required too (an unknown address, a refused post), so that those are
    in the organizer's language as well."""
    user, chosen = await blocking(current_user_and_language, request)
    if user is not None:
        request.scope[USER] = user
        if chosen in state(request).languages:
            request.scope[LANGUAGE] = chosen
    return user


def login_required(page: Page) -> Callable[[Request], Awaitable[Response]]:
    """Only for logged-in organizers whose session still stands; others go to the login page."""

    async def endpoint(request: Request) -> Response:
        user = await logged_in(request)
        if user is None:
            request.session.pop("user", None)
            request.session.pop(SESSION_ID, None)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method != "GET":
                target = "/"
            return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
        return await page(request, user)

    endpoint.__name__ = page.__name__
    return endpoint


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


async def checked_form(request: Request, *, max_fields: int = MAX_FORM_FIELDS,
                       max_part_size: int = 64 * 1024) -> FormData | None:
    """The posted form when its CSRF token matches the session's; None otherwise. (A form read
    before, with other limits, is the one checked.)"""
    form = await request.form(max_files=0, max_fields=max_fields, max_part_size=max_part_size)
    sent = form.get("csrf")
    expected = request.session.get("csrf")
    if not isinstance(sent, str) or not isinstance(expected, str) or not expected:
        return None
    return form if hmac.compare_digest(sent.encode(), expected.encode()) else None


FormAction = Callable[[Request, str, FormData], Awaitable[Response]]
EXPIRED = N_("This form has expired (or was not sent from this site). Go back, reload the page and "
             "try again.")


def csrf_checked(action: FormAction, *, max_fields: int = MAX_FORM_FIELDS,
                 max_part_size: int = 64 * 1024) -> Page:
    """A posted form (within these limits) reaches `action` only when its CSRF token matches the
    session's."""

    async def page(request: Request, user: str) -> Response:
        form = await checked_form(request, max_fields=max_fields, max_part_size=max_part_size)
        if form is None:
            return error_page(request, 403, translator(request).gettext(EXPIRED))
        return await action(request, user, form)

    page.__name__ = action.__name__
    return page


def actor(user: str) -> str:
    return f"web:{user}"


def based_on(form: FormData) -> int:
    """The version a form of settings or a letter was opened on (-1: none given)."""
    text = str(form.get("based_on") or "")
    return int(text) if text.isdigit() else -1
