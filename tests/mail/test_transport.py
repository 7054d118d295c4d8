"""transport: real aiosmtpd servers on loopback, each failure mapped to its TransportError leaf;
the .eml outbox written atomically and idempotently."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from delivery.errors import (
    AuthenticationFailed,
    MessageTooLarge,
    OutcomeUnknown,
    PermanentTransportError,
    TlsUnavailable,
    TransientTransportError,
)
from delivery.mail.transport import (
    SmtpReply,
    announced_size,
    eml_name,
    send_bytes,
    write_eml,
)
from delivery.settings import SmtpSettings
from tests.support.outbox_driver import message
from tests.support.smtp_faults import FaultyHandler, closed_port, faulty_server, silent_port, tls_files

_WRITTEN = message("d-0001", "prime-minister@example.org")
MID, CONTENT = _WRITTEN.message_id, _WRITTEN.whole()
TO = "prime-minister@example.org"


def smtp(port: int, **kw: object) -> SmtpSettings:
    values: dict[str, object] = {"host": "127.0.0.1", "port": port, "security": "none",
                                 "username": None, "timeout": 1.0}
    values.update(kw)
    return SmtpSettings(**values)  # type: ignore[arg-type]


def send(settings: SmtpSettings, deadline: float | None = None) -> SmtpReply:
    return asyncio.run(send_bytes(CONTENT, sender="campaign@example.org", recipient=TO,
                                  smtp=settings, deadline=deadline))


def test_accepted_message_arrives_byte_for_byte() -> None:
    with faulty_server() as server:
        reply = send(smtp(server.port))
    assert reply.code == 250 and "queued" in reply.text
    [got] = server.received
    assert got.rcpt_tos == [TO] and got.mail_from == "campaign@example.org"
    assert got.data == CONTENT  # dot-stuffing undone, nothing added
    assert got.message["Message-ID"] == MID


@pytest.mark.parametrize(("where", "reply", "leaf"), [
    ("data", "451 4.3.0 try later", TransientTransportError),
    ("data", "550 5.7.1 refused", PermanentTransportError),
    ("data", "552 5.3.4 too big", MessageTooLarge),
    ("rcpt", "550 5.1.1 no such user", PermanentTransportError),
    ("rcpt", "450 4.2.0 greylisted, try again in 5 minutes", TransientTransportError),
])
def test_refusals_raise_their_leaf_with_code_and_text(where: str, reply: str,
                                                      leaf: type[Exception]) -> None:
    handler = FaultyHandler(**{f"{where}_script": [reply]})  # type: ignore[arg-type]
    with faulty_server(handler) as server, pytest.raises(leaf) as info:
        send(smtp(server.port))
    assert type(info.value) is leaf
    assert info.value.code == int(reply[:3])  # type: ignore[attr-defined]
    assert info.value.text == reply[4:]  # type: ignore[attr-defined]
    assert server.received == []


def test_bad_login_is_authentication_failed_and_sends_nothing() -> None:
    with faulty_server(auth=True) as server, pytest.raises(AuthenticationFailed) as info:
        send(smtp(server.port, username="campaign", password="wrong"))
    assert info.value.code == 535
    assert server.handler.logins and all(name == "campaign" and not ok for name, ok in server.handler.logins)
    assert server.handler.data_seen == 0


def test_good_login_sends() -> None:
    with faulty_server(auth=True) as server:
        assert send(smtp(server.port, username="campaign", password="right")).code == 250
    assert server.handler.logins == [("campaign", True)] and len(server.received) == 1


def test_server_that_never_greets_times_out() -> None:
    with silent_port() as port, pytest.raises(TransientTransportError) as info:
        started = time.monotonic()
        send(smtp(port, timeout=0.3))
    assert time.monotonic() - started < 2
    assert not isinstance(info.value, OutcomeUnknown)  # nothing was handed over
    assert "Timed out" in info.value.text


def test_overall_deadline_bounds_a_message() -> None:
    with silent_port() as port, pytest.raises(TransientTransportError):
        started = time.monotonic()
        send(smtp(port, timeout=10), deadline=0.3)
    assert time.monotonic() - started < 2


def test_refused_connection_is_transient() -> None:
    with pytest.raises(TransientTransportError) as info:
        send(smtp(closed_port()))
    assert not isinstance(info.value, OutcomeUnknown)


@pytest.mark.parametrize("fault", ["stall", "drop"])
def test_lost_answer_after_the_final_dot_is_outcome_unknown(fault: str) -> None:
    handler = FaultyHandler(data_script=[fault], stall_seconds=1.0)
    with faulty_server(handler) as server, pytest.raises(OutcomeUnknown):
        send(smtp(server.port, timeout=0.3))
    assert [r.data for r in server.received] == [CONTENT]  # it did arrive


def test_starttls_required_but_not_offered_sends_nothing_in_clear() -> None:
    with faulty_server(auth=True) as server, pytest.raises(TlsUnavailable) as info:
        send(smtp(server.port, security="starttls", username="campaign", password="right"))
    assert isinstance(info.value, AuthenticationFailed)  # pauses the account
    assert server.handler.data_seen == 0 and server.handler.logins == []  # no password in clear


def test_unreadable_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    with faulty_server() as server, pytest.raises(TlsUnavailable) as info:
        send(smtp(server.port, security="starttls", ca_file=tmp_path / "missing.pem"))
    assert "CA file" in info.value.text and server.handler.data_seen == 0


def test_starttls_with_verified_certificate(tmp_path: Path) -> None:
    files = tls_files(tmp_path)
    with faulty_server(tls_context=files.server_context()) as server:
        reply = send(smtp(server.port, security="starttls", ca_file=files.cert))
    assert reply.code == 250 and len(server.received) == 1


def test_starttls_with_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    files = tls_files(tmp_path)
    with faulty_server(tls_context=files.server_context()) as server, \
            pytest.raises(TransientTransportError) as info:
        send(smtp(server.port, security="starttls"))  # system roots do not know it
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.text
    assert server.handler.data_seen == 0


def test_implicit_tls_port_465_style(tmp_path: Path) -> None:
    files = tls_files(tmp_path)
    with faulty_server(ssl_context=files.server_context()) as server:
        reply = send(smtp(server.port, security="tls", ca_file=files.cert))
    assert reply.code == 250 and len(server.received) == 1


def test_write_eml_is_atomic_and_idempotent(tmp_path: Path) -> None:
    first = write_eml(CONTENT, message_id=MID, outbox_dir=tmp_path / "outbox")
    mtime = first.stat().st_mtime_ns
    again = write_eml(CONTENT, message_id=MID, outbox_dir=tmp_path / "outbox")
    assert again == first and first.read_bytes() == CONTENT
    assert first.stat().st_mtime_ns == mtime  # not rewritten
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [first.name]  # no temp files
    assert first.suffix == ".eml"


def test_eml_names_are_safe_and_distinct(tmp_path: Path) -> None:
    evil = write_eml(b"x", message_id="<../../etc/passwd@x>", outbox_dir=tmp_path)
    assert evil.parent == tmp_path and "/" not in evil.name and not evil.name.startswith(".")
    assert eml_name("<a/b@x>") != eml_name("<a_b@x>")


# --- the server's SIZE ------------------------------------------------------------------------

@pytest.mark.parametrize("limit", [1_000_000, 10_240_000])
def test_announced_size_is_the_servers_ehlo_size(limit: int) -> None:
    with faulty_server(data_size_limit=limit) as server:
        assert asyncio.run(announced_size(smtp(server.port))) == limit


def test_a_server_with_no_fixed_limit_or_none_to_ask_announces_no_size() -> None:
    with faulty_server(data_size_limit=0) as server:  # RFC 1870: "SIZE 0", no fixed maximum
        assert asyncio.run(announced_size(smtp(server.port))) is None
    assert asyncio.run(announced_size(smtp(closed_port()))) is None
    with silent_port() as port:
        started = time.monotonic()
        assert asyncio.run(announced_size(smtp(port, timeout=0.3))) is None
        assert time.monotonic() - started < 3
