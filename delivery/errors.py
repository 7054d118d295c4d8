"""Every error petition-delivery raises on purpose: one hierarchy, leaves that carry data.

The CLI maps `UsageError` and its children to exit 2 and every other `DeliveryError` to exit 1,
printing `str(error)`: each message is one line a campaigner can act on.
"""

from __future__ import annotations

from dataclasses import dataclass


class DeliveryError(Exception):
    """Base of every error this package raises on purpose."""


class BuildStopped(Exception):
    """Raised inside a build (through its progress callback) when shutdown cannot wait any longer.

    Not a DeliveryError on purpose: the service must not mark the delivery failed; its build
    lease is handed back instead and another instance, or the next start, builds it again.
    """


class UsageError(DeliveryError):
    """Bad usage or unusable input: the CLI exits 2."""


class ConfigError(UsageError):
    """A campaign file or an environment variable is wrong."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}")


@dataclass(frozen=True)
class MissingPiece:
    """One thing a recipient language lacks: which file (and key in it), for which language, why;
    `needed_by` is the campaign file's key that asks for the language."""

    file: str
    key: str  # "" for a whole template file; "[ru] to, from" for fixed texts
    language: str
    problem: str
    needed_by: str

    def __str__(self) -> str:
        return f"{self.file}{' ' + self.key if self.key else ''} ({self.problem})"


class CampaignIncomplete(ConfigError):
    """A campaign addresses a recipient in a language its templates do not fully have."""

    def __init__(self, source: str, pieces: list[MissingPiece]) -> None:
        self.pieces = pieces
        first = pieces[0]
        same = [p for p in pieces if p.language == first.language]
        others = len(pieces) - len(same)
        super().__init__(source, first.needed_by,
                         f"language '{first.language}' lacks " + "; ".join(str(p) for p in same)
                         + (f"; and {others} more for other languages" if others else ""))


class InputRefused(UsageError):
    """A whole input (a CSV file, a request body) is refused before anything is written."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class RowRejected(DeliveryError):
    """One signer row is invalid; intake reports it and goes on."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class NotFound(UsageError):
    """A campaign, delivery or signer named on the command line does not exist."""


class StateConflict(DeliveryError):
    """The action does not fit the object's current state (e.g. release a sent delivery)."""


class RenderError(DeliveryError):
    """The dossier could not be built; nothing is sent."""


class SigningError(DeliveryError):
    """Signing is configured but cannot be done; nothing is sent (fail closed)."""

    retryable = False


class SigningUnavailable(SigningError):
    """A service the signature needs (the timestamp authority, an OCSP responder or CRL server)
    did not answer: nothing was signed or sent, and the same build succeeds once it answers."""

    retryable = True


class OversizedMessage(DeliveryError):
    """A built e-mail would exceed what its recipient's server takes; nothing is sent to anyone."""

    def __init__(self, recipient: str, part: int, parts: int, size: int, limit: int) -> None:
        self.recipient, self.part, self.parts, self.size, self.limit = (recipient, part, parts,
                                                                        size, limit)
        super().__init__(f"the e-mail {part} of {parts} to {recipient} would be {size:,} bytes, "
                         f"more than the {limit:,} its server takes (max_message_size, or the "
                         "SMTP server's SIZE); nothing was sent")


class TransportError(DeliveryError):
    """Sending one message failed. Leaves say whether to retry."""

    def __init__(self, message: str, *, code: int | None = None, recipient: str | None = None) -> None:
        self.code = code
        self.recipient = recipient
        self.text = message
        super().__init__(message if code is None else f"{code} {message}")


class TransientTransportError(TransportError):
    """4xx, timeouts, dropped connections: try again later."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        recipient: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, recipient=recipient)
        self.retry_after = retry_after


class PermanentTransportError(TransportError):
    """5xx: the server will never accept this message as it is."""


class MessageTooLarge(PermanentTransportError):
    """552: never resend the same bytes; split or fail."""


class AuthenticationFailed(TransportError):
    """535: the account is wrong; pause sending for it, burn no retries."""


class OutcomeUnknown(TransientTransportError):
    """The whole message was handed over and then the answer never came (dropped, timed out):
    the server may have accepted it. The retry resends the same bytes and is counted."""


class TlsUnavailable(AuthenticationFailed):
    """TLS cannot be had as configured (STARTTLS not offered, CA file unreadable): nothing was
    sent in clear. A configuration problem of the account, handled like a refused login."""


class StoredMessageChanged(DeliveryError):
    """A queued e-mail no longer makes, from what is stored, the bytes it was built as (a file of
    its delivery that it attaches changed, or the whole has another length): it is never sent,
    and fails like a message the server refused for good."""

    def __init__(self, message_id: int, problem: str) -> None:
        self.message_id, self.problem = message_id, problem
        super().__init__(f"message {message_id}: {problem}; it is not sent")


class MailboxError(DeliveryError):
    """The bounce mailbox could not be read (connection, TLS, login, folder): nothing of it was
    marked read; the next tick tries again."""

    def __init__(self, account: str, problem: str) -> None:
        self.account = account
        self.problem = problem
        super().__init__(f"bounce mailbox {account}: {problem}")
