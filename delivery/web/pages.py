"""GET requests → the admin's pages: campaign picker, dashboard, deliveries, a delivery and its
files, signers, audit log. Reads only; every number comes from reports/queries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from babel.dates import format_timedelta
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from delivery.campaigns.config import Campaign
from delivery.campaigns.languages import N_
from delivery.campaigns.milestones import next_milestone
from delivery.dossier import charts
from delivery.errors import UsageError
from delivery.services import queries, readiness, reports, signers
from delivery.services.states import ACTIVE, organizer_actions
from delivery.web.common import (
    WebState,
    blocking,
    campaign_for,
    campaign_title,
    country_name,
    error_page,
    language,
    locale_of,
    login_required,
    number,
    page_title,
    render,
    state,
    translator,
    when,
)

REFRESH_SECONDS = 3

# What each readiness finding means and what to do about it (delivery.services.readiness).
READINESS = {
    "reserved_recipients": N_("Recipients on example addresses, which reach no one: "
                              "%(addresses)s. An owner puts the offices' real addresses on the "
                              "Settings page."),
    "no_signing_key": N_("No signing key: this campaign requires signed dossiers, so nothing "
                         "can be sent. An owner uploads the certificate on the Signing page "
                         "(/signing), or sets DELIVERY_SIGNING_KEY and DELIVERY_SIGNING_CERT."),
    "signing_key_unusable": N_("The signing key cannot be used (%(reason)s): nothing can be "
                               "sent until it is replaced."),
    "signing_key_expires": N_("The signing certificate expires on %(at)s: renew it before then, "
                              "or dossiers cannot be signed."),
    "link_needs_public_url": N_("%(addresses)s take the dossier as a download link, but the "
                                "service has no public address: nothing can be sent to them. Set "
                                "DELIVERY_PUBLIC_URL to the address recipients reach this service at."),
    "texts_missing": N_("Texts in %(languages)s are missing or broken (%(what)s): no dossier can "
                        "be built for the recipients who read them. Put the files back in the "
                        "templates folder, or run `make translations` for a catalog."),
    "no_smtp": N_("No SMTP server: e-mails are written to the folder %(folder)s and reach no one. "
                  "Set DELIVERY_SMTP_HOST."),
    "milestone_waits": N_("A milestone's delivery waits %(hold)s (the hold) and goes out only "
                          "within %(window)s (%(timezone)s)."),
    "milestone_held": N_("A milestone's delivery waits %(hold)s (the hold) before it goes out."),
    "milestone_window": N_("A milestone's delivery goes out only within %(window)s "
                           "(%(timezone)s)."),
}


async def home(request: Request, user: str) -> Response:
    web = state(request)
    if len(web.app.campaigns) == 1:
        only = next(iter(web.app.campaigns))
        return RedirectResponse(f"/c/{only}/", status_code=303)
    rows = await blocking(_overview, web, language(request))
    return render(request, "campaigns.html", title=translator(request).gettext("Campaigns"), rows=rows)


def _overview(web: WebState, code: str) -> list[dict[str, Any]]:
    out = []
    for campaign in sorted(web.app.campaigns.values(), key=lambda c: campaign_title(c, code).casefold()):
        try:
            count: int | None = signers.count(web.app, campaign)
        except UsageError:  # a campaign file not loaded into the database yet (`init` not rerun)
            count = None
        out.append({"campaign": campaign, "signers": count})
    return out


def _dashboard_data(web: WebState, campaign: Campaign, locale: str) -> dict[str, Any]:
    status = reports.status(web.app, campaign, now=web.clock())
    points = queries.growth(web.app, campaign)
    found = readiness.readiness(web.app, campaign, now=web.clock())
    reached = {m.threshold: m for m in status.milestones_reached}
    milestones = [{"threshold": t, "reached": reached.get(t)} for t in sorted(campaign.thresholds)]
    return {"status": status, "milestones": milestones, "readiness": found,
            "chart": charts.line_chart(points, fmt=lambda n: number(n, locale)),
            "next": next_milestone(status.signers, campaign.thresholds)}


async def dashboard(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    data = await blocking(_dashboard_data, web, campaign, locale_of(request))
    tr = translator(request)
    data["readiness"] = [(f.severity, tr.gettext(READINESS[f.code]) % _shown(f, request))
                         for f in data["readiness"]]
    return render(request, "dashboard.html", title=campaign_title(campaign, language(request)),
                  campaign=campaign, **data)


def _shown(finding: readiness.Finding, request: Request) -> dict[str, str]:
    """A finding's facts as the page's language writes them (times, durations)."""
    facts = dict(finding.facts)
    if "at" in facts:
        facts["at"] = when(facts["at"], locale_of(request))
    if "hold_seconds" in facts:
        facts["hold"] = exact_duration(int(facts.pop("hold_seconds")), locale_of(request))
    return facts


def exact_duration(seconds: int, locale: str) -> str:
    """A duration in the largest unit that writes it exactly ("2 часа", "90 minutes"): Babel
    rounds to the largest unit otherwise (90 minutes → "2 hours")."""
    size = next(size for size in (86400, 3600, 60, 1) if seconds % size == 0)
    # this threshold makes Babel pass over every larger unit and take this one
    return format_timedelta(timedelta(seconds=seconds), threshold=max(1, seconds // size),
                            locale=locale)


async def deliveries(request: Request, user: str) -> Response:
    campaign = campaign_for(request)
    rows = await blocking(reports.deliveries, state(request).app, campaign, now=state(request).clock())
    title = page_title(translator(request).gettext("Deliveries"), campaign_title(campaign, language(request)))
    return render(request, "deliveries.html", title=title, campaign=campaign, deliveries=rows)


async def delivery(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    ref = request.path_params["ref"]
    tr = translator(request)
    found = await blocking(reports.delivery, web.app, campaign, ref, now=web.clock())
    if found is None:
        return error_page(request, 404, tr.gettext("There is no delivery %(ref)s in this campaign.")
                          % {"ref": ref[:40]})
    job = web.jobs.get(request.query_params.get("job", ""), "send", campaign.slug)
    refresh = found.status in ACTIVE or bool(job and not job.finished)
    return render(request, "delivery.html", title=tr.gettext("Delivery %(ref)s") % {"ref": ref},
                  campaign=campaign, d=found, job=job,
                  refresh=REFRESH_SECONDS if refresh else None, dossiers=found.dossier_messages,
                  alerts=found.alert_messages, can=organizer_actions(found.status))


async def delivery_file(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)

    found = await blocking(queries.delivery_file, web.app, campaign, request.path_params["ref"],
                           request.path_params["name"])
    if found is None:
        return error_page(request, 404, translator(request).gettext("No such file in this delivery."))
    return file_response(found.name, found.data, download=request.query_params.get("download") == "1")


def file_response(name: str, data: bytes, *, download: bool) -> Response:
    media = {"pdf": "application/pdf", "json": "application/json",
             "p7s": "application/pkcs7-signature"}.get(name.rsplit(".", 1)[-1].lower(),
                                                        "application/octet-stream")
    ascii_name = "".join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\;' else "_" for ch in name)
    disposition = "attachment" if download or media == "application/octet-stream" else "inline"
    return Response(data, media_type=media, headers={
        "content-disposition": f'{disposition}; filename="{ascii_name}"',
        # A PDF viewer needs its own room: the admin's page CSP would block it.
        "content-security-policy": "default-src 'none'; object-src 'self'; "
                                   "frame-ancestors 'self'"})


async def signers_page(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    text = request.query_params.get("q", "").strip()[:100]
    tr, locale = translator(request), locale_of(request)

    def load() -> dict[str, Any]:
        by_country = queries.countries(web.app, campaign)
        found = queries.search_signers(web.app, campaign, text) if text else None
        withdrawn = queries.withdrawn_count(web.app, campaign)
        shown = [(country_name(c, locale), n) for c, n in by_country]
        return {"by_country": by_country, "found": found, "withdrawn": withdrawn,
                "total": sum(n for _, n in by_country),
                "chart": charts.bar_chart(charts.top_rows(shown, 15, tr.gettext("Other")),
                                          fmt=lambda n: number(n, locale))}

    data = await blocking(load)
    return render(request, "signers.html", campaign=campaign, q=text, limit=queries.SEARCH_LIMIT,
                  title=page_title(tr.gettext("Signers"), campaign_title(campaign, language(request))),
                  **data)


async def audit_log(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    before_text = request.query_params.get("before", "")
    before = int(before_text) if before_text.isdigit() and len(before_text) < 19 else None

    rows = await blocking(queries.audit_page, web.app, campaign, before=before)
    older = rows[-1].id if len(rows) == queries.AUDIT_PAGE else None
    title = page_title(translator(request).gettext("Audit log"), campaign_title(campaign, language(request)))
    return render(request, "audit.html", title=title, campaign=campaign, rows=rows, older=older)


routes = [
    Route("/", login_required(home), methods=["GET"]),
    Route("/c/{slug}/", login_required(dashboard), methods=["GET"]),
    Route("/c/{slug}/deliveries", login_required(deliveries), methods=["GET"]),
    Route("/c/{slug}/deliveries/{ref}", login_required(delivery), methods=["GET"]),
    Route("/c/{slug}/deliveries/{ref}/files/{name}", login_required(delivery_file), methods=["GET"]),
    Route("/c/{slug}/signers", login_required(signers_page), methods=["GET"]),
    Route("/c/{slug}/audit", login_required(audit_log), methods=["GET"]),
]
