"""A recipient's download link (/d/TOKEN) → its page, its files, one ZIP of them, and the
confirmation of receipt; no login: the token is the key.

GET shows the page and downloads nothing, so a mail scanner that opens every link in an inbox
consumes nothing and records nothing; each file, the ZIP and the confirmation are buttons
(POST). The page is in the recipient's language, is never cached and asks not to be indexed,
and the token never reaches a log (delivery.logs) or another site (the Referrer-Policy).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from delivery.campaigns.languages import N_
from delivery.errors import NotFound
from delivery.services import links
from delivery.web.common import blocking, state
from delivery.web.pages import file_response

NO_FILE = N_("No such file")
PRIVATE = {"cache-control": "no-store", "x-robots-tag": "noindex, nofollow"}
GONE = {
    None: (N_("This link is not valid"),
           N_("No dossier is found at this address. Check that the whole address from the e-mail "
              "was copied, or ask the sender of the e-mail for a new link.")),
    links.LinkState.EXPIRED: (N_("This link has expired"),
                              N_("The dossier could be downloaded until %(when)s. Ask the sender of "
                                 "the e-mail to extend the link.")),
    links.LinkState.REVOKED: (N_("This link was withdrawn"),
                              N_("The sender withdrew this link on %(when)s: it gives no files any "
                                 "more. Ask the sender of the e-mail if you still need the dossier.")),
}


def _render(request: Request, language: str | None, template: str, status_code: int = 200,
            **context: object) -> HTMLResponse:
    web = state(request)
    code = language if language in web.languages else next(iter(web.languages))
    html = web.languages[code].templates.get_template(template).render(lang=code, **context)
    return HTMLResponse(html, status_code=status_code, headers=PRIVATE)


def _translate(request: Request, language: str | None, text: str) -> str:
    web = state(request)
    code = language if language in web.languages else next(iter(web.languages))
    return web.languages[code].texts.gettext(text)


async def _gone(request: Request, token: str, exc: links.LinkUnavailable) -> Response:
    web = state(request)
    language = await blocking(links.page_language, web.app, token)
    title, text = GONE[exc.state]
    when = ""
    if exc.since is not None:
        code = language if language in web.languages else next(iter(web.languages))
        when = web.languages[code].templates.filters["when"](exc.since)
    status = 404 if exc.state is None else 410
    return _render(request, language, "link_gone.html", status_code=status,
                   title=_translate(request, language, title),
                   message=_translate(request, language, text) % {"when": when})


def _agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


async def page(request: Request) -> Response:
    web = state(request)
    token = request.path_params["token"]
    try:
        found = await blocking(links.open_page, web.app, token, now=web.clock())
    except links.LinkUnavailable as exc:
        return await _gone(request, token, exc)
    acknowledged = request.query_params.get("acknowledged") == "1"
    return _render(request, found.language, "link.html", title=found.campaign, page=found, token=token,
                   acknowledged=acknowledged)


async def download(request: Request) -> Response:
    web = state(request)
    token = request.path_params["token"]
    try:
        name, data = await blocking(links.download, web.app, token, request.path_params["name"],
                                    user_agent=_agent(request), now=web.clock())
    except links.LinkUnavailable as exc:
        return await _gone(request, token, exc)
    except links.TooManyDownloads as exc:
        return await _too_many(request, token, exc)
    except NotFound:
        language = await blocking(links.page_language, web.app, token)
        return _render(request, language, "link_gone.html", status_code=404,
                       title=_translate(request, language, NO_FILE),
                       message=_translate(request, language, N_("This page has no file of that name.")))
    response = file_response(name, data, download=True)
    response.headers.update(PRIVATE)
    return response


async def download_all(request: Request) -> Response:
    web = state(request)
    token = request.path_params["token"]
    try:
        name, chunks = await blocking(links.download_all, web.app, token, user_agent=_agent(request),
                                      now=web.clock())
    except links.LinkUnavailable as exc:
        return await _gone(request, token, exc)
    except links.TooManyDownloads as exc:
        return await _too_many(request, token, exc)
    return StreamingResponse(chunks, media_type="application/zip", headers={
        **PRIVATE, "content-disposition": f'attachment; filename="{name}"'})


async def acknowledge(request: Request) -> Response:
    web = state(request)
    token = request.path_params["token"]
    try:
        await blocking(links.acknowledge, web.app, token, user_agent=_agent(request), now=web.clock())
    except links.LinkUnavailable as exc:
        return await _gone(request, token, exc)
    target = f"{links.LINK_PATH}{token}?acknowledged=1"
    return Response(status_code=303, headers={**PRIVATE, "location": target})


async def _too_many(request: Request, token: str, exc: links.TooManyDownloads) -> Response:
    language = await blocking(links.page_language, state(request).app, token)
    response = _render(request, language, "link_gone.html", status_code=429,
                       title=_translate(request, language, N_("Too many downloads")),
                       message=_translate(request, language, N_(
                           "This link was used for many downloads in the last hour. Try again in "
                           "an hour.")))
    response.headers["retry-after"] = str(exc.retry_after)
    return response


routes = [
    Route(f"{links.LINK_PATH}{{token}}", page, methods=["GET"]),
    Route(f"{links.LINK_PATH}{{token}}/files/{{name}}", download, methods=["POST"]),
    Route(f"{links.LINK_PATH}{{token}}/all", download_all, methods=["POST"]),
    Route(f"{links.LINK_PATH}{{token}}/received", acknowledge, methods=["POST"]),
]
