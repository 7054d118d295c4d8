"""A mail from the sender's mailbox (bytes) → a Bounce: which recipients failed or were delayed,
the Message-IDs of the original it quotes, its status code and one line of diagnostic; or None
when the mail is not a bounce.

Pure: no I/O. flufl.bounce (maintained by the Mailman project, tested against real bounces from
many mail servers) decides whether a mail is a bounce and which addresses it reports, as
permanent or temporary failures; RFC 3464's delivery-status fields, when there are any, give the
status and the server's words. The original's Message-IDs come from where bounces carry them: a
returned message (message/rfc822), returned headers (text/rfc822-headers) or headers quoted in the
text. Every `<…@…>` found there is only a candidate: the outbox matches them against the
Message-IDs it wrote, exactly, so a bounce names one of our messages or none.

A bounce can quote the whole dossier it returns: nothing of it is kept but what is listed here,
the diagnostic cut to one line.
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum
from itertools import takewhile

from flufl.bounce import all_failures

# flufl.bounce logs each detector it runs at INFO: noise in the service's log.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

MESSAGE_ID = re.compile(rb"<([^<>\s@]{1,200}@[^<>\s@]{1,200})>")
# A VERP return path (delivery.mail.message.return_path): the outbox row's id and a check on its
# Message-ID
RETURN_TAG = re.compile(r"\+b-(\d{1,18})-([0-9a-f]{8})@", re.IGNORECASE)
# where a report names the address it was delivered to
DELIVERED_TO = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Return-Path")
QUOTED_MESSAGE_ID = re.compile(rb"^[ >\t]*Message-Id:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
STATUS = re.compile(r"\b([45]\.\d{1,3}\.\d{1,3})\b")
SMTP_CODE = re.compile(r"\b[45]\d\d[ -]")
DIAGNOSTIC_LIMIT = 300
CANDIDATE_LIMIT = 50
TEXT_LIMIT = 200_000  # of each text part, for the quoted headers: enough for any report


class BounceKind(StrEnum):
    FAILED = "failed"  # the server gave up: the message did not arrive
    DELAYED = "delayed"  # the server is still trying: nothing is decided yet


@dataclass(frozen=True)
class Bounce:
    kind: BounceKind
    fingerprint: str  # the same report seen twice (a copy, a second poll) is one bounce
    addresses: tuple[str, ...]  # the recipients the report names, lower-case
    message_ids: tuple[str, ...]  # candidates for the original's Message-ID, in the order found
    status: str | None  # RFC 3463, e.g. "5.1.1"
    diagnostic: str
    # (outbox row id, check) from a VERP return path the report was delivered to
    return_tags: tuple[tuple[int, str], ...] = ()



def read_bounce(raw: bytes) -> Bounce | None:
    """The bounce `raw` is, or None when it is not one (a reply, an auto-reply, spam)."""
    msg = email.message_from_bytes(raw)
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector that trips over a malformed mail: then it is not a report we can read
        temporary, permanent = frozenset(), frozenset()
    fields = _delivery_status(msg)
    failed = {a for a, f in fields.items() if f.get("action", "").startswith(("fail", "error"))}
    delayed = {a for a, f in fields.items() if f.get("action", "").startswith("delayed")}
    permanent_addresses = {_address(a) for a in permanent} | failed
    temporary_addresses = ({_address(a) for a in temporary} | delayed) - permanent_addresses
    if not permanent_addresses and not temporary_addresses:
        return None
    kind = BounceKind.FAILED if permanent_addresses else BounceKind.DELAYED
    addresses = tuple(sorted(permanent_addresses or temporary_addresses))
    status, diagnostic = _status_and_diagnostic(msg, [fields[a] for a in addresses if a in fields])
    return Bounce(kind=kind, fingerprint=_fingerprint(msg, raw), addresses=addresses,
                  message_ids=_original_message_ids(msg), status=status, diagnostic=diagnostic,
                  return_tags=_return_tags(msg))


def _return_tags(msg: Message) -> tuple[tuple[int, str], ...]:
    found: dict[tuple[int, str], None] = {}
    for header in DELIVERED_TO:
        for value in msg.get_all(header) or []:
            for row_id, check in RETURN_TAG.findall(str(value)):
                found[(int(row_id), check.lower())] = None
    return tuple(found)[:CANDIDATE_LIMIT]


def _address(value: bytes | str) -> str:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    return text.strip().strip("<>").lower()


def _fingerprint(msg: Message, raw: bytes) -> str:
    """The report's own Message-ID (the same report in two folders, or fetched twice), else its
    bytes."""
    own = (msg.get("Message-ID") or "").strip()
    return hashlib.sha256(own.encode("utf-8", "replace") if own else raw).hexdigest()


def _delivery_status(msg: Message) -> dict[str, dict[str, str]]:
    """RFC 3464 per-recipient fields (lower-case names), by recipient address."""
    found: dict[str, dict[str, str]] = {}
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload():
            if not isinstance(block, Message):
                continue
            recipient = block.get("Final-Recipient") or block.get("Original-Recipient") or ""
            address = _address(recipient.split(";", 1)[-1])
            if "@" in address:
                found[address] = {k.lower(): " ".join(str(v).split()) for k, v in block.items()}
    return found


def _status_and_diagnostic(msg: Message, fields: list[dict[str, str]]) -> tuple[str | None, str]:
    for f in fields:
        status = STATUS.search(f.get("status", ""))
        words = f.get("diagnostic-code", "").split(";", 1)[-1].strip()
        if status or words:
            return (status.group(1) if status else None), _one_line(words or f.get("status", ""))
    # A non-standard report: the first line that reads like a server's refusal
    for text in _texts(msg):
        lines = text.splitlines()
        for i, line in enumerate(lines):
            status = STATUS.search(line)
            if status or SMTP_CODE.search(line):
                # with the indented lines that continue it (Postfix wraps the server's answer)
                more = list(takewhile(lambda n: n[:1] in (" ", "\t") and n.strip(), lines[i + 1:i + 6]))
                return (status.group(1) if status else None), _one_line(" ".join([line, *more]))
    return None, _one_line(str(msg.get("Subject", "")))


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= DIAGNOSTIC_LIMIT else line[:DIAGNOSTIC_LIMIT - 1] + "…"


def _texts(msg: Message) -> list[str]:
    texts = []
    for part in msg.walk():
        if part.get_content_maintype() == "text" and part.get_content_type() != "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    texts.append(payload[:TEXT_LIMIT].decode(charset, "replace"))
                except LookupError:
                    texts.append(payload[:TEXT_LIMIT].decode("utf-8", "replace"))
    return texts


def _original_message_ids(msg: Message) -> tuple[str, ...]:
    found: list[str] = []

    def add(value: str | bytes | None) -> None:
        if value is None:
            return
        data = value.encode("utf-8", "replace") if isinstance(value, str) else value
        for match in MESSAGE_ID.finditer(data):
            candidate = f"<{match.group(1).decode('ascii', 'replace')}>"
            if candidate not in found and len(found) < CANDIDATE_LIMIT:
                found.append(candidate)

    own = (msg.get("Message-ID") or "").strip()
    for part in msg.walk():
        if part is msg:
            continue
        kind = part.get_content_type()
        if kind == "message/rfc822" and part.is_multipart():
            for inner in part.get_payload():
                if isinstance(inner, Message):
                    for header in ("Message-ID", "In-Reply-To", "References"):
                        add(inner.get(header))
        elif kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                returned = email.message_from_bytes(payload)
                add(returned.get("Message-ID"))
        elif part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                for quoted in QUOTED_MESSAGE_ID.finditer(payload[:TEXT_LIMIT]):
                    add(quoted.group(1))
    if not msg.is_multipart():  # a plain-text report quoting the original's headers
        payload = msg.get_payload(decode=True)
        if isinstance(payload, bytes):
            for quoted in QUOTED_MESSAGE_ID.finditer(payload[:TEXT_LIMIT]):
                add(quoted.group(1))
    return tuple(m for m in found if m != own)
