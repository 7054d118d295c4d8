"""An owner's settings form, or a version to restore → a new version of the campaign's settings,
through delivery.services.campaign_settings (audited "campaign.settings" with actor "web:NAME");
the settings in force and their versions → the Settings page.

GET  /c/{slug}/settings          the form (title, goal, milestones, schedule, recipients,
                                 organizers) and every version with who made it and what changed
POST /c/{slug}/settings          save the form as a new version
POST /c/{slug}/settings/restore  save an earlier version's settings as a new version

A refusal is shown beside its field and summed up at the top, and nothing is saved; a form opened
before someone else saved is refused with their name, showing what is now in force. Organizers
get a 403 page here.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from delivery.campaigns import form as settings_form
from delivery.campaigns.config import DELIVERY_MODES, Campaign
from delivery.campaigns.languages import N_, Language, read_languages
from delivery.errors import ConfigError, NotFound, UsageError
from delivery.services import campaign_settings
from delivery.web.accounts import owner_required
from delivery.web.common import (
    EXPIRED,
    actor,
    based_on,
    blocking,
    campaign_for,
    csrf_checked,
    error_page,
    flash,
    language,
    page_title,
    render,
    state,
    translator,
)

MAX_FIELDS = 20 + (settings_form.MAX_RECIPIENTS + 1) * 40
SAVED = N_("Saved as version %(version)s: in force now here, and in every other instance of the "
           "service at its next check.")
RESTORED = N_("Version %(restored)s is in force again, saved as version %(version)s.")
CONFLICT = N_("Not saved: %(who)s saved version %(version)s at %(at)s, after you opened this form. "
              "The form now shows what is in force; make your change again.")
# the form's own refusals (delivery.campaigns.form), here for the catalogs
FORM_TEXTS = {
    settings_form.WHOLE_NUMBER: N_("write a whole number, like 80000"),
    settings_form.THRESHOLDS_BAD: N_("write whole numbers separated by commas, like 1000, 5000, 10000"),
    settings_form.BYTES_BAD: N_("write a number of bytes, like 10000000"),
    settings_form.MISSING_TEXT: N_("a recipient reads this language: give the text in it too"),
}
DELIVERY_WORDS = {"auto": N_("automatic: a link when the dossier needs more than one e-mail"),
                  "attachment": N_("attachments"), "link": N_("a download link")}
ORIGIN_WORDS = {campaign_settings.FILE: N_("campaign file"), campaign_settings.ADMIN: N_("web admin"),
                campaign_settings.RESTORE: N_("restored")}


def _languages(request: Request) -> dict[str, Language]:
    try:
        return read_languages(state(request).app.settings.templates_dir)
    except ConfigError:
        return {}


def _labels(request: Request, campaign_languages: dict[str, Language], blocks: int) -> dict[str, str]:
    """Each field's label, for the summary of refusals at the top."""
    tr = translator(request)
    labels = {"goal": tr.gettext("Goal (signatures)"), "thresholds": tr.gettext("Milestones"),
              "check_every": tr.gettext("Check for milestones every"), "timezone": tr.gettext("Time zone"),
              "send_window": tr.gettext("Send window"), "hold": tr.gettext("Hold before sending"),
              "organizers": tr.gettext("Organizers in copy"), "recipients": tr.gettext("Recipients")}
    for code, lang in campaign_languages.items():
        labels[f"title-{code}"] = tr.gettext("Title (%(language)s)") % {"language": lang.name}
    for i in range(blocks):
        n = {"n": i + 1}
        labels |= {f"r{i}-email": tr.gettext("Recipient %(n)s: e-mail") % n,
                   f"r{i}-language": tr.gettext("Recipient %(n)s: language") % n,
                   f"r{i}-delivery": tr.gettext("Recipient %(n)s: delivery") % n,
                   f"r{i}-max_message_size": tr.gettext("Recipient %(n)s: largest e-mail") % n}
        for code, lang in campaign_languages.items():
            m = {"n": i + 1, "language": lang.name}
            labels[f"r{i}-name-{code}"] = tr.gettext("Recipient %(n)s: name (%(language)s)") % m
            labels[f"r{i}-title-{code}"] = tr.gettext("Recipient %(n)s: position (%(language)s)") % m
    return labels


async def _page(request: Request, campaign: Campaign, *, values: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, based_on: int | None = None,
                status_code: int = 200) -> Response:
    web = state(request)
    languages = _languages(request)
    versions = await blocking(campaign_settings.history, web.app, campaign)
    current = versions[0].version if versions else 0
    values = values or settings_form.form_values(campaign, list(languages))
    blocks = settings_form.recipient_blocks(values)
    tr = translator(request)
    return render(request, "settings.html", status_code=status_code, campaign=campaign,
                  title=page_title(tr.gettext("Settings"), campaign.text(language(request)).title),
                  values=values, errors=errors or {}, blocks=blocks,
                  labels=_labels(request, languages, len(blocks)),
                  edition_languages=languages, based_on=current if based_on is None else based_on,
                  versions=versions, current=current,
                  delivery_modes=[(m, tr.gettext(DELIVERY_WORDS[m])) for m in DELIVERY_MODES],
                  origins={k: tr.gettext(v) for k, v in ORIGIN_WORDS.items()})


async def settings_page(request: Request, user: str) -> Response:
    return await _page(request, campaign_for(request))


async def save(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    posted = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    tr = translator(request)
    if based_on(form) < 0:  # no version named: not sent from this page
        return error_page(request, 400, tr.gettext(EXPIRED))
    try:
        saved = await blocking(campaign_settings.save, web.app, campaign, posted, based_on=based_on(form),
                               languages=list(_languages(request)), actor=actor(user), now=web.clock())
    except campaign_settings.FormInvalid as exc:
        errors = {name: tr.gettext(FORM_TEXTS.get(problem, problem)) for name, problem in exc.errors.items()}
        return await _page(request, campaign, values=posted, errors=errors, based_on=based_on(form),
                           status_code=400)
    except campaign_settings.SettingsConflict as exc:
        return _conflict(request, campaign, exc.version)
    except UsageError:  # the form names a version that never was: not sent from this page
        return error_page(request, 400, tr.gettext(EXPIRED))
    versions = await blocking(campaign_settings.history, web.app, saved)
    flash(request, "ok", tr.gettext(SAVED) % {"version": versions[0].version})
    return RedirectResponse(f"/c/{campaign.slug}/settings", status_code=303)


def _conflict(request: Request, campaign: Campaign, version: campaign_settings.SettingsVersion) -> Response:
    """Back to the form, which now shows what is in force, saying who saved it meanwhile."""
    when = state(request).languages[language(request)].templates.filters["when"]
    flash(request, "error", translator(request).gettext(CONFLICT) % {
        "who": version.actor.removeprefix("web:"), "version": version.version,
        "at": when(version.created_at)})
    return RedirectResponse(f"/c/{campaign.slug}/settings", status_code=303)


async def restore(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    chosen = str(form.get("version") or "")
    target = f"/c/{campaign.slug}/settings"
    tr = translator(request)
    try:
        restored = int(chosen) if chosen.isdigit() else -1
        saved = await blocking(campaign_settings.restore, web.app, campaign, restored,
                               based_on=based_on(form), actor=actor(user), now=web.clock())
    except campaign_settings.SettingsConflict as exc:
        return _conflict(request, campaign, exc.version)
    except NotFound:
        return error_page(request, 404, tr.gettext("There is no such version."))
    except UsageError:
        return error_page(request, 400, tr.gettext(EXPIRED))
    except campaign_settings.FormInvalid as exc:  # valid when saved, not with today's templates
        flash(request, "error", "; ".join(exc.errors.values()))
        return RedirectResponse(target, status_code=303)
    except ConfigError as exc:  # valid when saved, not under today's rules
        flash(request, "error", str(exc))
        return RedirectResponse(target, status_code=303)
    versions = await blocking(campaign_settings.history, web.app, saved)
    flash(request, "ok", tr.gettext(RESTORED) % {"restored": restored, "version": versions[0].version})
    return RedirectResponse(target, status_code=303)


routes = [
    Route("/c/{slug}/settings", owner_required(settings_page), methods=["GET"]),
    Route("/c/{slug}/settings", owner_required(csrf_checked(save, max_fields=MAX_FIELDS)), methods=["POST"]),
    Route("/c/{slug}/settings/restore", owner_required(csrf_checked(restore)), methods=["POST"]),
]
