"""Request → the pieces every admin page needs: the logged-in user, the CSRF check, the campaign
from the URL, template rendering and flash messages.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from delivery.campaigns.config import Campaign
from delivery.services import accounts
from delivery.services.app import App
from delivery.settings import BUILTIN, SOURCE_TREE
from delivery.web.config import WebConfig
from delivery.web.jobs import Jobs
from delivery.web.ratelimit import LoginLimiter

P = ParamSpec("P")
T = TypeVar("T")
Page = Callable[[Request, str], Awaitable[Response]]
MAX_FORM_FIELDS = 50
SESSION_ID = "sid"  # the session's key for the user's session id (accounts.session_user)
USER = "delivery.user"  # the request scope's key for the user login_required found


@dataclass
class WebState:
    app: App
    config: WebConfig
    templates: Environment
    limiter: LoginLimiter
    jobs: Jobs = field(default_factory=Jobs)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    send_nonces: dict[str, str] = field(default_factory=dict)


def template_env(app: App) -> Environment:
    folders = [app.settings.templates_dir / "admin", SOURCE_TREE / "templates" / "admin",
               BUILTIN / "templates" / "admin"]
    env = Environment(loader=ChoiceLoader([FileSystemLoader(str(f)) for f in folders if f.is_dir()]),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["num"] = lambda n: f"{n:,}" if isinstance(n, int) else ("–" if n is None else str(n))
    env.filters["size"] = human_size
    env.filters["when"] = when
    return env


def css_path(app: App) -> Path | None:
    for folder in (app.settings.templates_dir / "admin", SOURCE_TREE / "templates" / "admin",
                   BUILTIN / "templates" / "admin"):
        if (folder / "admin.css").is_file():
            return folder / "admin.css"
    return None


def human_size(n: int | None) -> str:
    if n is None:
        return "–"
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size):,} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def when(value: datetime | str | None) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        value = parsed
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


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


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    web = state(request)
    shown = request.session.pop("flash", None)
    context.setdefault("user", request.scope.get(USER))
    context.setdefault("campaign", None)
    html = web.templates.get_template(template).render(
        request=request, csrf=csrf_token(request), flash=shown, campaigns=sorted(web.app.campaigns.values(),
                                                                                 key=lambda c: c.title),
        **context)
    return HTMLResponse(html, status_code=status_code)


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status_code, message=message,
                  title={403: "Not allowed", 404: "Not found", 409: "Not possible now",
                         429: "Too many attempts"}.get(status_code, "Error"))


def campaign_for(request: Request) -> Campaign:
    slug = request.path_params.get("slug", "")
    campaign = state(request).app.campaigns.get(slug)
    if campaign is None:
        raise HTTPException(404, f"no campaign '{slug[:64]}'")
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


def login_required(page: Page) -> Callable[[Request], Awaitable[Response]]:
    """Only for logged-in organizers whose session still stands; others go to the login page."""

    async def endpoint(request: Request) -> Response:
        user = await blocking(current_user, request)
        if user is None:
            request.session.pop("user", None)
            request.session.pop(SESSION_ID, None)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method != "GET":
                target = "/"
            return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
        request.scope[USER] = user
        return await page(request, user)

    endpoint.__name__ = page.__name__
    return endpoint


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


async def checked_form(request: Request) -> FormData | None:
    """The posted form when its CSRF token matches the session's; None otherwise."""
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=64 * 1024)
    sent = form.get("csrf")
    expected = request.session.get("csrf")
    if not isinstance(sent, str) or not isinstance(expected, str) or not expected:
        return None
    return form if hmac.compare_digest(sent.encode(), expected.encode()) else None


def actor(user: str) -> str:
    return f"web:{user}"
