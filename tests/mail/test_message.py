"""MIME messages: one recipient each, deterministic bytes, parts within the size budget."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import functools
import random
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from delivery.artifacts import PART_BYTES, BundleFile
from delivery.campaigns.config import Recipient, parse_campaign
from delivery.errors import OversizedMessage
from delivery.mail.message import (
    MESSAGE_ROOM,
    SIGNATURE_ROOM,
    Envelope,
    Letter,
    Written,
    attachment_budget,
    build_link_message,
    build_messages,
    encoded_size,
    group_parts,
    messages_needed,
    part_budget,
    sends_link,
)
from delivery.services.pipeline import render_letter

ENVELOPE = Envelope(sender="Campaign <campaign@example.org>", sender_address="campaign@example.org",
                    dossier_id="SM-20261127-ABC123", created_at=datetime(2026, 11, 27, 9, tzinfo=UTC))
PM = Recipient(name="Nikol Pashinyan", email="prime-minister@example.org", language="en",
               title="Prime Minister")
VERIFY_URL = "https://petition.example.org/verify"
VERIFY_WORDS = {"https", "petition", "example", "org", "verify"}
LETTER = Letter(subject="Petition: 1,000 signatures", body="Dear Prime Minister,\n\nЗдравствуйте. Բարև։\n")


def pdf(name: str, size: int) -> BundleFile:
    return BundleFile(name=name, kind="pdf", language="en", part=1, pages=1, data=b"%PDF" + b"x" * size)


MANIFEST = BundleFile(name="manifest.json", kind="manifest", language="", part=0, pages=None, data=b"{}")


def whole(messages: Sequence[Written]) -> list[tuple[str, bytes]]:
    """(Message-ID, bytes as sent) of each e-mail; each one's size as told when it was built."""
    out = [(m.message_id, m.whole()) for m in messages]
    assert [m.size for m in messages] == [len(data) for _, data in out]
    return out


def test_one_message_carries_the_pdf_the_manifest_and_the_letter() -> None:
    [(mid, data)] = whole(build_messages(ENVELOPE, PM, LETTER, [pdf("dossier-en.pdf", 100)], [MANIFEST]))
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["To"] == "Nikol Pashinyan <prime-minister@example.org>"
    assert msg["Message-ID"] == mid
    assert msg["X-Dossier-Id"] == "SM-20261127-ABC123"
    assert mid.endswith("@example.org>")
    body = msg.get_body(("plain",))
    assert body is not None and "Բարև" in body.get_content()
    names = [p.get_filename() for p in msg.iter_attachments()]
    assert names == ["dossier-en.pdf", "manifest.json"]
    attached = next(msg.iter_attachments()).get_content()
    assert attached == b"%PDF" + b"x" * 100


def test_the_same_inputs_give_the_same_bytes() -> None:
    files = [pdf("dossier-en.pdf", 100)]
    assert whole(build_messages(ENVELOPE, PM, LETTER, files, [MANIFEST])) == whole(build_messages(
        ENVELOPE, PM, LETTER, files, [MANIFEST]))


@pytest.mark.parametrize("sizes", [[100, 2], [57 * 1000, 1], [57 * 1000 + 1, 2], [300_001, 0]])
def test_the_bodies_go_in_as_the_email_package_writes_them(sizes: list[int]) -> None:
    # build_messages adds each attachment as a one-line stand-in and puts its base64 in after:
    # the bytes must be those the email package writes when it encodes the attachments itself
    rng = random.Random(sum(sizes))
    files = [BundleFile(name=f"dossier-{n}.pdf", kind="pdf", language="en", part=n + 1, pages=1,
                        data=rng.randbytes(size)) for n, size in enumerate(sizes)]
    [built] = build_messages(ENVELOPE, PM, LETTER, files, [MANIFEST], limit=10_000_000)
    data = built.whole()
    assert built.size == len(data)  # the size told before any body is encoded
    expected = email.message.EmailMessage(policy=email.policy.SMTP)
    for name in ("From", "To", "Subject", "Date", "Message-ID", "X-Dossier-Id", "X-Dossier-Part",
                 "Auto-Submitted"):
        expected[name] = email.message_from_bytes(data, policy=email.policy.SMTP)[name]
    expected.set_content(LETTER.body, cte="quoted-printable")
    for file in [*files, MANIFEST]:
        maintype, subtype = file.content_type.split("/")
        expected.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=file.name)
    for part, written in zip(expected.walk(), email.message_from_bytes(
            data, policy=email.policy.SMTP).walk(), strict=True):
        boundary = written.get_boundary()
        if part.is_multipart() and boundary is not None:
            part.set_boundary(boundary)
    assert data == expected.as_bytes(policy=email.policy.SMTP)


def test_message_ids_differ_by_recipient_and_part() -> None:
    other = Recipient(name="Migration Service", email="migration-service@example.org", language="en")
    a = build_messages(ENVELOPE, PM, LETTER, [pdf("a.pdf", 10), pdf("b.pdf", 10)], [], budget=15)
    b = build_messages(ENVELOPE, other, LETTER, [pdf("a.pdf", 10)], [])
    ids = [m.message_id for m in a] + [m.message_id for m in b]
    assert len(set(ids)) == 3


def test_large_dossiers_are_split_within_the_budget() -> None:
    files = [pdf(f"part{i}.pdf", 6_000_000) for i in range(1, 4)]
    assert [len(g) for g in group_parts(files, 15_000_000)] == [2, 1]
    messages = build_messages(ENVELOPE, PM, LETTER, files, [MANIFEST], budget=15_000_000,
                              limit=25_000_000)
    assert len(messages) == 2
    second = email.message_from_bytes(messages[1].whole(), policy=email.policy.default)
    assert second["Subject"] == "Petition: 1,000 signatures (2/2)"
    assert [p.get_filename() for p in second.iter_attachments()] == ["part3.pdf", "manifest.json"]


def test_the_letter_writes_the_count_as_the_recipients_language_does() -> None:
    repo = Path(__file__).resolve().parents[2]
    campaign = parse_campaign((repo / "schedules" / "salman-mukaev.toml").read_text(), "test")
    by_language = {r.language: r for r in campaign.recipients}
    letters = {lang: render_letter(repo / "templates", campaign, by_language[lang],
                                   dossier_id="SM-1", signer_count=81_200, milestone=80_000,
                                   created_at=datetime(2026, 11, 24, tzinfo=UTC))
               for lang in ("en", "hy")}
    assert "81,200 signatures" in letters["en"].subject and "81,200" in letters["en"].body
    # CLDR groups Armenian digits with a no-break space
    assert "81\u00a0200" in letters["hy"].subject and "81\u00a0200" in letters["hy"].body
    assert "81,200" not in letters["hy"].subject + letters["hy"].body


@pytest.mark.parametrize("language", ["hy", "ru"])
def test_the_email_is_wholly_in_the_recipients_language(language: str) -> None:
    repo = Path(__file__).resolve().parents[2]
    campaign = parse_campaign((repo / "schedules" / "salman-mukaev.toml").read_text(), "test")
    recipient = dataclasses.replace(campaign.recipients[0], language=language)
    letter = render_letter(repo / "templates", campaign, recipient, dossier_id="SM-1",
                           signer_count=81_203, milestone=80_000,
                           created_at=datetime(2026, 11, 24, tzinfo=UTC), verify_url=VERIFY_URL)
    english = render_letter(repo / "templates", campaign,
                            dataclasses.replace(recipient, language="en"), dossier_id="SM-1",
                            signer_count=81_203, milestone=80_000,
                            created_at=datetime(2026, 11, 24, tzinfo=UTC))
    words = re.compile(r"[A-Za-z]{2,}")
    # a file name and the checksum's name are the same in every language
    assert set(words.findall(letter.subject + letter.body)) <= {"SM", "PDF", "SHA", "manifest",
                                                                 "json", "eml", *VERIFY_WORDS}
    assert VERIFY_URL in letter.body
    assert "Respectfully" in english.body and "signatures" in english.subject
    assert letter.sender_name == campaign.text(language).sender_name
    assert letter.recipient_name == campaign.recipients[0].text(language).name
    assert letter.recipient_name != campaign.recipients[0].text("en").name
    if language == "ru":  # CLDR's "few" form: 81 203 ends in 3
        assert "81\u00a0203 подписи" in letter.subject


@pytest.mark.parametrize("language", ["hy", "ru"])
def test_the_link_email_is_wholly_in_the_recipients_language(language: str) -> None:
    repo = Path(__file__).resolve().parents[2]
    campaign = parse_campaign((repo / "schedules" / "salman-mukaev.toml").read_text(), "test")
    recipient = dataclasses.replace(campaign.recipients[0], language=language)
    link = {"url": "https://petition.example.org/d/TOKEN", "expires": "22.02.2027",
            "files": [{"name": "dossier-x-hy.pdf", "size": "12,3 MB", "sha256": "0123456789" * 6 + "0123"}]}
    letter = render_letter(repo / "templates", campaign, recipient, dossier_id="SM-1", signer_count=160_000,
                           milestone=None, created_at=datetime(2026, 11, 24, tzinfo=UTC), link=link,
                           verify_url=VERIFY_URL)
    words = re.compile(r"[A-Za-z]{2,}")
    allowed = {"SM", "PDF", "SHA", "manifest", "json", "p7s", "ZIP", "MB", "dossier", "hy", "pdf",
               "https", "petition", "example", "org", "TOKEN", *VERIFY_WORDS}
    assert set(words.findall(letter.subject + letter.body)) <= allowed
    assert VERIFY_URL in letter.body and "manifest.json.p7s" in letter.body
    assert str(link["url"]) in letter.body and "0123456789" * 6 in letter.body and "22.02.2027" in letter.body


@pytest.mark.parametrize("linked", [False, True])
def test_the_email_names_the_verification_page_only_when_there_is_one(linked: bool) -> None:
    repo = Path(__file__).resolve().parents[2]
    campaign = parse_campaign((repo / "schedules" / "salman-mukaev.toml").read_text(), "test")
    link = {"url": "https://petition.example.org/d/TOKEN", "expires": "22 February 2027",
            "files": []} if linked else None
    letter_for = functools.partial(render_letter, repo / "templates", campaign, campaign.recipients[0],
                                   dossier_id="SM-1", signer_count=1_000, milestone=1_000,
                                   created_at=datetime(2026, 11, 24, tzinfo=UTC), link=link)
    named, unnamed = letter_for(verify_url=VERIFY_URL), letter_for()
    assert f"open {VERIFY_URL} and drop" in " ".join(named.body.split())
    assert "/verify" not in unnamed.body and "authentic and complete" not in unnamed.body
    assert ("downloaded PDF files" in named.body) is linked


@pytest.mark.parametrize(("mode", "messages", "public", "expected"), [
    ("attachment", 5, True, False), ("link", 1, True, True), ("link", 1, False, True),
    ("auto", 1, True, False), ("auto", 2, True, True), ("auto", 2, False, False)])
def test_who_gets_a_link(mode: str, messages: int, public: bool, expected: bool) -> None:
    recipient = dataclasses.replace(PM, delivery=mode)
    assert sends_link(recipient, messages, link_possible=public) is expected
    assert sends_link(dataclasses.replace(recipient, link_after=messages), messages,
                      link_possible=public) is (mode == "link")


def test_a_link_email_carries_the_letter_and_the_manifest_only() -> None:
    pdfs = [pdf("dossier-en-1.pdf", 9_000_000), pdf("dossier-en-2.pdf", 9_000_000)]
    assert messages_needed(pdfs, [MANIFEST], PM.max_message_size) == 2
    written = build_link_message(ENVELOPE, PM, LETTER, [MANIFEST])
    mid, data = written.message_id, written.whole()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert [p.get_filename() for p in msg.iter_attachments()] == ["manifest.json"]
    assert msg["X-Dossier-Part"] == "1/1" and msg["Message-ID"] == mid and len(data) < 20_000


# --- sizes: the whole e-mail as sent --------------------------------------------------------

def random_pdf(name: str, size: int, seed: int) -> BundleFile:
    data = b"%PDF" + random.Random(seed).randbytes(size - 4)
    return BundleFile(name=name, kind="pdf", language="en", part=1, pages=1, data=data)


@pytest.mark.parametrize("size", [1, 56, 57, 58, 1000, 123_457])
def test_encoded_size_is_what_the_attachment_takes_on_the_wire(size: int) -> None:
    [(_, data)] = whole(build_messages(ENVELOPE, PM, LETTER, [random_pdf("a.pdf", max(size, 4), 1)], []))
    msg = email.message_from_bytes(data, policy=email.policy.default)
    [part] = msg.iter_attachments()
    raw_body = data.split(b"Content-Disposition: attachment", 1)[1].split(b"\r\n\r\n", 1)[1]
    body = raw_body.split(b"\r\n--=_", 1)[0]  # the CRLF before a boundary belongs to it
    assert part.get_content() == random_pdf("a.pdf", max(size, 4), 1).data
    assert len(body) == encoded_size(max(size, 4))


def test_each_email_fits_its_recipients_limit_and_every_pdf_is_sent() -> None:
    small = dataclasses.replace(PM, max_message_size=1_000_000)
    files = [random_pdf(f"part{i}.pdf", 290_000, i) for i in range(1, 6)]
    messages = whole(build_messages(ENVELOPE, small, LETTER, files, [MANIFEST]))
    sizes = [len(data) for _, data in messages]
    assert all(s <= 1_000_000 for s in sizes)
    assert max(sizes) > 750_000  # two PDFs to an e-mail: the limit is used, not wasted
    sent = [p.get_filename() for _, data in messages for p in
            email.message_from_bytes(data, policy=email.policy.default).iter_attachments()]
    assert [n for n in sent if n != "manifest.json"] == [f.name for f in files]
    assert len(messages) == 3 and sent.count("manifest.json") == 3


def test_an_email_that_cannot_fit_stops_the_build_naming_recipient_part_and_sizes() -> None:
    small = dataclasses.replace(PM, max_message_size=1_000_000)
    files = [random_pdf("part1.pdf", 200_000, 1), random_pdf("part2.pdf", 900_000, 2)]
    with pytest.raises(OversizedMessage) as caught:
        build_messages(ENVELOPE, small, LETTER, files, [MANIFEST])
    assert (caught.value.recipient, caught.value.part, caught.value.parts) == (PM.email, 2, 2)
    assert caught.value.size > caught.value.limit == 1_000_000
    assert "nothing was sent" in str(caught.value)


def test_the_pdf_parts_leave_room_for_the_signature_and_the_letter() -> None:
    assert part_budget([10_000_000]) == attachment_budget(10_000_000) - SIGNATURE_ROOM
    assert part_budget([25_000_000, 1_000_000]) == part_budget([1_000_000])  # the smallest
    assert part_budget([100_000_000]) == PART_BYTES
    assert encoded_size(part_budget([1_000_000]) + SIGNATURE_ROOM) + MESSAGE_ROOM <= 1_000_000
