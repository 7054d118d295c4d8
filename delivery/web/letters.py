"""An owner's letter editor → the letter's problems with their lines, a picture of the dossier's first
page with it, and new versions of it, through delivery.services.letters (audited "letter.save" and
"letter.restore" with actor "web:NAME").

GET  /c/{slug}/letter                   the first language's editor
GET  /c/{slug}/letter/{lang}            the letter in force, its first page, its versions
POST /c/{slug}/letter/{lang}            "preview" (nothing saved) or "save" the posted letter
POST /c/{slug}/letter/{lang}/preview    the posted letter's problems and first page as JSON,
                                        for /static/letter.js (the live preview while typing)
POST /c/{slug}/letter/{lang}/restore    an earlier version (0: the file) as a new version

Without JavaScript the Preview button does what the script does as one types. A letter with a
problem is never saved. Organizers get a 403 page here.
"""

from __future__ import annotations

import base64
from dataclasses import asdict

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from delivery.campaigns.config import Campaign
from delivery.campaigns.languages import N_, read_languages
from delivery.errors import ConfigError, NotFound, RenderError, UsageError
from delivery.services import letters
from delivery.web.accounts import owner_required
from delivery.web.common import (
    EXPIRED,
    actor,
    admin_asset,
    based_on,
    blocking,
    campaign_for,
    checked_form,
    csrf_checked,
    error_page,
    flash,
    language,
    page_title,
    render,
    state,
    translator,
)

SCRIPT_PATH = "/static/letter.js"
FORM_PART_LIMIT = 256 * 1024  # the letter's field: MAX_LETTER_CHARS, percent-encoded
FORM_FIELDS = 10
LIMITS = {"max_fields": FORM_FIELDS, "max_part_size": FORM_PART_LIMIT}
SAVED = N_("The %(language)s letter is saved as version %(version)s and is in the next dossier.")
NOT_SAVED = N_("Not saved: correct the letter's problems first.")
CONFLICT = N_("Not saved: %(who)s saved version %(version)s after you opened the editor. The editor "
              "now shows that version; make your change again.")
NO_PREVIEW = N_("The first page cannot be drawn: %(reason)s")
LINE = N_("Line %(line)s")


def _lang_for(request: Request, campaign: Campaign) -> str:
    code = request.path_params.get("lang", "")
    if code not in campaign.languages:
        raise NotFound(code)
    return str(code)


def _language_names(request: Request) -> dict[str, str]:
    try:
        known = read_languages(state(request).app.settings.templates_dir)
        return {code: lang.name for code, lang in known.items()}
    except ConfigError:
        return {}


Preview = tuple[list[letters.LetterProblem], str | None, str | None]


def _preview(request: Request, campaign: Campaign, code: str, source: str) -> Preview:
    """(problems, the first page as a data: URL, why there is no picture)."""
    web = state(request)
    found = letters.problems(web.app, campaign, code, source, now=web.clock())
    if found:
        return found, None, None
    try:
        png = letters.preview_png(web.app, campaign, code, source, now=web.clock())
    except RenderError as exc:
        return [], None, str(exc)
    return [], "data:image/png;base64," + base64.b64encode(png).decode(), None


async def _page(request: Request, campaign: Campaign, code: str, *, source: str | None = None,
                based_on: int | None = None, status_code: int = 200) -> Response:
    web = state(request)
    shown = await blocking(letters.view, web.app, campaign, code)
    versions = await blocking(letters.history, web.app, campaign, code)
    text = shown.source if source is None else source
    problems, image, no_image = await blocking(_preview, request, campaign, code, text)
    tr = translator(request)
    names = _language_names(request)
    return render(request, "letter.html", status_code=status_code, campaign=campaign,
                  title=page_title(tr.gettext("Letter"), campaign.text(language(request)).title),
                  code=code, language_name=names.get(code, code), names=names, shown=shown, source=text,
                  based_on=shown.version if based_on is None else based_on, versions=versions,
                  problems=problems, image=image,
                  no_image=tr.gettext(NO_PREVIEW) % {"reason": no_image} if no_image else None,
                  edited=source is not None and source != shown.source)


async def first_letter(request: Request, user: str) -> Response:
    campaign = campaign_for(request)
    return RedirectResponse(f"/c/{campaign.slug}/letter/{campaign.languages[0]}", status_code=303)


async def letter_page(request: Request, user: str) -> Response:
    campaign = campaign_for(request)
    try:
        code = _lang_for(request, campaign)
    except NotFound:
        return error_page(request, 404, translator(request).gettext("No recipient reads this language."))
    return await _page(request, campaign, code)


async def post_letter(request: Request, user: str, form: FormData) -> Response:
    campaign = campaign_for(request)
    try:
        code = _lang_for(request, campaign)
    except NotFound:
        return error_page(request, 404, translator(request).gettext("No recipient reads this language."))
    source = str(form.get("source") or "").replace("\r\n", "\n")
    if form.get("action") != "save":
        return await _page(request, campaign, code, source=source, based_on=based_on(form))
    web = state(request)
    if based_on(form) < 0:  # no version named: not sent from the editor
        return error_page(request, 400, translator(request).gettext(EXPIRED))
    try:
        saved = await blocking(letters.save, web.app, campaign, code, source, based_on=based_on(form),
                               actor=actor(user), now=web.clock())
    except letters.LetterInvalid:
        flash(request, "error", translator(request).gettext(NOT_SAVED))
        return await _page(request, campaign, code, source=source, based_on=based_on(form), status_code=400)
    except letters.LetterConflict as exc:
        return _conflict(request, campaign, code, exc)
    except UsageError:  # the form names a version that never was: not sent from the editor
        return error_page(request, 400, translator(request).gettext(EXPIRED))
    return await _saved(request, saved, code)


def _conflict(request: Request, campaign: Campaign, code: str, exc: letters.LetterConflict) -> Response:
    flash(request, "error", translator(request).gettext(CONFLICT) % {
        "who": exc.version.actor.removeprefix("web:"), "version": exc.version.version})
    return RedirectResponse(f"/c/{campaign.slug}/letter/{code}", status_code=303)


async def _saved(request: Request, saved: Campaign, code: str) -> Response:
    version = (await blocking(letters.history, state(request).app, saved, code))[0].version
    flash(request, "ok", translator(request).gettext(SAVED) % {
        "language": _language_names(request).get(code, code), "version": version})
    return RedirectResponse(f"/c/{saved.slug}/letter/{code}", status_code=303)


async def preview_json(request: Request, user: str) -> Response:
    form = await checked_form(request, max_fields=FORM_FIELDS, max_part_size=FORM_PART_LIMIT)
    if form is None:
        return JSONResponse({"error": translator(request).gettext(EXPIRED)}, status_code=403)
    campaign = campaign_for(request)
    try:
        code = _lang_for(request, campaign)
    except NotFound:
        return JSONResponse({"error": "no recipient reads this language"}, status_code=404)
    source = str(form.get("source") or "").replace("\r\n", "\n")
    problems, image, no_image = await blocking(_preview, request, campaign, code, source)
    tr = translator(request)
    shown = [asdict(p) | {"where": tr.gettext(LINE) % {"line": p.line} if p.line else ""} for p in problems]
    why = tr.gettext(NO_PREVIEW) % {"reason": no_image} if no_image else None
    return JSONResponse({"problems": shown, "image": image, "no_image": why},
                        headers={"cache-control": "no-store"})


async def restore(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    tr = translator(request)
    chosen = str(form.get("version") or "")
    version = int(chosen) if chosen.isdigit() else -1
    try:
        code = _lang_for(request, campaign)
        saved = await blocking(letters.restore, web.app, campaign, code, version, based_on=based_on(form),
                               actor=actor(user), now=web.clock())
    except NotFound:
        return error_page(request, 404, tr.gettext("There is no such version."))
    except letters.LetterInvalid:  # valid when saved, not with today's templates
        flash(request, "error", tr.gettext(NOT_SAVED))
        source = await blocking(letters.version_source, web.app, campaign, code, version)
        return await _page(request, campaign, code, source=source, based_on=based_on(form), status_code=400)
    except letters.LetterConflict as exc:
        return _conflict(request, campaign, code, exc)
    except UsageError:
        return error_page(request, 400, tr.gettext(EXPIRED))
    return await _saved(request, saved, code)


async def script(request: Request) -> Response:
    path = admin_asset(state(request).app, "letter.js")
    body = path.read_bytes() if path else b""
    return Response(body, media_type="text/javascript", headers={"cache-control": "max-age=3600"})


routes = [
    Route("/c/{slug}/letter", owner_required(first_letter), methods=["GET"]),
    Route("/c/{slug}/letter/{lang}", owner_required(letter_page), methods=["GET"]),
    Route("/c/{slug}/letter/{lang}", owner_required(csrf_checked(post_letter, **LIMITS)),
          methods=["POST"]),
    Route("/c/{slug}/letter/{lang}/preview", owner_required(preview_json), methods=["POST"]),
    Route("/c/{slug}/letter/{lang}/restore", owner_required(csrf_checked(restore, **LIMITS)),
          methods=["POST"]),
    Route(SCRIPT_PATH, script, methods=["GET"]),
]
