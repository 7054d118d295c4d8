"""Bounces end to end: a dossier sent to a real SMTP server, real bounce samples delivered into a
real IMAP server (Dovecot), read by the service's tick; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from delivery.cli.textreport import deliveries_text
from delivery.errors import StateConflict
from delivery.mail.bounces import read_bounce
from delivery.mail.message import return_path
from delivery.services import bounces, deliveries, reports
from delivery.services.app import App
from delivery.storage.db import transaction
from delivery.storage.models import AuditRow, BounceRow, MailboxCursorRow, MessageBodyRow, MessageRow
from tests.mail.test_bounces import sample
from tests.services.test_deliveries import NAMES, TUESDAY_10, add, campaign_toml
from tests.support.imapd import Dovecot
from tests.support.smtpd import SmtpServer

AppFactory = Callable[..., App]
PM, MIGRATION = "prime-minister@example.org", "migration-service@example.org"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with Dovecot.start() as server:
        yield server


def returned(name: str, *, original: str, address: str, to: str) -> bytes:
    """A real sample rewritten as the server that returned our message would have written it:
    our message's Message-ID and recipient in place of the ones it carries."""
    bounce = read_bounce(sample(name))
    assert bounce is not None and bounce.message_ids
    raw = sample(name).replace(bounce.message_ids[0].encode(), original.encode())
    return raw.replace(address.encode(), to.encode())


def sent_dossier(app: App) -> dict[str, MessageRow]:
    campaign = app.campaign(None)
    add(app, NAMES[:3], TUESDAY_10)
    ref = deliveries.create_manual(app, campaign, now=TUESDAY_10, actor="test")
    assert deliveries.build_and_send(app, ref.id, now=TUESDAY_10)
    with transaction(app.engine) as session:
        rows = list(session.scalars(select(MessageRow).where(MessageRow.kind == "dossier")))
        session.expunge_all()
    assert {r.status for r in rows} == {"sent"} and {r.parts for r in rows} == {1}
    return {r.recipient: r for r in rows}


def statuses(app: App) -> dict[str, tuple[str, str | None]]:
    with transaction(app.engine) as session:
        return {r.recipient: (r.status, r.bounce_kind) for r in session.scalars(
            select(MessageRow).where(MessageRow.kind == "dossier"))}


def alerts(app: App) -> list[bytes]:
    with transaction(app.engine) as session:
        return list(session.scalars(select(MessageBodyRow.content).join(MessageRow)
                                           .where(MessageRow.kind == "alert")))


def test_real_bounces_in_a_real_mailbox_mark_the_right_messages_once(
        make_app: AppFactory, smtp_server: SmtpServer, dovecot: Dovecot) -> None:
    app = make_app({**smtp_server.env(), **dovecot.env()}, campaign_toml())
    campaign = app.campaign(None)
    sent = sent_dossier(app)
    pm, migration = sent[PM], sent[MIGRATION]
    # Exim returns the Prime Minister's copy (5.1.1), a copy of that report lands twice, a DSN
    # says the Migration Service's server is still trying, a bounce of somebody else's mail and
    # a mail that is no bounce at all.
    exim = returned("exim_01", original=pm.message_id, address="userx@its.example.nl", to=PM)
    dovecot.append(exim)
    dovecot.append(b"Delivered-To: campaign@example.org\r\n" + exim)
    dovecot.append(returned("dsn_06", original=migration.message_id, address="userx@example.com",
                            to=MIGRATION))
    dovecot.append(sample("yahoo_13"))
    dovecot.append(sample("dumbass_01"))

    later = TUESDAY_10 + timedelta(hours=2)
    report = deliveries.tick(app, campaign, now=later)
    assert report.bounces == {"read": 5, "not_bounces": 1, "bounced": 1, "delayed": 1, "unmatched": 1,
                              "repeated": 1, "error": None}
    assert statuses(app) == {PM: ("bounced", "failed"), MIGRATION: ("sent", "delayed")}
    [delivery] = reports.deliveries(app, campaign, now=later)
    assert delivery.status == "failed"  # it was done: a recipient did not get it after all
    shown = {m.recipient: m for m in delivery.dossier_messages}
    assert shown[PM].bounce_status == "5.1.1"
    assert "unknown or illegal user" in (shown[PM].bounce_diagnostic or "")
    assert shown[PM].bounced_at == later.isoformat(timespec="seconds")
    assert shown[MIGRATION].status == "sent" and shown[MIGRATION].bounce_status == "4.4.0"
    text = deliveries_text([delivery])
    assert f"{PM} part 1/1: bounced" in text and "returned (" in text and "still tries" in text
    [alert] = alerts(app)
    assert PM.encode() in alert and b"5.1.1" in alert and MIGRATION.encode() not in alert
    with transaction(app.engine) as session:
        actions = [(a.actor, a.action) for a in session.scalars(select(AuditRow).order_by(AuditRow.id))]
    assert ("bounce reader", "message.bounced") in actions
    assert ("bounce reader", "delivery.bounced") in actions

    # A second reading finds nothing new; reading the whole folder again counts nothing twice.
    again = deliveries.tick(app, campaign, now=later + timedelta(minutes=1))
    assert again.bounces["read"] == 0
    with transaction(app.engine) as session:
        session.execute(delete(MailboxCursorRow))
    reread = bounces.poll_bounces(app, now=later + timedelta(minutes=2))
    assert (reread.read, reread.bounced, reread.delayed, reread.unmatched) == (5, 0, 0, 0)
    assert reread.repeated == 4 and reread.not_bounces == 1
    assert statuses(app) == {PM: ("bounced", "failed"), MIGRATION: ("sent", "delayed")}
    assert len(alerts(app)) == 1
    with transaction(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(BounceRow)) == 3  # the copy is one
    # The mailbox is left as people would find it: nothing marked read.
    assert not [f for f in dovecot.flags() if b"\\Seen" in f]

    # Once the address is checked, a retry sends the returned part again, and only that one.
    before = len(smtp_server.received)
    deliveries.change(app, campaign, "retry", delivery.id, now=later + timedelta(minutes=3),
                      actor="organizer")
    deliveries.tick(app, campaign, now=later + timedelta(minutes=3))
    assert statuses(app) == {PM: ("sent", None), MIGRATION: ("sent", "delayed")}
    assert [m.rcpt_tos for m in smtp_server.received[before:] if PM in m.rcpt_tos] == [[PM]]


def test_a_bounce_as_too_large_is_not_retried_with_the_same_bytes(
        make_app: AppFactory, smtp_server: SmtpServer, dovecot: Dovecot) -> None:
    app = make_app({**smtp_server.env(), **dovecot.env()}, campaign_toml())
    campaign = app.campaign(None)
    sent = sent_dossier(app)
    big = returned("dsn_11", original=sent[PM].message_id, address="joem@example.com",
                   to=PM).replace(b"5.1.1", b"5.3.4")
    dovecot.append(big)
    later = TUESDAY_10 + timedelta(hours=1)
    assert deliveries.tick(app, campaign, now=later).bounces["bounced"] == 1
    with pytest.raises(StateConflict, match="no failed message to retry"):
        deliveries.change(app, campaign, "retry", reports.deliveries(app, campaign, now=later)[0].id,
                          now=later, actor="organizer")


def test_a_mailbox_that_cannot_be_read_does_not_stop_sending(
        make_app: AppFactory, smtp_server: SmtpServer, dovecot: Dovecot) -> None:
    env = {**smtp_server.env(), **dovecot.env(), "DELIVERY_BOUNCE_IMAP_PASSWORD": "wrong"}
    app = make_app(env, campaign_toml())
    sent_dossier(app)
    report = deliveries.tick(app, app.campaign(None), now=TUESDAY_10 + timedelta(minutes=1))
    assert report.bounces["read"] == 0
    assert "login refused" in str(report.bounces["error"])
    assert "wrong" not in str(report.bounces["error"])  # the password is never repeated


def test_starttls_reads_the_same_mailbox(make_app: AppFactory, smtp_server: SmtpServer,
                                         dovecot: Dovecot) -> None:
    env = {**smtp_server.env(), **dovecot.env(), "DELIVERY_BOUNCE_IMAP_SECURITY": "starttls",
           "DELIVERY_BOUNCE_IMAP_PORT": str(dovecot.imap_port)}
    app = make_app(env, campaign_toml())
    sent = sent_dossier(app)
    dovecot.append(returned("dsn_10", original=sent[MIGRATION].message_id, address="anne.person@dom.ain",
                            to=MIGRATION))
    poll = bounces.poll_bounces(app, now=TUESDAY_10 + timedelta(minutes=1))
    assert (poll.read, poll.bounced, poll.error) == (1, 1, None)
    assert statuses(app)[MIGRATION] == ("bounced", "failed")


def test_with_verp_a_bounce_quoting_nothing_of_ours_finds_its_message_by_its_return_path(
        make_app: AppFactory, smtp_server: SmtpServer, dovecot: Dovecot) -> None:
    app = make_app({**smtp_server.env(), **dovecot.env(), "DELIVERY_BOUNCE_VERP": "on"}, campaign_toml())
    sent = sent_dossier(app)
    return_paths = {received.rcpt_tos[0]: received.mail_from for received in smtp_server.received}
    for address, row in sent.items():  # each dossier e-mail went with a return path of its own
        assert return_paths[address] == return_path("campaign@example.org", row.id, row.message_id)
    # a report that quotes none of our Message-IDs and names another address (a forward inside
    # the office), delivered to the Prime Minister's e-mail's return path
    anonymous = returned("dsn_11", original="<4F3A9@mx.elsewhere.example>", address="joem@example.com",
                         to="clerk@pm.example.org")
    dovecot.append(f"Delivered-To: {return_paths[PM]}\r\n".encode() + anonymous)
    # the same report at the Migration Service's row id with a check that does not fit its Message-ID
    forged = return_path("campaign@example.org", sent[MIGRATION].id, "<a guess@example.org>")
    dovecot.append(f"Delivered-To: {forged}\r\n".encode()
                   + anonymous.replace(b"Message-Id: <", b"Message-Id: <forged.", 1))  # a report of its own
    poll = bounces.poll_bounces(app, now=TUESDAY_10 + timedelta(minutes=5))
    assert (poll.read, poll.bounced, poll.unmatched) == (2, 1, 1)
    assert statuses(app) == {PM: ("bounced", "failed"), MIGRATION: ("sent", None)}
    again = bounces.poll_bounces(app, now=TUESDAY_10 + timedelta(minutes=6))
    assert (again.read, again.bounced) == (0, 0)
