"""outbox: the state machine in the database, against real aiosmtpd servers that misbehave.
Every test runs on SQLite and on PostgreSQL (the `engine` fixture)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import selectinload

from delivery.artifacts import BundleFile
from delivery.campaigns.config import Recipient
from delivery.mail.classify import Outcome
from delivery.mail.message import Envelope, Letter, build_messages
from delivery.mail.outbox import (
    FINAL,
    TRANSITIONS,
    SendReport,
    cancel_delivery_messages,
    claim_one,
    claim_recut,
    clear_pause,
    complete,
    enqueue,
    recuts_due,
    replace_cut,
    retry_delivery,
)
from delivery.settings import Settings
from delivery.storage.db import transaction
from delivery.storage.models import DeliveryFileRow, MessageBodyRow, MessageRow, SmtpPauseRow
from tests.support.outbox_driver import ORGANIZERS, T0, make_delivery, message, queue, run, settings_for
from tests.support.smtp_faults import FaultyHandler, FaultyServer, faulty_server, silent_port

PM = "prime-minister@example.org"
MS = "migration-service@example.org"


def rows(engine: Engine, kind: str | None = "dossier") -> list[MessageRow]:
    with transaction(engine) as session:
        # with their bytes: the rows are read after the session ends
        query = select(MessageRow).options(selectinload(MessageRow.body)).order_by(MessageRow.id)
        if kind is not None:
            query = query.where(MessageRow.kind == kind)
        return list(session.scalars(query))


def one(engine: Engine) -> MessageRow:
    [row] = rows(engine)
    return row


def send(engine: Engine, settings: Settings, at: timedelta = timedelta(0), *,
         until_empty: bool = False) -> SendReport:
    return asyncio.run(run(engine, settings, now=T0 + at, until_empty=until_empty))


def dossier_copies(server: FaultyServer) -> list[str]:
    return [str(r.message["Message-ID"]) for r in server.received
            if r.rcpt_tos != list(ORGANIZERS)]


def alerts(server: FaultyServer) -> list[str]:
    return [str(r.message["Subject"]) for r in server.received if r.rcpt_tos == list(ORGANIZERS)]


# --- the table and enqueue --------------------------------------------------------------------

def test_transitions_table_is_closed_and_final_states_are_final() -> None:
    assert set(TRANSITIONS) == {"queued", "sending", "sent", "retry", "failed", "blocked",
                                "bounced", "cancelled", "recut", "replaced"}
    assert set(FINAL) == {"sent", "failed", "blocked", "bounced", "cancelled", "replaced"}
    assert "recut" not in FINAL  # a refused first cut waits for its smaller one
    assert TRANSITIONS["replaced"] == frozenset()
    assert all(t <= set(TRANSITIONS) for t in TRANSITIONS.values())
    assert TRANSITIONS["cancelled"] == frozenset()
    assert TRANSITIONS["sent"] == {"bounced"}  # only a later report moves a sent message
    # nothing that waits or is in flight is final: settling a delivery waits for it
    assert not set(FINAL) & {"queued", "retry", "sending"}
    assert "cancelled" not in TRANSITIONS["sending"]  # in flight: it finishes


def test_enqueue_is_idempotent(engine: Engine) -> None:
    delivery = make_delivery(engine)
    parts = [message("d-0001", PM, 1), message("d-0001", PM, 2)]
    for expected in (2, 0, 0):
        with transaction(engine) as session:
            assert enqueue(session, delivery_id=delivery, recipient=PM, kind="dossier",
                           parts=parts, now=T0) == expected
    stored = rows(engine)
    assert [(r.part, r.parts, r.status, r.attempts) for r in stored] == [(1, 2, "queued", 0),
                                                                        (2, 2, "queued", 0)]
    assert [r.content for r in stored] == [p.whole() for p in parts]


# --- outcomes ---------------------------------------------------------------------------------

def test_accepted_message_is_sent_once(engine: Engine, tmp_path: Path) -> None:
    queue(engine, make_delivery(engine), [PM, MS])
    with faulty_server() as server:
        report = send(engine, settings_for(tmp_path, server.port))
        again = send(engine, settings_for(tmp_path, server.port), at=timedelta(hours=1))
    assert (report.sent, report.retried, report.failed) == (2, 0, 0)
    assert again.to_dict() == SendReport().to_dict()
    assert sorted(dossier_copies(server)) == sorted(r.message_id for r in rows(engine))
    for row in rows(engine):
        assert (row.status, row.attempts, row.last_code, row.sent_at) == ("sent", 1, 250, T0)
        assert row.lease_owner is None and row.crash_resends == 0


def test_451_twice_then_250_is_sent_once_after_three_attempts(engine: Engine, tmp_path: Path) -> None:
    queue(engine, make_delivery(engine), [PM])
    handler = FaultyHandler(data_script=["451 4.3.0 busy", "451 4.3.0 busy"])
    with faulty_server(handler) as server:
        settings = settings_for(tmp_path, server.port)
        assert send(engine, settings).retried == 1
        row = one(engine)
        assert (row.status, row.attempts, row.last_code) == ("retry", 1, 451)
        assert row.next_attempt_at == T0 + timedelta(seconds=30)  # backoff, jitter 0
        assert send(engine, settings, at=timedelta(seconds=29)).to_dict() == SendReport().to_dict()
        assert send(engine, settings, at=timedelta(seconds=30)).retried == 1
        assert one(engine).next_attempt_at == T0 + timedelta(seconds=90)  # 30 s + 1 min
        assert send(engine, settings, at=timedelta(seconds=90)).sent == 1
    row = one(engine)
    assert (row.status, row.attempts, row.last_code) == ("sent", 3, 250)
    assert handler.data_seen == 3 and len(server.received) == 1


def test_550_fails_after_one_attempt_and_alerts_organizers_once(engine: Engine,
                                                                tmp_path: Path) -> None:
    queue(engine, make_delivery(engine), [PM, MS])
    handler = FaultyHandler(rcpt_script=["550 5.1.1 no such mailbox", "550 5.1.1 no such mailbox"])
    with faulty_server(handler) as server:
        report = send(engine, settings_for(tmp_path, server.port), until_empty=True)
    assert report.failed == 2 and report.sent == 1  # the one alert went out
    for row in rows(engine):
        assert (row.status, row.attempts, row.last_code) == ("failed", 1, 550)
        assert row.last_answer == "5.1.1 no such mailbox"
    [alert] = rows(engine, "alert")
    assert (alert.recipient, alert.part, alert.parts, alert.status) == (ORGANIZERS[0], 0, 1, "sent")
    assert alerts(server) == ["Petition delivery d-0001 needs attention (rejected)"]
    [received] = [r for r in server.received if r.rcpt_tos == list(ORGANIZERS)]
    assert "5.1.1 no such mailbox" in received.message.get_content()


def test_552_on_a_smaller_cut_fails_with_reason_and_is_never_offered_again(
        engine: Engine, tmp_path: Path) -> None:
    delivery = make_delivery(engine)
    queue(engine, delivery, [PM], cut=1)  # the recipient's dossier was cut smaller already
    handler = FaultyHandler(data_script=["552 5.3.4 message size exceeds fixed limit"])
    with faulty_server(handler) as server:
        settings = settings_for(tmp_path, server.port)
        assert send(engine, settings).failed == 1
        row = one(engine)
        assert (row.status, row.last_code) == ("failed", 552)
        assert row.last_answer is not None and row.last_answer.startswith("message too large")
        with transaction(engine) as session:
            assert retry_delivery(session, delivery, T0 + timedelta(hours=1)) == 0
        send(engine, settings, at=timedelta(hours=2), until_empty=True)
    assert handler.data_seen == 1 + len(alerts(server))  # the dossier bytes went once
    assert one(engine).status == "failed"
    assert alerts(server) == ["Petition delivery d-0001 needs attention (too_large)"]


def test_535_pauses_the_account_burns_no_attempt_and_resumes_after_clear(
        engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    queue(engine, make_delivery(engine), [PM, MS])
    with faulty_server(auth=True) as server:
        wrong = settings_for(tmp_path, server.port, username="campaign", password="wrong")
        with caplog.at_level(logging.ERROR, logger="delivery"):
            report = send(engine, wrong)
        assert (report.paused, report.sent, report.account_paused) == (1, 0, True)
        # the alert below waits behind this very pause: the error log names the remedy meanwhile
        [logged] = [r.getMessage() for r in caplog.records if "paused" in r.getMessage()]
        assert "alerts included" in logged and "petition-delivery smtp resume" in logged
        assert [(r.status, r.attempts) for r in rows(engine)] == [("queued", 0), ("queued", 0)]
        assert rows(engine)[0].last_code == 535
        with transaction(engine) as session:
            [pause] = session.scalars(select(SmtpPauseRow))
            assert pause.account == wrong.smtp.account  # type: ignore[union-attr]
        later = send(engine, wrong, at=timedelta(hours=1))
        assert later.account_paused and later.paused == 0  # nothing even tried
        assert len(server.handler.logins) == 2  # PLAIN and LOGIN, once: no hammering
        with transaction(engine) as session:
            assert clear_pause(session, wrong.smtp.account)  # type: ignore[union-attr]
        right = settings_for(tmp_path, server.port, username="campaign", password="right")
        report = send(engine, right, at=timedelta(hours=2))
    assert report.sent == 3  # both dossiers and the alert that waited for the pause
    assert [(r.status, r.attempts) for r in rows(engine)] == [("sent", 1), ("sent", 1)]
    assert alerts(server) == ["Petition delivery d-0001 needs attention (auth)"]


@pytest.mark.parametrize("fault", ["no-greeting", "stall-in-data"])
def test_timeouts_are_retried(engine: Engine, tmp_path: Path, fault: str) -> None:
    queue(engine, make_delivery(engine), [PM])
    if fault == "no-greeting":
        with silent_port() as port:
            report = send(engine, settings_for(tmp_path, port, timeout=0.3))
        assert one(engine).crash_resends == 0  # nothing was handed over
    else:
        with faulty_server(FaultyHandler(data_script=["stall"], stall_seconds=1.0)) as server:
            report = send(engine, settings_for(tmp_path, server.port, timeout=0.3))
        assert one(engine).crash_resends == 1  # the server has it: a resend may duplicate
    row = one(engine)
    assert report.retried == 1 and (row.status, row.attempts, row.last_code) == ("retry", 1, None)
    assert row.next_attempt_at > T0


def test_connection_dropped_after_final_dot_is_resent_with_same_message_id(
        engine: Engine, tmp_path: Path) -> None:
    queue(engine, make_delivery(engine), [PM])
    with faulty_server(FaultyHandler(data_script=["drop"])) as server:
        settings = settings_for(tmp_path, server.port)
        first = send(engine, settings)
        second = send(engine, settings, at=timedelta(minutes=5))
    assert (first.retried, first.crash_resends, second.sent) == (1, 1, 1)
    row = one(engine)
    assert (row.status, row.attempts, row.crash_resends) == ("sent", 2, 1)
    assert dossier_copies(server) == [row.message_id, row.message_id]
    assert server.received[0].data == server.received[1].data == row.content


def test_starttls_not_offered_sends_nothing_in_clear_and_pauses(engine: Engine,
                                                               tmp_path: Path) -> None:
    queue(engine, make_delivery(engine), [PM])
    with faulty_server(auth=True) as server:
        report = send(engine, settings_for(tmp_path, server.port, security="starttls",
                                           username="campaign", password="right"))
    assert report.paused == 1 and report.account_paused
    assert server.handler.data_seen == 0 and server.handler.logins == []
    assert (one(engine).status, one(engine).attempts) == ("queued", 0)
    assert "STARTTLS" in (one(engine).last_answer or "")
    [alert] = rows(engine, "alert")
    assert alert.status == "queued"  # waits for the account to be fixed


def test_without_smtp_host_messages_become_eml_files(engine: Engine, tmp_path: Path) -> None:
    queue(engine, make_delivery(engine), [PM, MS])
    settings = settings_for(tmp_path, None)
    assert send(engine, settings).sent == 2
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert sorted(f.read_bytes() for f in files) == sorted(r.content for r in rows(engine))
    assert all(r.status == "sent" and (r.last_answer or "").startswith("written to") for r in rows(engine))


def test_cancel_stops_waiting_messages_only(engine: Engine, tmp_path: Path) -> None:
    delivery = make_delivery(engine)
    queue(engine, delivery, [PM, MS])
    with faulty_server(FaultyHandler(data_script=["ok", "451 4.3.0 busy"])) as server:
        send(engine, settings_for(tmp_path, server.port))
        with transaction(engine) as session:
            assert cancel_delivery_messages(session, delivery, T0) == 1
        assert send(engine, settings_for(tmp_path, server.port), at=timedelta(hours=3)).sent == 0
    assert sorted(r.status for r in rows(engine)) == ["cancelled", "sent"]
    assert len(server.received) == 1


def test_retry_delivery_requeues_failed_keeping_attempts(engine: Engine, tmp_path: Path) -> None:
    delivery = make_delivery(engine)
    queue(engine, delivery, [PM])
    with faulty_server(FaultyHandler(rcpt_script=["554 5.7.1 policy"])) as server:
        settings = settings_for(tmp_path, server.port)
        send(engine, settings)
        assert one(engine).status == "failed"
        with transaction(engine) as session:
            assert retry_delivery(session, delivery, T0 + timedelta(hours=1)) == 1
        row = one(engine)
        assert (row.status, row.attempts, row.next_attempt_at) == (
            "queued", 1, T0 + timedelta(hours=1))
        assert send(engine, settings, at=timedelta(hours=1)).sent >= 1
    assert (one(engine).status, one(engine).attempts) == ("sent", 2)


def test_retries_give_up_after_max_age_and_alert(engine: Engine, tmp_path: Path) -> None:
    queue(engine, make_delivery(engine), [PM])
    with faulty_server(FaultyHandler(data_script=["451 4.3.0 busy"])) as server:
        report = send(engine, settings_for(tmp_path, server.port),
                      at=timedelta(days=2) - timedelta(seconds=10))
    assert report.failed == 1
    assert one(engine).status == "failed" and "gave up" in (one(engine).last_answer or "")
    assert len(rows(engine, "alert")) == 1


def test_retry_hurries_waiting_messages_and_does_not_resend_alerts(engine: Engine, tmp_path: Path) -> None:
    delivery = make_delivery(engine)
    queue(engine, delivery, [PM, MS])
    # The server refuses the first dossier, defers the second, then refuses both and the alert.
    script = ["554 5.7.1 policy", "451 4.3.0 busy", "554 5.7.1 policy", "554 5.7.1 policy",
              "554 5.7.1 policy"]
    with faulty_server(FaultyHandler(rcpt_script=script)) as server:
        settings = settings_for(tmp_path, server.port)
        send(engine, settings)
        assert sorted(r.status for r in rows(engine)) == ["failed", "retry"]
        assert rows(engine, "alert") == []  # the alert waits for the deferred one to settle
        with transaction(engine) as session:
            assert retry_delivery(session, delivery, T0 + timedelta(seconds=5)) == 2
        assert send(engine, settings, at=timedelta(seconds=5)).failed == 3
        assert [r.status for r in rows(engine, "alert")] == ["failed"]
        with transaction(engine) as session:
            assert retry_delivery(session, delivery, T0 + timedelta(seconds=9)) == 2
        assert send(engine, settings, at=timedelta(seconds=9)).sent == 2
    assert [r.status for r in rows(engine)] == ["sent", "sent"]
    assert [r.status for r in rows(engine, "alert")] == ["failed"]


def test_an_organizer_retry_starts_a_fresh_retry_window(engine: Engine, tmp_path: Path) -> None:
    delivery = make_delivery(engine)
    queue(engine, delivery, [PM])
    created = one(engine).created_at
    # The server answers, in order: the dossier (which gives up), the organizers' alert (sent in
    # the same run), the dossier retried by the organizer, and the dossier once more.
    script = ["451 4.3.0 busy", "ok", "451 4.3.0 busy", "ok"]
    with faulty_server(FaultyHandler(data_script=script)) as server:
        settings = settings_for(tmp_path, server.port)
        first = send(engine, settings, at=timedelta(days=2) - timedelta(seconds=10))
        assert (first.failed, first.sent) == (1, 1)
        with transaction(engine) as session:
            assert retry_delivery(session, delivery, T0 + timedelta(days=3)) == 1
        # Without a fresh window, this 451 would give up at once: the message is 3 days old.
        second = send(engine, settings, at=timedelta(days=3))
        assert (second.sent, second.retried, second.failed) == (0, 1, 0)
        assert one(engine).status == "retry"
        assert send(engine, settings, at=timedelta(days=3, hours=1)).sent == 1
    row = one(engine)
    assert (row.status, row.created_at, row.retry_from) == ("sent", created, T0 + timedelta(days=3))


def test_completion_needs_the_lease(engine: Engine) -> None:
    queue(engine, make_delivery(engine), [PM])
    lease = timedelta(minutes=10)
    a = claim_one(engine, now=T0, worker_id="a", lease=lease, account=None)
    assert a is not None and not a.reclaimed
    assert claim_one(engine, now=T0 + timedelta(minutes=5), worker_id="b", lease=lease,
                     account=None) is None  # leased: nobody else takes it
    b = claim_one(engine, now=T0 + lease, worker_id="b", lease=lease, account=None)
    assert b is not None and b.reclaimed and b.attempts == 2
    sent = Outcome("sent", 250, "ok", None, "sent")
    assert not complete(engine, a, sent, uncertain=False, now=T0 + lease, alert_to=(),
                        sender="x@example.org", account=None)  # a lost its lease
    assert complete(engine, b, sent, uncertain=False, now=T0 + lease, alert_to=(),
                    sender="x@example.org", account=None)
    row = one(engine)
    assert (row.status, row.attempts, row.crash_resends, row.lease_owner) == ("sent", 2, 1, None)
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(MessageRow)) == 1


# --- a recipient's parts: whole, in order, or not at all --------------------------------------

def queue_parts(engine: Engine, delivery_id: int, recipients: list[str], parts: int, cut: int = 0) -> None:
    with transaction(engine) as session:
        for r in recipients:
            enqueue(session, delivery_id=delivery_id, recipient=r, kind="dossier",
                    parts=[message("d-0001", r, n) for n in range(1, parts + 1)], now=T0, cut=cut)


def test_a_first_cut_refused_as_too_large_waits_to_be_cut_smaller_and_is_replaced(
        engine: Engine, tmp_path: Path) -> None:
    delivery = make_delivery(engine)
    queue_parts(engine, delivery, [PM], parts=3)
    handler = FaultyHandler(data_script=["552 5.3.4 message size exceeds fixed limit"])
    with faulty_server(handler) as server:
        settings = settings_for(tmp_path, server.port)
        report = send(engine, settings, until_empty=True)
        assert (report.recut, report.failed) == (1, 0)
        assert by_recipient(engine) == {PM: ["recut", "blocked", "blocked"]}
        assert alerts(server) == []  # not settled: the smaller e-mails are still to go
        with transaction(engine) as session:
            [due] = recuts_due(session, now=T0)
            assert (due.recipient, due.cut) == (PM, 1)
            assert claim_recut(session, due, owner="w1", now=T0, lease=timedelta(minutes=3))
        with transaction(engine) as session:
            assert recuts_due(session, now=T0) == []  # held by w1 now
            assert not replace_cut(session, due, owner="w2", parts=[], now=T0)
            smaller = [message("d-0001.c1", PM, n) for n in (1, 2, 3, 4)]
            assert replace_cut(session, due, owner="w1", parts=smaller, now=T0)
        send(engine, settings, until_empty=True)
    assert by_recipient(engine) == {PM: ["replaced", "replaced", "replaced", "sent", "sent", "sent", "sent"]}
    assert dossier_copies(server) == [f"<d-0001.c1.prime-minister.{n}@example.org>" for n in (1, 2, 3, 4)]
    assert alerts(server) == []  # every recipient got the whole dossier


def by_recipient(engine: Engine) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in rows(engine):
        out.setdefault(row.recipient, []).append(row.status)
    return out


def test_a_refused_first_part_holds_back_the_rest_and_one_alert_names_every_recipient(
        engine: Engine, tmp_path: Path) -> None:
    delivery = make_delivery(engine)
    queue_parts(engine, delivery, [PM, MS], parts=3, cut=1)  # each cut smaller once already
    # PM's part 1 (the letter) is too large; MS's part 2 is refused
    handler = FaultyHandler(data_script=["552 5.3.4 message size exceeds fixed limit", "ok",
                                         "550 5.7.1 refused by policy"])
    with faulty_server(handler) as server:
        settings = settings_for(tmp_path, server.port)
        send(engine, settings, until_empty=True)
        assert by_recipient(engine) == {PM: ["failed", "blocked", "blocked"],
                                        MS: ["sent", "failed", "blocked"]}
        # nothing after a refused part left: PM got nothing, MS only its part 1
        assert dossier_copies(server) == ["<d-0001.migration-service.1@example.org>"]
        [alert] = [r for r in server.received if r.rcpt_tos == list(ORGANIZERS)]
        assert alert.message["Subject"] == ("Petition delivery d-0001 needs attention "
                                            "(rejected-too_large)")
        body = alert.message.get_content()
        assert "2 of 2 recipients did not get the whole dossier" in body
        assert (f"- {PM}, part 1 of 3: 552 message too large, not resent: 5.3.4 message size "
                "exceeds fixed limit; 2 later part(s) not sent") in body
        assert f"- {MS}, part 2 of 3: 550 5.7.1 refused by policy; 1 later part(s) not sent" in body
        blocked = [r for r in rows(engine) if r.status == "blocked"]
        assert {r.last_answer for r in blocked} == {
            "not sent: part 1 of 3 to this recipient was refused, and a dossier goes whole or not "
            "at all",
            "not sent: part 2 of 3 to this recipient was refused, and a dossier goes whole or not "
            "at all"}

        # a retry sends MS's refused part and then the one after it; PM's too large part stays
        # refused, so its later parts stay held back
        with transaction(engine) as session:
            assert retry_delivery(session, delivery, T0 + timedelta(minutes=5)) == 2
        send(engine, settings, at=timedelta(minutes=5), until_empty=True)
    assert by_recipient(engine) == {PM: ["failed", "blocked", "blocked"],
                                    MS: ["sent", "sent", "sent"]}
    assert dossier_copies(server) == [f"<d-0001.migration-service.{n}@example.org>"
                                      for n in (1, 2, 3)]
    assert len(rows(engine, "alert")) == 1  # told once


def test_a_later_part_waits_for_the_one_before_it(engine: Engine, tmp_path: Path) -> None:
    delivery = make_delivery(engine)
    queue_parts(engine, delivery, [PM], parts=2)
    handler = FaultyHandler(data_script=["451 4.3.0 busy"])
    with faulty_server(handler) as server:
        settings = settings_for(tmp_path, server.port)
        send(engine, settings, until_empty=True)
        assert by_recipient(engine) == {PM: ["retry", "queued"]}
        assert dossier_copies(server) == []  # part 2 did not go ahead of part 1
        send(engine, settings, at=timedelta(days=1), until_empty=True)
    assert by_recipient(engine) == {PM: ["sent", "sent"]}
    assert dossier_copies(server) == [f"<d-0001.prime-minister.{n}@example.org>" for n in (1, 2)]
    assert rows(engine, "alert") == []


def test_a_pause_alert_does_not_silence_the_alert_naming_refused_recipients(
        engine: Engine, tmp_path: Path) -> None:
    queue(engine, make_delivery(engine), [PM])
    handler = FaultyHandler(rcpt_script=["550 5.1.1 no such mailbox"])  # the dossier
    with faulty_server(handler, auth=True) as server:
        wrong = settings_for(tmp_path, server.port, username="campaign", password="wrong")
        assert send(engine, wrong).paused == 1
        with transaction(engine) as session:
            assert clear_pause(session, wrong.smtp.account)  # type: ignore[union-attr]
        right = settings_for(tmp_path, server.port, username="campaign", password="right")
        send(engine, right, at=timedelta(hours=1), until_empty=True)
    assert one(engine).status == "failed"
    assert alerts(server) == ["Petition delivery d-0001 needs attention (auth)",
                              "Petition delivery d-0001 needs attention (rejected)"]


def test_an_attachment_kept_as_the_deliverys_file_is_put_back_when_claimed_and_a_changed_one_refused(
        engine: Engine, tmp_path: Path) -> None:
    delivery = make_delivery(engine)
    kept = BundleFile("dossier-en-1.pdf", "pdf", "en", 1, 1, b"%PDF-1.7 kept " * 5000)
    inline = BundleFile("dossier-en-2.pdf", "pdf", "en", 2, 1, b"%PDF-1.7 built again " * 100)
    envelope = Envelope(sender="Campaign <campaign@example.org>", sender_address="campaign@example.org",
                        dossier_id="d-0001", created_at=T0)
    letter = Letter(subject="Petition", body="Dear Prime Minister,\n")
    written = build_messages(envelope, Recipient(name="PM", email=PM, language="en"), letter,
                             [kept, inline], [], limit=1_000_000, budget=60_000)
    assert len(written) == 2  # part 1 attaches the stored file, part 2 the other
    with transaction(engine) as session:
        session.add(DeliveryFileRow(delivery_id=delivery, name=kept.name, language="en", kind="pdf",
                                    part=1, size=kept.size, sha256=kept.sha256, pages=1,
                                    content=kept.data))
        session.flush()
        assert enqueue(session, delivery_id=delivery, recipient=PM, kind="dossier", parts=written,
                       now=T0) == 2
    with transaction(engine) as session:
        stored = session.execute(select(MessageBodyRow.content, MessageBodyRow.attachments)
                                 .join(MessageRow).order_by(MessageRow.part)).all()
    # only the stored file is kept as a reference; the other's body is in the stored bytes
    (first, first_kept), (second, second_kept) = stored
    assert first_kept is not None and [name for _, name, _ in json.loads(first_kept)] == [kept.name]
    assert len(first) < kept.size and second_kept is None and second == written[1].whole()
    assert base64.b64encode(inline.data)[:76] in second

    claim = claim_one(engine, now=T0, worker_id="w1", lease=timedelta(minutes=3), account=None)
    assert claim is not None and claim.content == written[0].whole() and claim.unsendable is None

    # The file changes under the queued e-mail: it is never sent, fails like a refusal (its
    # later part blocked), and the outbox goes on with the other messages.
    with transaction(engine) as session:
        session.execute(update(DeliveryFileRow).values(content=b"%PDF-1.7 other", sha256="0" * 64))
        session.execute(update(MessageRow).values(status="queued", lease_owner=None, lease_until=None))
    queue(engine, make_delivery(engine, "d-0002"), [MS], public_id="d-0002")
    report = send(engine, settings_for(tmp_path, None), until_empty=True)
    assert (report.sent, report.failed) == (2, 1)  # d-0002's e-mail and the organizers' alert
    [alert] = rows(engine, kind="alert")
    assert alert.delivery_id == delivery and alert.status == "sent"
    assert [(r.status, r.attempts) for r in rows(engine) if r.delivery_id == delivery] == [
        ("failed", 2), ("blocked", 0)]  # the claim above was its first attempt
    [failed] = [r for r in rows(engine) if r.status == "failed"]
    assert "dossier-en-1.pdf, is not the one it was built with" in (failed.last_answer or "")
    written_out = [p.read_bytes() for p in (tmp_path / "outbox").glob("*.eml")]
    assert not any(b"X-Dossier-Id: d-0001" in data for data in written_out)
    assert any(b"X-Dossier-Id: d-0002" in data for data in written_out)
