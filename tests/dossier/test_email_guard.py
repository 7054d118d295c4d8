"""Defence in depth: a stored name, city or country holding an e-mail address (a row stored
before intake rejected them, or written around intake) is withheld by compose, never printed."""

from __future__ import annotations

import dataclasses
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from delivery.campaigns.config import parse_campaign
from delivery.dossier.compose import Dossier, Line, Signer, compose
from delivery.dossier.stored import Frozen, compose_stored
from delivery.pdf.build import build_dossier_pdfs
from delivery.signers.intake import SignerInput
from delivery.signers.store import add_signers
from delivery.storage.db import transaction
from delivery.storage.models import SignerRow
from tests.support.keys import TEST_KEYS

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN = parse_campaign((REPO / "schedules" / "salman-mukaev.toml").read_text(), "test")
BASE = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
# (name, city, country) as a merged CSV row or a careless form left them in the database
STORED = [
    ("Ani Hakobyan", "Yerevan", "Armenia"),
    ("Bob Stray,bob@example.org,Oslo,NO,, Cid,cid@example.org,Lyon,FR,,", "", ""),
    ("Dee Lane", "Nice dee@example.org", "France"),
    ("Eve Marsh", "Bern", "eve\uff20example.org"),  # a full-width at sign
    ("Fay Lind", "Riga", "Latvia"),
]
ADDRESSES = ("bob@", "cid@", "dee@", "eve\uff20", "eve@")


def signers() -> list[Signer]:
    return [Signer(name, city, country, BASE + timedelta(days=i), True)
            for i, (name, city, country) in enumerate(STORED)]


def build(signers: list[Signer], omit: bool = False) -> Dossier:
    campaign = dataclasses.replace(CAMPAIGN, withheld_names="omit") if omit else CAMPAIGN
    return compose(campaign, signers, dossier_id="D-1", created_at=NOW, trigger="manual",
                   milestone=None, addressees=CAMPAIGN.recipients, signed=False)


def test_compose_withholds_every_e_mail_like_field_and_still_counts_the_signer() -> None:
    dossier = build(signers())
    assert list(dossier.volumes[0].printed_lines()) == [
        Line(1, "Ani Hakobyan", "Yerevan", "Armenia", BASE.date()),
        Line(2, None, "", "", (BASE + timedelta(days=1)).date()),
        Line(3, "Dee Lane", "", "France", (BASE + timedelta(days=2)).date()),
        Line(4, "Eve Marsh", "Bern", "", (BASE + timedelta(days=3)).date()),
        Line(5, "Fay Lind", "Riga", "Latvia", (BASE + timedelta(days=4)).date()),
    ]
    assert (dossier.signer_count, dossier.withheld_count) == (5, 1)
    assert dossier.by_country == (("—", 2), ("Armenia", 1), ("France", 1), ("Latvia", 1))
    omitted = build(signers(), omit=True)
    assert [line.number for line in omitted.volumes[0].printed_lines()] == [1, 3, 4, 5]
    assert (omitted.signer_count, omitted.withheld_count) == (5, 1)


def test_the_dossier_pdf_of_stored_e_mails_prints_none_of_them(
        engine: Engine, campaign_id: int, tmp_path: Path) -> None:
    with transaction(engine) as session:
        add_signers(session, campaign_id, [
            SignerInput(f"{i:064x}", s.name, s.city, s.country, s.signed_at, s.consent, "legacy")
            for i, s in enumerate(signers())], now=NOW, keys=TEST_KEYS)
        last = session.scalar(select(func.max(SignerRow.id))) or 0
    dossier, read_lines = compose_stored(
        engine, CAMPAIGN, Frozen(campaign_id, last, NOW), dossier_id="D-1", created_at=NOW,
        trigger="manual", milestone=None, addressees=CAMPAIGN.recipients, signed=False, now=NOW)
    [pdf] = build_dossier_pdfs(dossier, REPO / "templates", languages=["en"], workers=1,
                               cache_dir=tmp_path / "cache", read_lines=read_lines)
    path = tmp_path / pdf.name
    path.write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout
    for address in ADDRESSES:
        assert address not in text
    assert "Bob" not in text and "Name withheld" in text
    for name in ("Ani Hakobyan", "Dee Lane", "Eve Marsh", "Fay Lind", "Riga", "France"):
        assert name in text
