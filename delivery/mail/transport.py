"""Stored message bytes + envelope + SMTP settings → the server's reply, or a TransportError leaf;
or, without an SMTP host, → an .eml file in the outbox folder.

The one module that imports aiosmtplib. One recipient per SMTP transaction, so each answer
belongs to exactly one outbox row. The bytes are sent exactly as stored: no re-encoding, no new
headers, so every retry is the same e-mail with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import re
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib

from delivery.errors import (
    AuthenticationFailed,
    MessageTooLarge,
    OutcomeUnknown,
    PermanentTransportError,
    TlsUnavailable,
    TransientTransportError,
    TransportError,
)
from delivery.mail.classify import Verdict, verdict
from delivery.settings import SmtpSettings

# The overall deadline per message, as a multiple of the per-operation timeout: a server that
# answers each command just in time must not hold a worker (and its lease) for ever.
DEADLINE_FACTOR = 5
QUIT_TIMEOUT = 2.0
UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")


@dataclass(frozen=True)
class SmtpReply:
    code: int
    text: str


@functools.cache
def _local_hostname() -> str:
    return socket.getfqdn()


def tls_context(smtp: SmtpSettings) -> ssl.SSLContext:
    """Verified TLS: system roots, or the configured CA file; hostname checked."""
    return ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)


async def send_bytes(
    content: bytes,
    *,
    sender: str,
    recipient: str,
    smtp: SmtpSettings,
    deadline: float | None = None,
) -> SmtpReply:
    """Deliver `content` to one recipient. Returns the final 2xx reply; raises a TransportError
    leaf (TransientTransportError, OutcomeUnknown, PermanentTransportError, MessageTooLarge,
    AuthenticationFailed, TlsUnavailable) otherwise."""
    try:
        context = tls_context(smtp) if smtp.security != "none" else None
    except (OSError, ssl.SSLError) as exc:
        raise TlsUnavailable(f"cannot load the CA file {smtp.ca_file}: {exc}",
                             recipient=recipient) from exc
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        timeout=smtp.timeout,
        use_tls=smtp.security == "tls",
        start_tls=False,  # we upgrade ourselves, after checking it is offered
        tls_context=context,
        local_hostname=_local_hostname(),
    )
    handed_over = [False]
    try:
        async with asyncio.timeout(deadline or smtp.timeout * DEADLINE_FACTOR):
            reply = await _transaction(client, content, sender, recipient, smtp, handed_over)
    except TransportError:
        await _close(client)
        raise
    except aiosmtplib.SMTPResponseException as exc:  # any refusal, RCPT's included: one recipient
        await _close(client)
        raise _from_code(exc.code, exc.message, recipient) from exc
    except (aiosmtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, TLS, refused
        await _close(client)
        text = _describe(exc)
        if handed_over[0]:
            raise OutcomeUnknown(f"no answer after the message was sent ({text})",
                                 recipient=recipient) from exc
        raise TransientTransportError(text, recipient=recipient) from exc
    except ValueError as exc:  # an address aiosmtplib refuses to put on the wire
        await _close(client)
        raise PermanentTransportError(f"invalid address: {exc}", recipient=recipient) from exc
    await _quit(client)
    return reply


async def announced_size(smtp: SmtpSettings) -> int | None:
    """The largest message the server says it takes (its EHLO SIZE), after STARTTLS where
    configured; None when it announces none or cannot be asked now (sending will find out)."""
    try:
        context = tls_context(smtp) if smtp.security != "none" else None
    except (OSError, ssl.SSLError):
        return None
    client = aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port, timeout=smtp.timeout,
                             use_tls=smtp.security == "tls", start_tls=False, tls_context=context,
                             local_hostname=_local_hostname())
    try:
        async with asyncio.timeout(smtp.timeout * DEADLINE_FACTOR):
            await client.connect()
            await client.ehlo()
            if smtp.security == "starttls" and client.supports_extension("starttls"):
                await client.starttls()
                await client.ehlo()
            size = client.esmtp_extensions.get("size", "")
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        await _close(client)
        return None
    await _quit(client)
    # RFC 1870: SIZE 0 (or none) announces no fixed limit
    return int(size) if size.strip().isdigit() and int(size) > 0 else None


async def _transaction(
    client: aiosmtplib.SMTP,
    content: bytes,
    sender: str,
    recipient: str,
    smtp: SmtpSettings,
    handed_over: list[bool],
) -> SmtpReply:
    await client.connect()
    await client.ehlo()
    if smtp.security == "starttls":
        if not client.supports_extension("starttls"):
            raise TlsUnavailable("the server does not offer STARTTLS; nothing was sent",
                                 recipient=recipient)
        await client.starttls()
        await client.ehlo()
    if smtp.username is not None:
        if not client.supports_extension("auth"):
            raise AuthenticationFailed("the server offers no AUTH on this connection",
                                       recipient=recipient)
        await client.login(smtp.username, smtp.password or "")
    # Declaring the size lets a server refuse an oversized message (552) before any byte of it.
    options = [f"SIZE={len(content)}"] if client.supports_extension("size") else []
    await client.mail(sender, options=options)
    await client.rcpt(recipient)
    # From here the server may receive the final dot: a lost answer means "maybe delivered".
    handed_over[0] = True
    response = await client.data(content)
    return SmtpReply(response.code, response.message)


async def _quit(client: aiosmtplib.SMTP) -> None:
    """Say goodbye politely; the message is already accepted, so nothing here may fail it."""
    await _close(client, polite=True)


async def _close(client: aiosmtplib.SMTP, *, polite: bool = False) -> None:
    """Close, and give a TLS connection a moment to finish its shutdown, so the socket is really
    released before the caller's event loop ends (not left to the garbage collector)."""
    sock = client.transport.get_extra_info("socket") if client.transport is not None else None
    if polite:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            await client.quit(timeout=QUIT_TIMEOUT)
    client.close()
    for _ in range(100):
        if sock is None or sock.fileno() == -1:
            return
        await asyncio.sleep(0.01)


def _from_code(code: int, text: str, recipient: str) -> TransportError:
    meaning = verdict(None, code, text)
    if meaning is Verdict.PAUSE:
        return AuthenticationFailed(text, code=code, recipient=recipient)
    if meaning is Verdict.TOO_LARGE:
        return MessageTooLarge(text, code=code, recipient=recipient)
    if meaning is Verdict.FAILED:
        return PermanentTransportError(text, code=code, recipient=recipient)
    return TransientTransportError(text, code=code, recipient=recipient)


def _describe(exc: BaseException) -> str:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, aiosmtplib.SMTPException):
        return detail
    return f"{type(exc).__name__}: {detail}"


def eml_name(message_id: str) -> str:
    """A file name derived from the Message-ID only: safe on any file system, and distinct for
    distinct ids even when their unsafe characters map alike."""
    core = UNSAFE.sub("_", message_id.strip().strip("<>"))[:120].lstrip(".") or "message"
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:10]
    return f"{core}-{digest}.eml"


def write_eml(content: bytes, *, message_id: str, outbox_dir: Path) -> Path:
    """Write the stored bytes atomically (temp file, fsync, rename); writing again is a no-op."""
    outbox_dir.mkdir(parents=True, exist_ok=True)
    target = outbox_dir / eml_name(message_id)
    if target.is_file() and target.read_bytes() == content:
        return target
    fd, temp = tempfile.mkstemp(dir=outbox_dir, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return target
