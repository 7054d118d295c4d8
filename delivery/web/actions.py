"""Posted forms (CSRF-checked) → the same service calls as the CLI: preview, send now, cancel,
release, retry, withdraw a signer, resume a paused SMTP account. Each is audited by the service
with actor "web:NAME".

In a campaign with require_second_approval, a confirmed Send now is a request (services.approvals)
that another account approves, or anyone cancels, on the send page; the approval sends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from delivery.campaigns.config import Campaign
from delivery.campaigns.languages import N_
from delivery.errors import DeliveryError, NotFound, StateConflict, UsageError
from delivery.services import approvals, deliveries, links, sending, signers
from delivery.services.deliveries import DeliveryRef
from delivery.web.common import (
    WebState,
    actor,
    blocking,
    campaign_for,
    campaign_title,
    csrf_checked,
    csrf_token,
    error_page,
    flash,
    language,
    login_required,
    page_title,
    render,
    state,
    translator,
    when_filter,
)
from delivery.web.jobs import Job
from delivery.web.pages import REFRESH_SECONDS, file_response

if TYPE_CHECKING:
    from delivery.services.preview import PreviewResult

_REF = re.compile(r"[A-Za-z0-9-]{1,40}")
_SEND_KEY = re.compile(r"([A-Za-z0-9_-]{24})\.[0-9a-f]{64}")
SEND_REPLAYED = N_("This confirmation was used already: nothing was sent twice. "
                   "This is the delivery it made.")
DONE_TEXT = {"cancel": N_("Delivery %(ref)s cancelled: nothing more will be sent."),
             "release": N_("Delivery %(ref)s released: it is being built and sent now."),
             "retry": N_("Delivery %(ref)s queued again: it is being retried now.")}


# Request key → its send job, for a replay to show the first request's progress.
MAX_REMEMBERED_SENDS = 1000


async def delivery_action(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    ref, action = request.path_params["ref"], request.path_params["action"]
    tr = translator(request)
    if action not in deliveries.ACTIONS:
        return error_page(request, 404, tr.gettext("No such action."))
    # deliveries.find_delivery reads an all-digit ref as a row id; keep those within an INTEGER.
    if not _REF.fullmatch(ref) or (ref.isdigit() and len(ref) > 9):
        return error_page(request, 404, tr.gettext("No such delivery."))
    try:
        public_id = await blocking(deliveries.change, web.app, campaign, action, ref, now=web.clock(),
                                   actor=actor(user))
    except NotFound as exc:
        return error_page(request, 404, str(exc))
    except (StateConflict, UsageError) as exc:
        flash(request, "error", str(exc))
        return RedirectResponse(f"/c/{campaign.slug}/deliveries/{ref}", status_code=303)
    flash(request, "ok", tr.gettext(DONE_TEXT[action]) % {"ref": public_id})
    target = f"/c/{campaign.slug}/deliveries/{public_id}"
    if deliveries.needs_work_now(action):
        def work(job: Job) -> None:
            deliveries.tick(web.app, campaign, now=web.clock(), progress=job.progress)

        job = web.jobs.start("send", campaign.slug, actor(user), work)
        target += f"?job={job.id}"
    return RedirectResponse(target, status_code=303)


LINK_DONE = {"extend": N_("The link to %(who)s now works until %(when)s."),
             "revoke": N_("The link to %(who)s was withdrawn: it gives no files any more.")}


async def link_action(request: Request, user: str, form: FormData) -> Response:
    """Extend (by the campaign's link_expiry) or revoke one recipient's download link."""
    web = state(request)
    campaign = campaign_for(request)
    ref, action = request.path_params["ref"], request.path_params["action"]
    tr = translator(request)
    recipient = str(form.get("recipient", ""))[:320]
    if action not in LINK_DONE or not _REF.fullmatch(ref):
        return error_page(request, 404, tr.gettext("No such action."))
    try:
        if action == "extend":
            until = await blocking(links.extend, web.app, campaign, ref, recipient, by=campaign.link_expiry,
                                   now=web.clock(), actor=actor(user))
            text = tr.gettext(LINK_DONE[action]) % {"who": recipient, "when": when_filter(request)(until)}
        else:
            await blocking(links.revoke, web.app, campaign, ref, recipient, now=web.clock(),
                           actor=actor(user))
            text = tr.gettext(LINK_DONE[action]) % {"who": recipient}
    except NotFound as exc:
        return error_page(request, 404, str(exc))
    except StateConflict as exc:
        flash(request, "error", str(exc))
    else:
        flash(request, "ok", text)
    return RedirectResponse(f"/c/{campaign.slug}/deliveries/{ref}", status_code=303)


async def preview_start(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    folder = Path(tempfile.mkdtemp(prefix=f"pd-preview-{campaign.slug}-"))

    def work(job: Job) -> PreviewResult:
        from delivery.services.preview import preview

        return preview(web.app, campaign, out_dir=folder, now=web.clock(), progress=job.progress)

    # One preview of a campaign at a time: each takes the CPU of a whole build.
    job, started = web.jobs.start_once("preview", campaign.slug, actor(user), work)
    if started:
        job.cleanup = lambda: shutil.rmtree(folder, ignore_errors=True)
    else:
        folder.rmdir()
        flash(request, "info", translator(request).gettext(
            "A preview is being built already (started by %(actor)s): this is it.") % {"actor": job.actor})
    return RedirectResponse(f"/c/{campaign.slug}/preview/{job.id}", status_code=303)


async def preview_page(request: Request, user: str) -> Response:
    campaign = campaign_for(request)
    job = state(request).jobs.get(request.path_params["job"], "preview", campaign.slug)
    tr = translator(request)
    if job is None:
        return error_page(request, 404, tr.gettext("This preview is gone (the service restarted or it is "
                                                   "old). Make a new one from the dashboard."))
    return render(request, "preview.html", campaign=campaign, job=job,
                  title=page_title(tr.gettext("Preview"), campaign_title(campaign, language(request))),
                  refresh=None if job.finished else REFRESH_SECONDS)


async def preview_file(request: Request, user: str) -> Response:
    campaign = campaign_for(request)
    job = state(request).jobs.get(request.path_params["job"], "preview", campaign.slug)
    name = request.path_params["name"]
    tr = translator(request)
    if job is None or not job.finished or job.result is None:
        return error_page(request, 404, tr.gettext("No such preview."))
    result: PreviewResult = job.result
    # only the files the preview listed: no path from the URL reaches the disk
    if name not in {f.name for f in result.files}:
        return error_page(request, 404, tr.gettext("No such file in this preview."))
    data = await blocking((Path(result.folder) / name).read_bytes)
    return file_response(name, data, download=request.query_params.get("download") == "1")


async def send_page(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    title = page_title(translator(request).gettext("Send now"), campaign_title(campaign, language(request)))
    waiting = await blocking(approvals.pending, web.app, campaign) if campaign.require_second_approval else []
    count = await blocking(signers.count, web.app, campaign) if waiting else 0
    return render(request, "send.html", title=title, campaign=campaign,
                  chosen={r.email for r in campaign.recipients}, waiting=waiting, signer_count=count,
                  names={r.email: r.text(language(request)).name for r in campaign.recipients})


async def send(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    to = [str(v) for v in form.getlist("to")]
    tr = translator(request)
    title = page_title(tr.gettext("Send now"), campaign_title(campaign, language(request)))
    try:
        recipients = deliveries.pick_recipients(campaign, to) if to else []
    except UsageError as exc:
        return render(request, "send.html", status_code=400, title=title, campaign=campaign,
                      chosen=set(to), error=str(exc))
    if not recipients:
        return render(request, "send.html", status_code=400, title=title, campaign=campaign,
                      chosen=set(), error=tr.gettext("Choose at least one recipient."))
    emails = [r.email for r in recipients]
    if form.get("step") != "confirm":
        key = _send_key(request, web, campaign, user, emails, secrets.token_urlsafe(18))
        count = await blocking(signers.count, web.app, campaign)
        return render(request, "send_confirm.html", title=tr.gettext("Confirm sending"), campaign=campaign,
                      recipients=recipients, signer_count=count, nonce=key)
    request_key = _checked_send_key(request, web, campaign, user, emails, form.get("nonce"))
    if request_key is None:
        flash(request, "error", tr.gettext("This confirmation was used already or has expired: nothing "
                                           "was sent twice. See the deliveries below."))
        return RedirectResponse(f"/c/{campaign.slug}/deliveries", status_code=303)
    if campaign.require_second_approval:
        made = await blocking(approvals.request_send, web.app, campaign, to=emails, requested_by=user,
                              request_key=request_key, now=web.clock(), actor=actor(user))
        flash(request, "info", tr.gettext(REQUEST_REPLAYED if made.replayed else REQUESTED))
        return RedirectResponse(f"/c/{campaign.slug}/send", status_code=303)
    return await _start_send(request, web, campaign, emails, user, request_key)


REQUESTED = N_("Your request to send waits for another account's approval: nothing is sent until "
               "someone else approves it on this page.")
REQUEST_REPLAYED = N_("This confirmation was used already: its request waits for approval below, "
                      "nothing was asked twice.")
REQUEST_DONE = {"cancel": N_("The send request was cancelled: nothing was sent.")}


async def send_request(request: Request, user: str, form: FormData) -> Response:
    """Approve (another account than the one who asked: then it is sent) or cancel a send request."""
    web = state(request)
    campaign = campaign_for(request)
    tr = translator(request)
    number, action = request.path_params["request"], request.path_params["action"]
    if action not in ("approve", "cancel") or not number.isdigit() or len(number) > 9:
        return error_page(request, 404, tr.gettext("No such action."))
    who = actor(user)
    try:
        if action == "cancel":
            await blocking(approvals.cancel, web.app, campaign, int(number), by=user, now=web.clock(),
                           actor=who)
            flash(request, "ok", tr.gettext(REQUEST_DONE["cancel"]))
            return RedirectResponse(f"/c/{campaign.slug}/send", status_code=303)
        ref = await blocking(approvals.approve, web.app, campaign, int(number), approver=user,
                             now=web.clock(), actor=who)
    except NotFound as exc:
        return error_page(request, 404, str(exc))
    except (StateConflict, UsageError) as exc:
        flash(request, "error", str(exc))
        return RedirectResponse(f"/c/{campaign.slug}/send", status_code=303)
    return _run_send(request, web, campaign, ref, who, f"approval-{campaign.slug}-{number}")


def _send_key(request: Request, web: WebState, campaign: Campaign, user: str, emails: list[str],
              nonce: str) -> str:
    """A confirmation's key: a server-made nonce and its MAC over this session's CSRF token, the
    user, the campaign and the recipients shown. The nonce alone is the delivery's request_key; the
    MAC keeps a client from choosing it (and so from landing on, or blocking, another's request)
    and from confirming other recipients than those it was shown. Nothing is kept on the server:
    a replay of the form, from any instance, checks out the same and finds the first delivery."""
    bound = json.dumps(["send-request", campaign.slug, user, csrf_token(request), nonce, emails])
    mac = hmac.new(web.config.secret_key.encode(), bound.encode(), hashlib.sha256).hexdigest()
    return f"{nonce}.{mac}"


def _checked_send_key(request: Request, web: WebState, campaign: Campaign, user: str, emails: list[str],
                      sent: object) -> str | None:
    """The request key (the nonce) of a confirmation made for this session and these recipients."""
    match = _SEND_KEY.fullmatch(sent) if isinstance(sent, str) else None
    if match is None:
        return None
    expected = _send_key(request, web, campaign, user, emails, match.group(1))
    return match.group(1) if hmac.compare_digest(expected.encode(), match.group(0).encode()) else None


async def _start_send(request: Request, web: WebState, campaign: Campaign, to: list[str],
                      user: str, request_key: str) -> Response:
    who = actor(user)
    ref = await blocking(deliveries.create_manual, web.app, campaign, now=web.clock(), to=to, actor=who,
                         request_key=request_key)
    return _run_send(request, web, campaign, ref, who, request_key)


def _run_send(request: Request, web: WebState, campaign: Campaign, ref: DeliveryRef, who: str,
              request_key: str) -> Response:
    """Build and send the delivery just made, in a job; a replay only shows it."""
    target = f"/c/{campaign.slug}/deliveries/{ref.public_id}"
    if ref.replayed:
        # The first request builds and sends it; this one only shows it, with the first's job
        # when that runs in this process (a replay landing on another instance shows the page).
        flash(request, "ok", translator(request).gettext(SEND_REPLAYED))
        job = web.jobs.get(web.send_nonces.get(request_key, ""), "send", campaign.slug)
        return RedirectResponse(target + (f"?job={job.id}" if job else ""), status_code=303)

    def work(job: Job) -> bool:
        return deliveries.build_and_send(web.app, ref.id, now=web.clock(), progress=job.progress)

    job = web.jobs.start("send", campaign.slug, who, work)
    web.send_nonces[request_key] = job.id
    while len(web.send_nonces) > MAX_REMEMBERED_SENDS:  # the oldest first: only replays look here
        del web.send_nonces[next(iter(web.send_nonces))]
    return RedirectResponse(f"{target}?job={job.id}", status_code=303)


async def smtp_resume(request: Request, user: str, form: FormData) -> Response:
    """The dashboard's Resume sending: the pause cleared now, the waiting mail sent in a job."""
    web = state(request)
    campaign = campaign_for(request)
    account = str(form.get("account") or "")[:400] or None
    try:
        resumed = await blocking(sending.resume, web.app, account, now=web.clock(), actor=actor(user),
                                 send=False)
    except DeliveryError as exc:
        flash(request, "error", str(exc))
        return RedirectResponse(f"/c/{campaign.slug}/", status_code=303)

    def work(job: Job) -> None:
        deliveries.send_due(web.app, now=web.clock())

    web.jobs.start("send", campaign.slug, actor(user), work)
    flash(request, "ok", translator(request).gettext(
        "Sending through %(account)s resumed: the waiting e-mails go out now.")
        % {"account": resumed.account})
    return RedirectResponse(f"/c/{campaign.slug}/deliveries", status_code=303)


async def withdraw(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    email = str(form.get("email") or "").strip()
    tr = translator(request)
    if not email or len(email) > 320:
        flash(request, "error", tr.gettext("Enter the signer's e-mail address."))
        return RedirectResponse(f"/c/{campaign.slug}/signers", status_code=303)

    try:
        await blocking(signers.withdraw, web.app, campaign, email, now=web.clock(), actor=actor(user))
    except NotFound:
        # The address is not repeated back: pages never show a signer's e-mail.
        flash(request, "error", tr.gettext("No signer with that e-mail address in this campaign; "
                                           "nothing changed."))
    except DeliveryError as exc:
        flash(request, "error", str(exc))
    else:
        flash(request, "ok", tr.gettext("Signer withdrawn: they will not appear in any later dossier."))
    return RedirectResponse(f"/c/{campaign.slug}/signers", status_code=303)


routes = [
    Route("/c/{slug}/deliveries/{ref}/{action}", login_required(csrf_checked(delivery_action)),
          methods=["POST"]),
    Route("/c/{slug}/deliveries/{ref}/links/{action}", login_required(csrf_checked(link_action)),
          methods=["POST"]),
    Route("/c/{slug}/preview", login_required(csrf_checked(preview_start)), methods=["POST"]),
    Route("/c/{slug}/smtp/resume", login_required(csrf_checked(smtp_resume)), methods=["POST"]),
    Route("/c/{slug}/preview/{job}", login_required(preview_page), methods=["GET"]),
    Route("/c/{slug}/preview/{job}/files/{name}", login_required(preview_file), methods=["GET"]),
    Route("/c/{slug}/send", login_required(send_page), methods=["GET"]),
    Route("/c/{slug}/send", login_required(csrf_checked(send)), methods=["POST"]),
    Route("/c/{slug}/send/requests/{request}/{action}", login_required(csrf_checked(send_request)),
          methods=["POST"]),
    Route("/c/{slug}/signers/withdraw", login_required(csrf_checked(withdraw)), methods=["POST"]),
]
