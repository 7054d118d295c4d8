"""The bounce mailbox (ImapSettings) + where the last reading stopped → the mails that arrived
since, as (UID, bytes).

The one module that speaks IMAP (the standard library's imaplib: one login, one SELECT, one
SEARCH and a FETCH per new mail; a tick reads at most `limit` of them). The folder is opened
read-only and fetched with BODY.PEEK: the service changes nothing in a mailbox people may read
too. A reading starts after the last UID seen; when the folder's UIDVALIDITY changed (the
folder was re-created), every UID is new again, and the bounces' fingerprints keep a report
from counting twice. Only the first `max_bytes` of a mail are read: a bounce says what happened
at the start, and may return the whole dossier after it.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import ssl
from dataclasses import dataclass

from delivery.errors import MailboxError
from delivery.settings import ImapSettings

MAX_BYTES = 1_000_000
FETCH_LIMIT = 200
UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
FETCHED_UID = re.compile(rb"UID (\d+)")


@dataclass(frozen=True)
class Reading:
    uidvalidity: int
    mails: list[tuple[int, bytes]]  # (UID, the mail's first bytes), in UID order
    more: bool  # mails beyond `limit` wait for the next reading


def read_new(imap: ImapSettings, *, uidvalidity: int | None, after_uid: int,
             limit: int = FETCH_LIMIT, max_bytes: int = MAX_BYTES) -> Reading:
    """The mails with a UID above `after_uid` (all of them when `uidvalidity` changed)."""
    try:
        client = _connect(imap)
    except (OSError, ssl.SSLError, imaplib.IMAP4.error) as exc:
        raise MailboxError(imap.account, f"cannot connect: {_describe(exc)}") from exc
    try:
        try:
            client.login(imap.username, imap.password or "")
        except imaplib.IMAP4.error as exc:
            raise MailboxError(imap.account, f"login refused: {_describe(exc)}") from exc
        status, _ = client.select(_quoted(imap.mailbox), readonly=True)
        if status != "OK":
            raise MailboxError(imap.account, f"no folder named {imap.mailbox!r}")
        current = _uidvalidity(client, imap)
        if current != uidvalidity:
            after_uid = 0
        status, data = client.uid("SEARCH", f"UID {after_uid + 1}:*")
        if status != "OK":
            raise MailboxError(imap.account, "the server refused to list the new mails")
        # "n:*" always includes the highest UID, even when it is below n
        uids = sorted(u for u in (int(x) for x in b" ".join(d for d in data if d).split()) if u > after_uid)
        mails = [(uid, _fetch(client, imap, uid, max_bytes)) for uid in uids[:limit]]
        return Reading(current, [(uid, raw) for uid, raw in mails if raw is not None],
                       more=len(uids) > limit)
    except (OSError, ssl.SSLError, imaplib.IMAP4.error) as exc:
        raise MailboxError(imap.account, _describe(exc)) from exc
    finally:
        with contextlib.suppress(OSError, ssl.SSLError, imaplib.IMAP4.error):
            client.logout()


def _connect(imap: ImapSettings) -> imaplib.IMAP4:
    context = ssl.create_default_context(cafile=str(imap.ca_file) if imap.ca_file else None)
    if imap.security == "tls":
        return imaplib.IMAP4_SSL(imap.host, imap.port, ssl_context=context, timeout=imap.timeout)
    client = imaplib.IMAP4(imap.host, imap.port, timeout=imap.timeout)
    try:
        client.starttls(ssl_context=context)  # refuses when not offered: never read in clear
    except BaseException:
        client.shutdown()
        raise
    return client


def _fetch(client: imaplib.IMAP4, imap: ImapSettings, uid: int, max_bytes: int) -> bytes | None:
    status, data = client.uid("FETCH", str(uid), f"(UID BODY.PEEK[]<0.{max_bytes}>)")
    if status != "OK":
        raise MailboxError(imap.account, f"the server refused to give mail {uid}")
    for item in data:
        if isinstance(item, tuple) and (m := FETCHED_UID.search(item[0])) and int(m.group(1)) == uid:
            return bytes(item[1])
    return None  # expunged since the search


def _uidvalidity(client: imaplib.IMAP4, imap: ImapSettings) -> int:
    """From the SELECT's answer (RFC 3501 makes servers send it), else asked for."""
    _, data = client.response("UIDVALIDITY")
    for item in data or ():
        if isinstance(item, bytes) and item.isdigit():
            return int(item)
    status, data = client.status(_quoted(imap.mailbox), "(UIDVALIDITY)")
    for item in data if status == "OK" else ():
        if isinstance(item, bytes) and (m := UIDVALIDITY.search(item)):
            return int(m.group(1))
    raise MailboxError(imap.account, "the server gave no UIDVALIDITY for the folder")


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "no answer in time"
    text = exc.args[0] if exc.args else exc
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{type(exc).__name__}: {text}"[:300]
