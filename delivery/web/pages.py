"""GET requests → the admin's pages: campaign picker, dashboard, deliveries, a delivery and its
files, signers, audit log. Reads only; every number comes from reports/queries.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from delivery.campaigns.config import Campaign
from delivery.campaigns.milestones import next_milestone
from delivery.dossier import charts
from delivery.errors import UsageError
from delivery.services import queries, reports, signers
from delivery.services.states import ACTIVE, organizer_actions
from delivery.web.common import WebState, blocking, campaign_for, error_page, login_required, render, state

REFRESH_SECONDS = 3


async def home(request: Request, user: str) -> Response:
    web = state(request)
    if len(web.app.campaigns) == 1:
        only = next(iter(web.app.campaigns))
        return RedirectResponse(f"/c/{only}/", status_code=303)
    rows = await blocking(_overview, web)
    return render(request, "campaigns.html", title="Campaigns", rows=rows)


def _overview(web: WebState) -> list[dict[str, Any]]:
    out = []
    for campaign in sorted(web.app.campaigns.values(), key=lambda c: c.title):
        try:
            count: int | None = signers.count(web.app, campaign)
        except UsageError:  # a campaign file not loaded into the database yet (`init` not rerun)
            count = None
        out.append({"campaign": campaign, "signers": count})
    return out


def _dashboard_data(web: WebState, campaign: Campaign) -> dict[str, Any]:
    status = reports.status(web.app, campaign)
    points = queries.growth(web.app, campaign)
    reached = {m.threshold: m for m in status.milestones_reached}
    milestones = [{"threshold": t, "reached": reached.get(t)} for t in sorted(campaign.thresholds)]
    return {"status": status, "milestones": milestones,
            "chart": charts.line_chart(points, fmt=lambda n: f"{n:,}"),
            "next": next_milestone(status.signers, campaign.thresholds)}


async def dashboard(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    data = await blocking(_dashboard_data, web, campaign)
    return render(request, "dashboard.html", title=campaign.title, campaign=campaign, **data)


async def deliveries(request: Request, user: str) -> Response:
    campaign = campaign_for(request)
    rows = await blocking(reports.deliveries, state(request).app, campaign)
    return render(request, "deliveries.html", title=f"Deliveries · {campaign.title}", campaign=campaign,
                  deliveries=rows)


async def delivery(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    ref = request.path_params["ref"]
    found = await blocking(reports.delivery, web.app, campaign, ref)
    if found is None:
        return error_page(request, 404, f"There is no delivery {ref[:40]} in this campaign.")
    job = web.jobs.get(request.query_params.get("job", ""), "send", campaign.slug)
    refresh = found.status in ACTIVE or bool(job and not job.finished)
    return render(request, "delivery.html", title=f"Delivery {ref}", campaign=campaign, d=found, job=job,
                  refresh=REFRESH_SECONDS if refresh else None, dossiers=found.dossier_messages,
                  alerts=found.alert_messages, can=organizer_actions(found.status))


async def delivery_file(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)

    found = await blocking(queries.delivery_file, web.app, campaign, request.path_params["ref"],
                           request.path_params["name"])
    if found is None:
        return error_page(request, 404, "No such file in this delivery.")
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

    def load() -> dict[str, Any]:
        by_country = queries.countries(web.app, campaign)
        found = queries.search_signers(web.app, campaign, text) if text else None
        withdrawn = queries.withdrawn_count(web.app, campaign)
        return {"by_country": by_country, "found": found, "withdrawn": withdrawn,
                "total": sum(n for _, n in by_country),
                "chart": charts.bar_chart(charts.top_rows(by_country, 15, "Other"), fmt=lambda n: f"{n:,}")}

    data = await blocking(load)
    return render(request, "signers.html", title=f"Signers · {campaign.title}", campaign=campaign, q=text,
                  limit=queries.SEARCH_LIMIT, **data)


async def audit_log(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    before_text = request.query_params.get("before", "")
    before = int(before_text) if before_text.isdigit() and len(before_text) < 19 else None

    rows = await blocking(queries.audit_page, web.app, campaign, before=before)
    older = rows[-1].id if len(rows) == queries.AUDIT_PAGE else None
    return render(request, "audit.html", title=f"Audit log · {campaign.title}", campaign=campaign, rows=rows,
                  older=older)


routes = [
    Route("/", login_required(home), methods=["GET"]),
    Route("/c/{slug}/", login_required(dashboard), methods=["GET"]),
    Route("/c/{slug}/deliveries", login_required(deliveries), methods=["GET"]),
    Route("/c/{slug}/deliveries/{ref}", login_required(delivery), methods=["GET"]),
    Route("/c/{slug}/deliveries/{ref}/files/{name}", login_required(delivery_file), methods=["GET"]),
    Route("/c/{slug}/signers", login_required(signers_page), methods=["GET"]),
    Route("/c/{slug}/audit", login_required(audit_log), methods=["GET"]),
]
