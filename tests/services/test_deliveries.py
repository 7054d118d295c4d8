"""The whole pipeline through the service tick, on SQLite and PostgreSQL, mail to a real SMTP server."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select

from delivery.cli.textreport import deliveries_text
from delivery.services import deliveries, reports
from delivery.services.app import App
from delivery.signers.intake import validate_signer
from delivery.signers.store import add_signers, withdraw_signer
from delivery.storage.db import transaction
from delivery.storage.models import DeliveryFileRow, DeliveryRow, MessageBodyRow, MessageRow, MilestoneRow
from tests.support.campaigns import campaign_file
from tests.support.smtpd import RecordingHandler, SmtpServer

# Tuesday 2026-11-24 10:00 in Yerevan: inside the default campaign's send window.
TUESDAY_10 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


NAMES = ["Anna Hakobyan", "Иван Петров", "Նարե Սարգսյան", "Zoë Ørsted", "李伟", "Nino Beridze",
         "Jürgen Größer", "Marie Dubois", "Aram Petrosyan", "Ольга Соколова", "Hugo Martin", "Lena Weiß"]


def campaign_toml(signing: str = "required", hold: str = "2h") -> str:
    return campaign_file(slug="small", title="Small test petition", goal=50, signing=signing, hold=hold,
                         thresholds="[5, 10, 20]", check_every="1m", send_window="Mon-Fri 09:00-18:00")


def add(app: App, names: list[str], now: datetime, start: int = 0) -> None:
    campaign = app.campaign(None)
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        rows = [validate_signer({"name": n, "email": f"s{start + i}@example.net", "city": "Yerevan",
                                 "country": "AM", "signed_at": now - timedelta(hours=1)},
                                now=now, source="test") for i, n in enumerate(names)]
        add_signers(session, campaign_id, rows, now=now, keys=app.signer_keys)


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "x.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def attachments(msg: EmailMessage) -> dict[str, bytes]:
    return {str(p.get_filename()): p.get_content() for p in msg.iter_attachments()}


AppFactory = Callable[..., App]
REPO = Path(__file__).resolve().parents[2]


def test_a_build_renews_its_lease_while_it_runs_and_a_dead_ones_is_taken_over(
        make_app: AppFactory, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deliveries, "HEARTBEAT", 0.05)
    app = make_app(smtp_server.env(), campaign_toml())
    campaign = app.campaign(None)
    add(app, NAMES[:3], TUESDAY_10)
    ref = deliveries.create_manual(app, campaign, now=TUESDAY_10, actor="test")
    leases: list[datetime] = []

    def slow_volume(done: int, total: int) -> None:  # a build that takes longer than its heartbeat
        threading.Event().wait(0.4)
        with transaction(app.engine) as session:
            row = session.get(DeliveryRow, ref.id)
            assert row is not None and row.lease_until is not None
            leases.append(row.lease_until)

    assert deliveries.build_and_send(app, ref.id, now=TUESDAY_10, progress=slow_volume)
    assert leases and max(leases) > TUESDAY_10 + deliveries.BUILD_LEASE  # moved on while building
    # A builder that died holds its claim no longer than the lease: the next tick's worker takes it.
    dead = deliveries.create_manual(app, campaign, now=TUESDAY_10, actor="test")
    other = make_app(smtp_server.env(), campaign_toml())
    assert deliveries.claim_build(other, campaign, now=TUESDAY_10 + timedelta(minutes=2)) is None
    assert deliveries.claim_build(other, campaign, now=TUESDAY_10 + timedelta(minutes=4)) == dead.id


def test_milestone_waits_for_hold_then_reaches_each_recipient_once(
        make_app: AppFactory, smtp_server: SmtpServer, tmp_path: Path) -> None:
    app = make_app(smtp_server.env(), campaign_toml())
    campaign = app.campaign(None)
    add(app, NAMES[:6], TUESDAY_10)

    first = deliveries.tick(app, campaign, now=TUESDAY_10)
    assert first.milestones == [5]
    assert len(first.created) == 1
    assert smtp_server.received == []
    [held] = reports.deliveries(app, campaign, now=datetime.now(UTC))
    assert held.status == "held"

    again = deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(minutes=5))
    assert again.created == [] and smtp_server.received == []

    done = deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(hours=2, minutes=1))
    assert done.built == first.created
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [
        "migration-service@example.org", "prime-minister@example.org"]
    deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(hours=3))
    assert len(smtp_server.received) == 2

    by_to = {r.rcpt_tos[0]: r.message for r in smtp_server.received}
    pm = by_to["prime-minister@example.org"]
    assert "6 signatures" in pm["Subject"]
    assert pm["X-Dossier-Id"] == first.created[0]
    body = pm.get_body(("plain",))
    assert body is not None
    text_body = body.get_content()
    assert "not to extradite Salman" in " ".join(text_body.split())  # the letter is the body
    assert text_body.count("Dear ") == 1  # one greeting: the letter's own
    files = attachments(pm)
    assert "manifest.json" in files
    [pdf_name] = [n for n in files if n.endswith(".pdf")]
    text = pdf_text(files[pdf_name], tmp_path)
    assert "Nikol Pashinyan" in text and "Migration Service of Armenia" in text
    assert "extradite" in text  # the letter itself
    for name in NAMES[:6]:
        assert text.count(name) == 1, name
    assert "@example.net" not in text
    [record] = reports.deliveries(app, campaign, now=datetime.now(UTC))
    assert record.status == "done"
    assert {m.status for m in record.messages if m.kind == "dossier"} == {"sent"}


def test_outside_the_send_window_the_dossier_waits_for_monday(
        make_app: AppFactory, smtp_server: SmtpServer) -> None:
    app = make_app(smtp_server.env(), campaign_toml(hold="0s"))
    campaign = app.campaign(None)
    friday_evening = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # 19:00 in Yerevan
    add(app, NAMES[:5], friday_evening)
    report = deliveries.tick(app, campaign, now=friday_evening)
    assert report.built and smtp_server.received == []
    deliveries.tick(app, campaign, now=friday_evening + timedelta(days=1))  # Saturday
    assert smtp_server.received == []
    deliveries.tick(app, campaign, now=datetime(2026, 11, 30, 5, 1, tzinfo=UTC))  # Monday 09:01
    assert len(smtp_server.received) == 2
    # Dated when it was due to go (the window opening), not when the delivery was created.
    from email.utils import parsedate_to_datetime

    assert {parsedate_to_datetime(r.message["Date"]) for r in smtp_server.received} == {
        datetime(2026, 11, 30, 5, 0, tzinfo=UTC)}


def test_several_milestones_at_once_make_one_delivery_for_the_highest(
        make_app: AppFactory, smtp_server: SmtpServer) -> None:
    app = make_app(smtp_server.env(), campaign_toml(hold="0s"))
    campaign = app.campaign(None)
    add(app, NAMES[:11], TUESDAY_10)
    report = deliveries.tick(app, campaign, now=TUESDAY_10)
    assert report.milestones == [5, 10]
    [delivery] = reports.deliveries(app, campaign, now=datetime.now(UTC))
    assert delivery.milestone == 10 and delivery.signer_count == 11
    with transaction(app.engine) as session:
        rows = session.execute(select(MilestoneRow.threshold, MilestoneRow.delivery_id)).all()
    assert sorted(t for t, _ in rows) == [5, 10]
    assert len({d for _, d in rows}) == 1


def test_a_count_falling_back_below_sends_nothing_more(make_app: AppFactory, smtp_server: SmtpServer) -> None:
    app = make_app(smtp_server.env(), campaign_toml(hold="0s"))
    campaign = app.campaign(None)
    add(app, NAMES[:5], TUESDAY_10)
    deliveries.tick(app, campaign, now=TUESDAY_10)
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        assert withdraw_signer(session, campaign_id, "s0@example.net", now=TUESDAY_10, actor="test",
                               keys=app.signer_keys)
    report = deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(minutes=1))
    assert report.signer_count == 4 and report.created == []
    add(app, ["Late Signer"], TUESDAY_10, start=50)
    assert deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(minutes=2)).created == []
    assert len(reports.deliveries(app, campaign, now=datetime.now(UTC))) == 1


def test_the_frozen_signer_set_does_not_change_after_creation(
        make_app: AppFactory, smtp_server: SmtpServer, tmp_path: Path) -> None:
    app = make_app(smtp_server.env(), campaign_toml(hold="1h"))
    campaign = app.campaign(None)
    add(app, NAMES[:5], TUESDAY_10)
    deliveries.tick(app, campaign, now=TUESDAY_10)
    add(app, ["Added After Creation"], TUESDAY_10, start=99)
    deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(hours=1, minutes=1))
    msg = smtp_server.received[0].message
    [pdf] = [v for k, v in attachments(msg).items() if k.endswith(".pdf")]
    text = pdf_text(pdf, tmp_path)
    assert "Added After Creation" not in text
    assert NAMES[4] in text


def test_a_signer_withdrawn_before_creation_leaves_a_gap_one_withdrawn_after_stays(
        make_app: AppFactory, smtp_server: SmtpServer, tmp_path: Path) -> None:
    app = make_app(smtp_server.env(), campaign_toml(hold="1h"))
    campaign = app.campaign(None)
    add(app, NAMES[:6], TUESDAY_10)
    with transaction(app.engine) as session:
        withdraw_signer(session, app.campaign_id(session, campaign), "s1@example.net",
                        now=TUESDAY_10, actor="test", keys=app.signer_keys)
    deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(minutes=1))
    with transaction(app.engine) as session:
        withdraw_signer(session, app.campaign_id(session, campaign), "s2@example.net",
                        now=TUESDAY_10 + timedelta(minutes=2), actor="test", keys=app.signer_keys)
    deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(hours=1, minutes=2))
    msg = smtp_server.received[0].message
    [pdf] = [v for k, v in attachments(msg).items() if k.endswith(".pdf")]
    text = pdf_text(pdf, tmp_path)
    assert NAMES[1] not in text and NAMES[2] in text  # withdrawn before / after creation
    listed = [int(n) for n in re.findall(r"^\s*(\d+)\s+\d{4}-\d{2}-\d{2}\s.*Yerevan", text, re.M)]
    assert listed == [1, 3, 4, 5, 6]  # the withdrawn signer's number is not reused
    assert "· 5" in text  # the footer counts the five signers


def test_hostile_names_are_printed_literally_and_fetch_nothing(
        make_app: AppFactory, smtp_server: SmtpServer, tmp_path: Path) -> None:
    app = make_app(smtp_server.env(), campaign_toml(hold="0s"))
    campaign = app.campaign(None)
    hostile = ["<b>Anna</b> {{ 7*7 }}", '<img src="file:///etc/passwd">', "{% include 'x' %}",
               "url(file:///etc/passwd)", "Plain Name"]
    add(app, hostile, TUESDAY_10)
    deliveries.tick(app, campaign, now=TUESDAY_10)
    msg = next(r.message for r in smtp_server.received if r.rcpt_tos == ["prime-minister@example.org"])
    [pdf] = [v for k, v in attachments(msg).items() if k.endswith(".pdf")]
    text = pdf_text(pdf, tmp_path)
    assert "<b>Anna</b> {{ 7*7 }}" in text
    assert "49" not in text.split("Anna</b>")[1][:20]
    assert '<img src="file:///etc/passwd">' in text
    assert "root:x:0:0" not in text


def test_manual_send_to_one_recipient(make_app: AppFactory, smtp_server: SmtpServer) -> None:
    app = make_app(smtp_server.env(), campaign_toml())
    campaign = app.campaign(None)
    add(app, NAMES[:3], TUESDAY_10)
    public_id = deliveries.send_now(app, campaign, now=TUESDAY_10, to=["prime-minister@example.org"],
                                 actor="test")
    assert [r.rcpt_tos for r in smtp_server.received] == [["prime-minister@example.org"]]
    [delivery] = reports.deliveries(app, campaign, now=datetime.now(UTC))
    assert delivery.id == public_id and delivery.trigger == "manual" and delivery.status == "done"


def test_unknown_recipient_is_refused(make_app: AppFactory) -> None:
    from delivery.errors import UsageError

    app = make_app(None, campaign_toml())
    with pytest.raises(UsageError, match="not a recipient"):
        deliveries.send_now(app, app.campaign(None), now=TUESDAY_10, to=["someone@example.org"], actor="t")
    assert reports.deliveries(app, app.campaign(None), now=datetime.now(UTC)) == []


def test_cancelled_held_delivery_is_never_sent(make_app: AppFactory, smtp_server: SmtpServer) -> None:
    app = make_app(smtp_server.env(), campaign_toml(hold="2h"))
    campaign = app.campaign(None)
    add(app, NAMES[:5], TUESDAY_10)
    [public_id] = deliveries.tick(app, campaign, now=TUESDAY_10).created
    deliveries.cancel(app, campaign, public_id, now=TUESDAY_10, actor="test")
    deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(hours=3))
    assert smtp_server.received == []
    assert reports.deliveries(app, campaign, now=datetime.now(UTC))[0].status == "cancelled"


def test_released_delivery_goes_before_its_hold_ends(make_app: AppFactory, smtp_server: SmtpServer) -> None:
    app = make_app(smtp_server.env(), campaign_toml(hold="2h"))
    campaign = app.campaign(None)
    add(app, NAMES[:5], TUESDAY_10)
    [public_id] = deliveries.tick(app, campaign, now=TUESDAY_10).created
    deliveries.release(app, campaign, public_id, now=TUESDAY_10, actor="test")
    deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(minutes=1))
    assert len(smtp_server.received) == 2


def test_state_conflicts_are_refused(make_app: AppFactory, smtp_server: SmtpServer) -> None:
    from delivery.errors import NotFound, StateConflict

    app = make_app(smtp_server.env(), campaign_toml(hold="0s"))
    campaign = app.campaign(None)
    add(app, NAMES[:5], TUESDAY_10)
    [public_id] = deliveries.tick(app, campaign, now=TUESDAY_10).created
    with pytest.raises(StateConflict, match="not held"):
        deliveries.release(app, campaign, public_id, now=TUESDAY_10, actor="test")
    with pytest.raises(StateConflict, match="nothing to cancel"):
        deliveries.cancel(app, campaign, public_id, now=TUESDAY_10, actor="test")
    with pytest.raises(NotFound):
        deliveries.cancel(app, campaign, "NOPE-1", now=TUESDAY_10, actor="test")


def test_signing_required_without_a_key_sends_nothing_and_alerts(
        make_app: AppFactory, smtp_server: SmtpServer) -> None:
    app = make_app({**smtp_server.env(), "DELIVERY_SIGNING_KEY": "", "DELIVERY_SIGNING_CERT": ""},
                   campaign_toml(hold="0s"))
    campaign = app.campaign(None)
    add(app, NAMES[:5], TUESDAY_10)
    report = deliveries.tick(app, campaign, now=TUESDAY_10)
    assert report.build_failures and not report.built
    [delivery] = reports.deliveries(app, campaign, now=datetime.now(UTC))
    assert delivery.status == "failed" and "DELIVERY_SIGNING_KEY" in (delivery.error or "")
    assert [r.rcpt_tos for r in smtp_server.received] == [["organizers@example.org"]]
    assert not any(p.get_filename() for p in smtp_server.received[0].message.iter_attachments())


@pytest.mark.parametrize("template", ["letters/salman-mukaev/en.html.j2", "email/dossier.txt.j2"])
def test_an_unexpected_error_in_a_build_fails_the_delivery_and_alerts_once(
        make_app: AppFactory, smtp_server: SmtpServer, tmp_path: Path, template: str) -> None:
    """A template edited on a running server to use an unknown value makes Jinja raise its own
    UndefinedError: while rendering the cover page, or while writing the e-mails after the build."""
    home = tmp_path / "home"
    shutil.copytree(REPO / "templates", home / "templates")
    app = make_app({**smtp_server.env(), "DELIVERY_HOME": str(home)},
                   campaign_toml(hold="0s"))
    campaign = app.campaign(None)
    add(app, NAMES[:5], TUESDAY_10)
    path = home / "templates" / template
    path.write_text(path.read_text(encoding="utf-8") + "{{ no_such_value }}\n", encoding="utf-8")

    report = deliveries.tick(app, campaign, now=TUESDAY_10)
    assert report.build_failures and not report.built
    [delivery] = reports.deliveries(app, campaign, now=datetime.now(UTC))
    assert delivery.status == "failed"
    assert delivery.error == ("unexpected error while building the dossier (UndefinedError); "
                                 "the service log has the details")
    later = deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(hours=1))
    assert later.built == later.build_failures == []
    assert [r.rcpt_tos for r in smtp_server.received] == [["organizers@example.org"]]
    assert delivery.id in str(smtp_server.received[0].message["Subject"])
    with transaction(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(MessageRow)
                              .where(MessageRow.kind != "alert")) == 0


def _kill_render_workers(stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL every render worker that appears: children of this process's forkserver."""
    me = os.getpid()

    def children(pid: int) -> list[int]:
        out = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
        return out

    while not stop.is_set():
        for server in children(me):
            for worker in children(server):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker, signal.SIGKILL)
                    killed.append(worker)
        stop.wait(0.01)


def test_a_killed_render_worker_fails_the_build_and_nothing_is_sent(
        make_app: AppFactory, smtp_server: SmtpServer) -> None:
    app = make_app(smtp_server.env(), campaign_toml(hold="0s"))
    campaign = app.campaign(None)
    add(app, [f"Signer {i}" for i in range(6000)], TUESDAY_10)  # enough to use worker processes
    stop, killed = threading.Event(), list[int]()
    killer = threading.Thread(target=_kill_render_workers, args=(stop, killed))
    killer.start()
    try:
        report = deliveries.tick(app, campaign, now=TUESDAY_10)
    finally:
        stop.set()
        killer.join()
    assert killed and report.build_failures and not report.built
    [delivery] = reports.deliveries(app, campaign, now=datetime.now(UTC))
    assert delivery.status == "failed"
    assert re.search(r"(volume \d+|front|stamp).*: the worker process died", delivery.error or "")
    assert [r.rcpt_tos for r in smtp_server.received] == [["organizers@example.org"]]
    assert "the worker process died" in smtp_server.received[0].message.get_content()
    with transaction(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(MessageRow)
                              .where(MessageRow.kind != "alert")) == 0


def test_unsigned_dossier_says_so(make_app: AppFactory, smtp_server: SmtpServer, tmp_path: Path) -> None:
    app = make_app(smtp_server.env(), campaign_toml(signing="off", hold="0s"))
    add(app, NAMES[:5], TUESDAY_10)
    deliveries.tick(app, app.campaign(None), now=TUESDAY_10)
    msg = next(r.message for r in smtp_server.received if r.rcpt_tos == ["prime-minister@example.org"])
    [pdf] = [v for k, v in attachments(msg).items() if k.endswith(".pdf")]
    assert "not digitally signed" in pdf_text(pdf, tmp_path).replace("\n", " ")


def test_racing_ticks_create_one_delivery(make_app: AppFactory, smtp_server: SmtpServer) -> None:
    first = make_app(smtp_server.env(), campaign_toml(hold="2h"))
    second = make_app(smtp_server.env(), campaign_toml(hold="2h"))
    add(first, NAMES[:5], TUESDAY_10)
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def run(app: App) -> None:
        barrier.wait()
        results.append(deliveries.detect_milestones(app, app.campaign(None), now=TUESDAY_10))

    threads = [threading.Thread(target=run, args=(a,)) for a in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with transaction(first.engine) as session:
        assert session.scalar(select(func.count()).select_from(DeliveryRow)) == 1
        assert session.scalar(select(func.count()).select_from(MessageRow)) == 0
    assert sorted(bool(r[2]) for r in results) == [False, True]


@pytest.mark.parametrize("ref", ["²", "99999999999999999999", "a b", "x" * 41])
def test_odd_delivery_references_are_not_found(make_app: AppFactory, ref: str) -> None:
    from delivery.errors import NotFound

    app = make_app(None, campaign_toml())
    with pytest.raises(NotFound):
        deliveries.cancel(app, app.campaign(None), ref, now=TUESDAY_10, actor="test")


def test_a_dossier_larger_than_the_servers_size_arrives_whole_in_emails_that_fit(
        make_app: AppFactory, tmp_path: Path) -> None:
    """The server announces SIZE 1000000 and refuses anything larger (552), as Postfix does at
    its message_size_limit; the recipients' own max_message_size (10 MB by default) is larger."""
    limit = 1_000_000
    server = SmtpServer(data_size_limit=limit)
    server.start()
    try:
        app = make_app(server.env(), campaign_toml(hold="0s"))
        campaign = app.campaign(None)
        add(app, [f"{NAMES[i % len(NAMES)]} {i}" for i in range(20_000)], TUESDAY_10)
        report = deliveries.tick(app, campaign, now=TUESDAY_10)
        assert report.built and not report.build_failures
        received = server.received
    finally:
        server.stop()
    [delivery] = reports.deliveries(app, campaign, now=datetime.now(UTC))
    assert delivery.status == "done"
    dossiers = [r for r in received if r.rcpt_tos != ["organizers@example.org"]]
    assert all(len(r.data) <= limit for r in dossiers)
    with transaction(app.engine) as session:
        stored = [(f.language, f.name) for f in session.scalars(
            select(DeliveryFileRow).where(DeliveryFileRow.kind == "pdf")
            .order_by(DeliveryFileRow.part))]
    for email_address, language in (("prime-minister@example.org", "en"),
                                    ("migration-service@example.org", "hy")):
        mine = [r.message for r in dossiers if r.rcpt_tos == [email_address]]
        assert len(mine) >= 2
        total = len(mine)
        assert [m["X-Dossier-Part"] for m in mine] == [f"{n}/{total}" for n in range(1, total + 1)]
        pdfs = [(str(p.get_filename()), p.get_content()) for m in mine for p in m.iter_attachments()
                if str(p.get_filename()).endswith(".pdf")]
        # every part of the edition, once, in order; the letter in the first
        assert [name for name, _ in pdfs] == [n for lang, n in stored if lang == language]
        first = pdf_text(pdfs[0][1], tmp_path)
        assert "Nikol Pashinyan" in first  # the addressee, on the letter page
        for _, data in pdfs[1:]:
            assert "Nikol Pashinyan" not in pdf_text(data, tmp_path)


class QueueingHandler(RecordingHandler):
    """Answers each DATA as Postfix does, naming the queue entry it made."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await super().handle_DATA(server, session, envelope)
        return f"250 2.0.0 Ok: queued as 4F3A{len(self.received):05d}"


def test_the_accepting_servers_queue_id_is_kept_for_each_message(
        make_app: AppFactory) -> None:
    server = SmtpServer(QueueingHandler())
    server.start()
    try:
        app = make_app({**server.env(), "DELIVERY_SIGNING_KEY": "", "DELIVERY_SIGNING_CERT": ""},
                       campaign_toml(signing="off", hold="0s"))
        campaign = app.campaign(None)
        add(app, NAMES[:5], TUESDAY_10)
        deliveries.tick(app, campaign, now=TUESDAY_10)
    finally:
        server.stop()
    [delivery] = reports.deliveries(app, campaign, now=datetime.now(UTC))
    assert delivery.status == "done"
    ids = {m.recipient: m.queue_id for m in delivery.messages}
    assert sorted(str(i) for i in ids.values()) == ["4F3A00001", "4F3A00002"]
    text = deliveries_text([delivery])
    assert all(f"sent (queue id {i})" in text for i in ids.values())


def test_a_dossiers_emails_keep_its_files_once_and_go_out_whole(
        make_app: AppFactory, smtp_server: SmtpServer) -> None:
    app = make_app(smtp_server.env(), campaign_toml(hold="0s"))
    campaign = app.campaign(None)
    add(app, NAMES[:6], TUESDAY_10)
    report = deliveries.tick(app, campaign, now=TUESDAY_10)
    assert report.built == report.created and len(smtp_server.received) == 2

    with transaction(app.engine) as session:
        files = {f.name: f.content for f in session.scalars(select(DeliveryFileRow))}
        stored = session.execute(select(MessageRow.recipient, MessageRow.size, MessageBodyRow.content,
                                        MessageBodyRow.attachments)
                                 .join(MessageBodyRow).where(MessageRow.kind == "dossier")).all()
    assert len(stored) == 2
    for recipient, size, content, kept in stored:
        [received] = [r for r in smtp_server.received if r.rcpt_tos == [recipient]]
        attached = attachments(received.message)
        # every file the e-mail attaches is one of the delivery's, kept once as that file ...
        assert attached and all(files[name] == data for name, data in attached.items())
        assert kept is not None and sorted(name for _, name, _ in json.loads(kept)) == sorted(attached)
        assert len(content) < 30_000 < sum(len(d) for d in attached.values())
        # ... and the e-mail that went out is the whole one, of the size it was built at
        assert len(received.data) == size
