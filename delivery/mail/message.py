"""Bundle files + recipient + delivery facts → MIME messages, one per attachment part, or one
that carries the link to a download page instead (pure).

Sizes are those of the whole e-mail as it goes over the wire (attachments in base64): each
recipient's messages are cut to fit its `max_message_size` (or the server's smaller SIZE), and
one that would not fit stops the build (OversizedMessage), so that no part of a dossier leaves
unless all of it can.

Everything in a message is derived from its inputs: the Message-ID, the Date and the MIME
boundaries too, so building the same message twice gives the same bytes and a resend after a
crash is recognisably the same e-mail.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

from delivery.artifacts import PART_BYTES, BundleFile
from delivery.campaigns.config import Recipient
from delivery.errors import OversizedMessage

# What an e-mail carries besides its PDFs: headers, the letter as text, each attachment's MIME
# headers, the manifest and its signature. Measured on `make demo`'s e-mails: 7 kB in English,
# 20 kB in Armenian (its letter in quoted-printable); the rest is margin for long manifests.
MESSAGE_ROOM = 150_000
# What signing adds to a PDF part: the CMS signature with its certificate chain, a timestamp
# token and the validation data, in the space the signer reserves.
SIGNATURE_ROOM = 64_000


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


@dataclass(frozen=True)
class Written:
    """One e-mail as written with a one-line stand-in for each attachment's body (`bodies`: each
    non-empty attachment, by its place among the e-mail's attachments): `whole()` its bytes as
    they go over the wire, `size` their length. The outbox keeps the bodies of files the
    delivery stores as references to them (delivery.mail.outbox)."""

    message_id: str
    written: bytes
    bodies: tuple[tuple[int, BundleFile], ...]
    size: int

    def whole(self) -> bytes:
        return with_bodies(self.written, stand_ins(self.message_id, [(n, f.data) for n, f in self.bodies]))


def stand_ins(message_id: str, bodies: Iterable[tuple[int, bytes]]) -> dict[bytes, bytes]:
    """(place among the attachments, body) of an e-mail's attachments, in order → the line that
    stands for each body in the written e-mail, and the body."""
    return {stand_in_line(message_id, n): data for n, data in bodies}


def message_id(dossier_id: str, recipient: str, part: int, sender_address: str, cut: int = 0) -> str:
    """The Message-ID of one part: the same whenever it is built again; a smaller cut's are new."""
    who = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
    domain = sender_address.rsplit("@", 1)[-1]
    again = f".c{cut}" if cut else ""
    return f"<{dossier_id}.{who}{again}.{part}@{domain}>"


def return_path(sender_address: str, row_id: int, message_id: str) -> str:
    """A dossier e-mail's VERP return path: the sender's address with a tag naming the outbox
    row, and 8 hex digits of its Message-ID's SHA-256 so that a guessed id matches nothing."""
    local, _, domain = sender_address.rpartition("@")
    return f"{local}+b-{row_id}-{return_check(message_id)}@{domain}"


def return_check(message_id: str) -> str:
    return hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()[:8]


def encoded_size(raw: int) -> int:
    """The bytes of `raw` bytes as a base64 attachment body: 76-character lines, each + CRLF."""
    chars = 4 * -(-raw // 3)
    return chars + 2 * -(-chars // 76)


def attachment_budget(limit: int) -> int:
    """The most raw attachment bytes one e-mail of at most `limit` bytes carries."""
    return max(0, (limit - MESSAGE_ROOM) * 57 // 78)  # 57 raw bytes are one 78-byte line


def part_budget(limits: Sequence[int]) -> int:
    """The size of the dossier's PDF parts, so that each, signed, fits one e-mail to every
    recipient (their limits): a dossier is built once, its parts are the same for all."""
    return min(PART_BYTES, attachment_budget(min(limits)) - SIGNATURE_ROOM)


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


def messages_needed(pdfs: Sequence[BundleFile], shared: Sequence[BundleFile], limit: int) -> int:
    """How many e-mails of at most `limit` bytes the attachments need (as build_messages cuts them)."""
    return len(group_parts(pdfs, attachment_budget(limit) - sum(f.size for f in shared)))


def sends_link(recipient: Recipient, messages: int, *, link_possible: bool) -> bool:
    """Whether this recipient gets a link instead of attachments: its `delivery` mode, and for
    "auto", whether the attachments would need more than its `link_after` e-mails. Without a
    public address (`link_possible` false) "auto" means attachments."""
    if recipient.delivery == "link":
        return True
    return recipient.delivery == "auto" and link_possible and messages > recipient.link_after


def build_link_message(envelope: Envelope, recipient: Recipient, letter: Letter,
                       shared: Sequence[BundleFile], *, limit: int | None = None) -> Written:
    """The one e-mail of a link delivery: the letter, which names the download page and every
    file's SHA-256, with the signed manifest attached."""
    [written] = build_messages(envelope, recipient, letter, [], shared, limit=limit)
    return written


def build_messages(
    envelope: Envelope,
    recipient: Recipient,
    letter: Letter,
    pdfs: Sequence[BundleFile],
    shared: Sequence[BundleFile],
    *,
    limit: int | None = None,
    budget: int | None = None,
    cut: int = 0,
) -> list[Written]:
    """One Written e-mail per part, each at most `limit` bytes whole (the recipient's
    max_message_size by default; OversizedMessage otherwise). `shared` files (the manifest) go
    with every part; `budget`: the attachment bytes of one e-mail (by default what `limit`
    leaves); `cut`: 1 for the smaller e-mails made after a "too large" (new Message-IDs). No
    attachment is encoded here: `whole()` does it, where the e-mail is sent or kept whole."""
    if limit is None:
        limit = recipient.max_message_size
    if budget is None:
        budget = attachment_budget(limit) - sum(f.size for f in shared)
    groups = group_parts(pdfs, budget) or [[]]
    out = []
    for index, group in enumerate(groups, start=1):
        mid = message_id(envelope.dossier_id, recipient.email, index, envelope.sender_address, cut)
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
        bodies: list[tuple[int, BundleFile]] = []
        for n, file in enumerate([*group, *shared]):
            maintype, subtype = file.content_type.split("/")
            if file.data:
                bodies.append((n, file))
            stand_in = _stand_in(mid, n) if file.data else file.data  # an empty one goes as itself
            msg.add_attachment(stand_in, maintype=maintype, subtype=subtype, filename=file.name)
        _fix_boundaries(msg, mid)
        written = msg.as_bytes(policy=SMTP)
        size = len(written) + sum(encoded_size(file.size) - _STAND_IN_LINE for _, file in bodies)
        if size > limit:
            raise OversizedMessage(recipient.email, index, len(groups), size, limit)
        out.append(Written(mid, written, tuple(bodies), size))
    return out


# The email package writes a 10 MB attachment line by line in Python: the 77 MB one recipient
# gets at a million signers took 3.8 s (0.8 s to add the attachments, 3.0 s to write them), all
# its e-mails 2.6 s here, where encoding each whole and cutting its lines takes 0.5 s. So each
# attachment is added as a stand-in of one base64 line, and its real body goes in its place in
# the written bytes: the same bytes the package writes (tests/mail/test_message.py compares).
_LINE = 76  # base64 characters per line: what the package writes under policy SMTP (57 bytes)


_STAND_IN_BYTES = 45  # one base64 line of 60 characters


def _stand_in(message_id: str, n: int) -> bytes:
    """45 bytes (60 base64 characters, one line) that nothing else in the message holds."""
    return hashlib.sha512(f"stand-in/{message_id}/{n}".encode()).digest()[:_STAND_IN_BYTES]


def stand_in_line(message_id: str, n: int) -> bytes:
    """The base64 line that stands in the written e-mail for its `n`th attachment's body."""
    return base64.b64encode(_stand_in(message_id, n))


# A stand-in's line and its CRLF: what with_bodies replaces by the real body (62 bytes).
_STAND_IN_LINE = len(base64.b64encode(bytes(_STAND_IN_BYTES))) + 2


def base64_body(data: bytes) -> bytes:
    """`data` as the email package writes a base64 body: lines of 76 characters, CRLF after each."""
    encoded = base64.b64encode(data)
    if not encoded:
        return b""
    return b"\r\n".join([encoded[i:i + _LINE] for i in range(0, len(encoded), _LINE)]) + b"\r\n"


def with_bodies(written: bytes, bodies: Mapping[bytes, bytes]) -> bytes:
    """A message written with stand-ins (their base64 → the real attachment) → with the real
    bodies in their places."""
    pieces: list[bytes] = []
    at = 0
    for encoded, data in bodies.items():
        if not data:
            continue  # an empty attachment went in as itself
        start = written.index(b"\r\n" + encoded + b"\r\n", at) + 2
        pieces += [written[at:start], base64_body(data)]
        at = start + len(encoded) + 2
    pieces.append(written[at:])
    return b"".join(pieces)


def _fix_boundaries(msg: EmailMessage, seed: str) -> None:
    for n, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary("=_" + hashlib.sha256(f"{seed}/{n}".encode()).hexdigest()[:32])
