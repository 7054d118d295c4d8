"""Bundle files + recipient + delivery facts → MIME messages, one per attachment part (pure).

Everything in a message is derived from its inputs: the Message-ID, the Date and the MIME
boundaries too, so building the same message twice gives the same bytes and a resend after a
crash is recognisably the same e-mail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

from delivery.artifacts import PART_BYTES, BundleFile
from delivery.campaigns.config import Recipient


@dataclass(frozen=True)
class Letter:
    """What the e-mail says: subject and plain-text body, already in the recipient's language."""

    subject: str
    body: str
    sender_name: str = ""  # the From display name in this language ("" keeps the envelope's)
    recipient_name: str = ""  # the To display name in this language ("" uses the recipient's)


@dataclass(frozen=True)
class Envelope:
    sender: str  # "Name <address>"
    sender_address: str
    dossier_id: str
    created_at: datetime  # the Date header


def message_id(dossier_id: str, recipient: str, part: int, sender_address: str) -> str:
    who = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
    domain = sender_address.rsplit("@", 1)[-1]
    return f"<{dossier_id}.{who}.{part}@{domain}>"


def group_parts(pdfs: Sequence[BundleFile], budget: int = PART_BYTES) -> list[list[BundleFile]]:
    """PDFs in order, packed into e-mails of at most `budget` attachment bytes (one PDF at least)."""
    groups: list[list[BundleFile]] = []
    size = 0
    for pdf in pdfs:
        if not groups or size + pdf.size > budget:
            groups.append([])
            size = 0
        groups[-1].append(pdf)
        size += pdf.size
    return groups


def build_messages(
    envelope: Envelope,
    recipient: Recipient,
    letter: Letter,
    pdfs: Sequence[BundleFile],
    shared: Sequence[BundleFile],
    *,
    budget: int = PART_BYTES,
) -> list[tuple[str, bytes]]:
    """(Message-ID, bytes) per e-mail. `shared` files (the manifest) go with every part."""
    groups = group_parts(pdfs, budget)
    out = []
    for index, group in enumerate(groups, start=1):
        mid = message_id(envelope.dossier_id, recipient.email, index, envelope.sender_address)
        subject = letter.subject if len(groups) == 1 else f"{letter.subject} ({index}/{len(groups)})"
        msg = EmailMessage(policy=SMTP)
        msg["From"] = (formataddr((letter.sender_name, envelope.sender_address))
                       if letter.sender_name else envelope.sender)
        msg["To"] = formataddr((letter.recipient_name or recipient.name, recipient.email))
        msg["Subject"] = subject
        msg["Date"] = format_datetime(envelope.created_at)
        msg["Message-ID"] = mid
        msg["X-Dossier-Id"] = envelope.dossier_id
        msg["X-Dossier-Part"] = f"{index}/{len(groups)}"
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(letter.body, cte="quoted-printable")
        for file in [*group, *shared]:
            maintype, subtype = file.content_type.split("/")
            msg.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=file.name)
        _fix_boundaries(msg, mid)
        out.append((mid, msg.as_bytes(policy=SMTP)))
    return out


def _fix_boundaries(msg: EmailMessage, seed: str) -> None:
    for n, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary("=_" + hashlib.sha256(f"{seed}/{n}".encode()).hexdigest()[:32])
