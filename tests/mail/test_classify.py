"""classify: every SMTP answer and failure maps to the right outcome, deterministically."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

import pytest

from delivery.errors import (
    AuthenticationFailed,
    MessageTooLarge,
    PermanentTransportError,
    TransientTransportError,
)
from delivery.mail.classify import (
    Outcome,
    RetryPolicy,
    Verdict,
    classify,
    queue_id,
    retry_hint,
    verdict,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(base_delay=timedelta(minutes=1), factor=2, max_delay=timedelta(hours=2),
                     max_age=timedelta(days=2), max_attempts=50)


def run(error: BaseException | None = None, *, code: int | None = None, text: str = "",
        attempts: int = 1, age: timedelta = timedelta(0), rand: float = 0.0) -> Outcome:
    return classify(error, code=code, text=text, attempts=attempts, first_attempt_at=NOW - age,
                    now=NOW, policy=POLICY, rand=lambda: rand)


@pytest.mark.parametrize("code", [421, 450, 451, 452])
def test_transient_codes_retry_with_backoff(code: int) -> None:
    outcome = run(TransientTransportError("busy", code=code), code=code, text="busy")
    assert outcome.action == "retry"
    assert (outcome.code, outcome.text) == (code, "busy")
    assert outcome.next_attempt_at == NOW + timedelta(seconds=30)  # half of 1 min, no jitter


def test_backoff_is_exponential_with_injected_jitter_and_capped() -> None:
    assert run(code=451, attempts=3, rand=0.0).next_attempt_at == NOW + timedelta(minutes=2)
    assert run(code=451, attempts=3, rand=1.0).next_attempt_at == NOW + timedelta(minutes=4)
    assert run(code=451, attempts=3, rand=0.5).next_attempt_at == NOW + timedelta(minutes=3)
    capped = run(code=451, attempts=30, rand=1.0)
    assert capped.next_attempt_at == NOW + POLICY.max_delay


@pytest.mark.parametrize(("text", "delay"), [
    ("4.7.1 Greylisted, please retry in 90 seconds", timedelta(seconds=90)),
    ("Too many connections, try again in 5 minutes", timedelta(minutes=5)),
    ("Rate limited. Try again after 2 hours", timedelta(hours=2)),
    ("Try again in 30 min", timedelta(minutes=30)),
])
def test_server_retry_hint_is_honoured(text: str, delay: timedelta) -> None:
    assert retry_hint(text) == delay
    assert run(code=450, text=text, rand=1.0).next_attempt_at == NOW + delay


def test_retry_hint_is_bounded_by_max_delay_and_absent_hint_is_none() -> None:
    assert run(code=450, text="try again in 900 minutes").next_attempt_at == NOW + POLICY.max_delay
    assert retry_hint("4.3.0 temporary failure") is None


def test_retries_stop_at_max_age_and_max_attempts() -> None:
    old = run(code=451, text="busy", age=timedelta(days=2) - timedelta(seconds=10))
    assert (old.action, old.reason, old.code) == ("failed", "expired", 451)
    assert "busy" in old.text and "gave up after 1 attempts" in old.text
    young = run(code=451, text="busy", age=timedelta(days=1))
    assert young.action == "retry"
    many = run(code=451, attempts=POLICY.max_attempts)
    assert (many.action, many.reason) == ("failed", "expired")


@pytest.mark.parametrize("code", [550, 553, 554])
def test_permanent_codes_fail_keeping_code_and_text(code: int) -> None:
    outcome = run(PermanentTransportError("5.1.1 no such user", code=code), code=code,
                  text="5.1.1 no such user")
    assert outcome == Outcome("failed", code, "5.1.1 no such user", None, "rejected")


def test_too_large_fails_with_reason_never_retried() -> None:
    outcome = run(MessageTooLarge("5.3.4 message size exceeds limit", code=552), code=552,
                  text="5.3.4 message size exceeds limit")
    assert (outcome.action, outcome.reason, outcome.code) == ("failed", "too_large", 552)
    assert outcome.text.startswith("message too large")
    # an enhanced status 5.3.4 means the same under another basic code
    assert run(code=554, text="5.3.4 Message too big for system").reason == "too_large"


def test_authentication_pauses_without_a_retry_time() -> None:
    outcome = run(AuthenticationFailed("5.7.8 bad credentials", code=535), code=535,
                  text="5.7.8 bad credentials")
    assert outcome == Outcome("pause", 535, "5.7.8 bad credentials", None, "auth")
    # a configuration error without a code (STARTTLS missing) pauses too
    assert run(AuthenticationFailed("no STARTTLS"), text="no STARTTLS").action == "pause"


def test_unknown_codes_4xx_retry_5xx_fail() -> None:
    assert run(code=432, text="odd").action == "retry"
    assert run(code=571, text="odd").action == "failed"
    assert verdict(None, 499) is Verdict.RETRY
    assert verdict(None, 599) is Verdict.FAILED


@pytest.mark.parametrize("error", [
    TimeoutError("timed out"), ConnectionRefusedError("refused"), ConnectionResetError("reset"),
    ssl.SSLError("handshake failure"), TransientTransportError("dropped"), RuntimeError("bug"),
])
def test_errors_without_a_code_retry(error: BaseException) -> None:
    assert run(error, text=str(error)).action == "retry"


def test_success_is_sent() -> None:
    assert run(code=250, text="2.0.0 queued as 1234") == Outcome(
        "sent", 250, "2.0.0 queued as 1234", None, "sent")
    assert run(text="written to x.eml").action == "sent"  # the .eml outbox has no code


def test_code_wins_over_a_mismatched_error_class() -> None:
    # the table is the one authority: a 550 stays permanent whatever wrapper carried it
    assert run(TransientTransportError("x", code=550), code=550).action == "failed"


@pytest.mark.parametrize(("text", "expected"), [
    ("2.0.0 Ok: queued as 4F3A21C0B5", "4F3A21C0B5"),  # Postfix
    ("OK id=1rX2Yz-000ABC-12", "1rX2Yz-000ABC-12"),  # Exim
    ("2.6.0 <SM-1.ab12.1@example.org> [InternalId=64416020480012, Hostname=EX01.example.am] "
     "Queued mail for delivery", "64416020480012"),  # Exchange, Microsoft 365
    ("2.0.0 OK  1701234567 a1-20020a05600c4e0100b0040c3e0f0e2esi123456wmq.12 - gsmtp",
     "a1-20020a05600c4e0100b0040c3e0f0e2esi123456wmq.12"),  # Gmail
    ("2.0.0 3B9AbcDE012345 Message accepted for delivery", "3B9AbcDE012345"),  # sendmail
    ("2.0.0 Ok: queued", None),  # aiosmtpd, and servers that name none
    ("written to SM-1.eml", None),  # the outbox folder
])
def test_the_accepting_servers_queue_id_is_read_from_its_answer(text: str,
                                                                expected: str | None) -> None:
    assert queue_id(text) == expected
