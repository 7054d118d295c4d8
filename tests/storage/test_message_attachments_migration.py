"""Migration 0017 → the e-mails that keep their attachments as the delivery's files get those
bodies back in their bytes on the way down (older code sends the stored bytes as they are), on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, inspect, select, text

from delivery.artifacts import BundleFile
from delivery.campaigns.config import Recipient
from delivery.mail.message import Envelope, Letter, build_messages
from delivery.mail.outbox import enqueue
from delivery.storage.db import transaction, upgrade_schema
from delivery.storage.models import CampaignRow, DeliveryFileRow, DeliveryRow, MessageBodyRow

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_attachments_kept_as_files_go_back_into_the_bytes_on_the_way_down(engine: Engine) -> None:
    files = [BundleFile(f"dossier-en-{n}.pdf", "pdf", "en", n, 1, bytes(range(256)) * (40 + n))
             for n in (1, 2)]
    envelope = Envelope(sender="C <c@example.org>", sender_address="c@example.org", dossier_id="d-1",
                        created_at=AT)
    written = build_messages(envelope, Recipient(name="PM", email="pm@example.org", language="en"),
                             Letter(subject="Petition", body="Dear Prime Minister,\n"), files, [],
                             budget=11_000)
    assert len(written) == 2
    with transaction(engine) as session:
        campaign = CampaignRow(slug="t", title="T", goal=10, created_at=AT)
        session.add(campaign)
        session.flush()
        delivery = DeliveryRow(campaign_id=campaign.id, public_id="d-1", trigger="manual",
                               status="sending", created_at=AT, created_by="test", last_signer_id=0,
                               signer_count=0, recipients="[]")
        session.add(delivery)
        session.flush()
        for f in files:
            session.add(DeliveryFileRow(delivery_id=delivery.id, name=f.name, language="en", kind="pdf",
                                        part=f.part, size=f.size, sha256=f.sha256, pages=1,
                                        content=f.data))
        session.flush()
        enqueue(session, delivery_id=delivery.id, recipient="pm@example.org", kind="dossier",
                parts=written, now=AT)
    with transaction(engine) as session:
        kept = list(session.scalars(select(MessageBodyRow.attachments)))
        assert len(kept) == 2 and all(kept)

    upgrade_schema(engine, "0016")
    assert "attachments" not in {c["name"] for c in inspect(engine).get_columns("message_bodies")}
    with engine.connect() as conn:
        whole = [bytes(c) for c in conn.scalars(text(
            "SELECT b.content FROM message_bodies b JOIN messages m ON m.id = b.message_id "
            "ORDER BY m.part"))]
    assert whole == [w.whole() for w in written]
    upgrade_schema(engine)
