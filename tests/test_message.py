"""MIME messages: one recipient each, deterministic bytes, parts within the size budget."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

from delivery.artifacts import BundleFile
from delivery.config import Recipient
from delivery.message import Envelope, Letter, build_messages, group_parts

ENVELOPE = Envelope(sender="Campaign <campaign@example.org>", sender_address="campaign@example.org",
                    dossier_id="SM-20261127-ABC123", created_at=datetime(2026, 11, 27, 9, tzinfo=UTC))
PM = Recipient(name="Nikol Pashinyan", email="prime-minister@example.org", language="en",
               title="Prime Minister")
LETTER = Letter(subject="Petition: 1,000 signatures", body="Dear Prime Minister,\n\nЗдравствуйте. Բարև։\n")


def pdf(name: str, size: int) -> BundleFile:
    return BundleFile(name=name, kind="pdf", language="en", part=1, pages=1, data=b"%PDF" + b"x" * size)


MANIFEST = BundleFile(name="manifest.json", kind="manifest", language="", part=0, pages=None, data=b"{}")


def test_one_message_carries_the_pdf_the_manifest_and_the_letter() -> None:
    [(mid, data)] = build_messages(ENVELOPE, PM, LETTER, [pdf("dossier-en.pdf", 100)], [MANIFEST])
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
    assert build_messages(ENVELOPE, PM, LETTER, files, [MANIFEST]) == build_messages(
        ENVELOPE, PM, LETTER, files, [MANIFEST])


def test_message_ids_differ_by_recipient_and_part() -> None:
    other = Recipient(name="Migration Service", email="migration-service@example.org", language="en")
    a = build_messages(ENVELOPE, PM, LETTER, [pdf("a.pdf", 10), pdf("b.pdf", 10)], [], budget=15)
    b = build_messages(ENVELOPE, other, LETTER, [pdf("a.pdf", 10)], [])
    ids = [m for m, _ in a] + [m for m, _ in b]
    assert len(set(ids)) == 3


def test_large_dossiers_are_split_within_the_budget() -> None:
    files = [pdf(f"part{i}.pdf", 6_000_000) for i in range(1, 4)]
    assert [len(g) for g in group_parts(files, 15_000_000)] == [2, 1]
    messages = build_messages(ENVELOPE, PM, LETTER, files, [MANIFEST], budget=15_000_000)
    assert len(messages) == 2
    second = email.message_from_bytes(messages[1][1], policy=email.policy.default)
    assert second["Subject"] == "Petition: 1,000 signatures (2/2)"
    assert [p.get_filename() for p in second.iter_attachments()] == ["part3.pdf", "manifest.json"]
