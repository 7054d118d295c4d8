"""N synthetic signers in many scripts → dossier build timings: cold, warm (+1,000), reference.

    .venv/bin/python bench/dossier.py --signers 80000 [--more 1000] [--languages en,hy] [--no-reference]

Prints wall time, CPU time (this process and its workers), peak memory of the whole process tree
(RSS and CPU of every process sampled from /proc), pages and bytes, for a cold build (empty cache), a
rebuild after --more (1,000) more signers (warm cache), and (unless --no-reference) the naive
single-document 6-column table at 20,000 signers, with ratios against it. The signers are stored
first (through the service's importer, in a new SQLite file unless --database-url says where);
each build reads them from the database and composes the dossier inside the measurement, as the
service does.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import secrets
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import escape
from itertools import islice
from pathlib import Path

import _paths  # noqa: F401 - before the package is imported
from _measure import Result, measured
from sqlalchemy import delete, func, select

from delivery.campaigns.config import Campaign, load_campaign
from delivery.dossier.compose import Signer
from delivery.dossier.stored import Frozen, compose_stored
from delivery.pdf.build import build_dossier_pdfs
from delivery.pdf.jobs import PdfJob
from delivery.pdf.pool import render_many
from delivery.signers.intake import SignerInput
from delivery.signers.store import add_signers
from delivery.storage.db import make_engine, transaction, upgrade_schema
from delivery.storage.keys import SignerKeys
from delivery.storage.models import CampaignRow, SignerRow, VolumeFactsRow

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"
REFERENCE_SIGNERS = 20_000
FIRST = {
    "latin": ["Anna", "Lukas", "Zoë", "Marta", "José", "Ingrid", "Pierre", "Aoife", "Łucja"],
    "cyrillic": ["Анна", "Иван", "Ольга", "Дмитрий", "Мария", "Сергей"],
    "armenian": ["Արամ", "Անի", "Նարեկ", "Մարիամ", "Տիգրան", "Լուսինե"],
    "georgian": ["ნინო", "გიორგი", "მარიამ"], "greek": ["Γιώργος", "Ελένη", "Νίκος"],
    "arabic": ["محمد", "فاطمة", "علي", "ليلى"], "hebrew": ["דוד", "שרה", "יוסף"],
    "chinese": ["王", "李", "张", "刘"], "japanese": ["山田", "佐藤", "鈴木"],
    "korean": ["김", "이", "박"], "devanagari": ["राहुल", "प्रिया", "अमित"],
}
LAST = {
    "latin": ["Müller", "García", "Rossi", "Nowak", "Dubois", "O'Brien", "Novák", "Smith"],
    "cyrillic": ["Иванова", "Петров", "Смирнова", "Кузнецов"],
    "armenian": ["Պետրոսյան", "Հակոբյան", "Սարգսյան", "Գրիգորյան"],
    "georgian": ["ბერიძე", "კაპანაძე"], "greek": ["Παπαδόπουλος", "Οικονόμου"],
    "arabic": ["علي", "حسن", "الخطيب"], "hebrew": ["כהן", "לוי"],
    "chinese": ["小明", "伟", "芳"], "japanese": ["太郎", "花子"], "korean": ["민수", "지은"],
    "devanagari": ["शर्मा", "पटेल"],
}
WEIGHTS = {"latin": 40, "cyrillic": 20, "armenian": 20, "georgian": 2, "greek": 2, "arabic": 4,
           "hebrew": 2, "chinese": 3, "japanese": 2, "korean": 2, "devanagari": 3}
PLACES = [("Yerevan", "Armenia"), ("Gyumri", "Armenia"), ("Москва", "Russia"),
          ("Berlin", "Germany"), ("Paris", "France"), ("القاهرة", "Egypt"), ("東京", "Japan"),
          ("Tbilisi", "Georgia"), ("New York", "United States"), ("서울", "South Korea")]


def synthetic_signers(n: int, *, seed: int = 7) -> Iterator[Signer]:
    """n signers, the same first n for any larger n: streamed, as the service reads them."""
    rng = random.Random(seed)
    scripts = [s for s in WEIGHTS for _ in range(WEIGHTS[s])]
    start = datetime(2023, 6, 1, tzinfo=UTC)
    step = timedelta(minutes=5)
    for i in range(n):
        script = scripts[int(rng.random() * len(scripts))]
        first, last = FIRST[script], LAST[script]
        # a new string per signer, as read from a database
        name = f"{first[int(rng.random() * len(first))]} {last[int(rng.random() * len(last))]}"
        if rng.random() < 0.01:
            name += " 🌍"
        city, country = PLACES[int(rng.random() * len(PLACES))]
        yield Signer(name, city, country, start + step * i, rng.random() > 0.03)


def reference_html(signers: list[Signer]) -> str:
    rows = "".join(
        f"<tr><td>{i}</td><td>{escape(s.name)}</td><td>{escape(s.city)}</td>"
        f"<td>{escape(s.country)}</td><td>{s.signed_at.date()}</td><td>✓</td></tr>"
        for i, s in enumerate(signers, 1))
    return ("<html><head><style>@page { size: A4; margin: 15mm } "
            "table { width: 100%; border-collapse: collapse; font-size: 8.5pt } "
            "td { border: 0.4pt solid #999; padding: 1pt 3pt } "
            "tr:nth-child(even) { background: #eee }</style></head><body>"
            f"<table>{rows}</table></body></html>")


def measure_reference(sink: list[Result]) -> Result:
    """The naive layout: 20,000 signers in one 6-column HTML table, laid out by WeasyPrint."""
    job = PdfJob("reference", reference_html(list(synthetic_signers(REFERENCE_SIGNERS))),
                 str(TEMPLATES), b"0" * 16)
    with measured(f"reference: one table, {REFERENCE_SIGNERS:,}", sink) as record:
        render_many([job], workers=1, time_limit=3600, memory_limit=None,
                    on_done=lambda i, pdf: record(pdf.pages, len(pdf.data)))
    return sink[-1]


class SignerStore:
    """A database holding the bench campaign's signers, written through the service's importer."""

    SLUG = "bench-dossier"

    def __init__(self, url: str, campaign: Campaign) -> None:
        self.engine = make_engine(url)
        self.keys = SignerKeys(secrets.token_bytes(32))
        upgrade_schema(self.engine)
        self.campaign = dataclasses.replace(campaign, slug=self.SLUG)
        self.stored = 0
        self._drop()
        with transaction(self.engine) as session:
            row = CampaignRow(slug=self.SLUG, title=campaign.title, goal=campaign.goal,
                              created_at=datetime.now(UTC))
            session.add(row)
            session.flush()
            self.campaign_id = row.id

    def fill(self, n: int) -> None:
        """Store synthetic signers until there are n (the same first ones for any n)."""
        now = datetime.now(UTC)
        stream = islice(synthetic_signers(n), self.stored, None)
        while batch := list(islice(stream, 20_000)):
            with transaction(self.engine) as session:
                add_signers(session, self.campaign_id, [
                    SignerInput(f"{self.stored + i:064x}", s.name, s.city, s.country,
                                s.signed_at, s.consent, "bench") for i, s in enumerate(batch)],
                            now=now, keys=self.keys)
            self.stored += len(batch)

    def frozen(self, as_of: datetime) -> Frozen:
        with transaction(self.engine) as session:
            last = session.scalar(select(func.max(SignerRow.id)).where(
                SignerRow.campaign_id == self.campaign_id)) or 0
        return Frozen(self.campaign_id, last, as_of)

    def close(self) -> None:
        self._drop()
        self.engine.dispose()

    def _drop(self) -> None:
        with transaction(self.engine) as session:
            ids = select(CampaignRow.id).where(CampaignRow.slug == self.SLUG).scalar_subquery()
            for table in (SignerRow, VolumeFactsRow):
                session.execute(delete(table).where(table.campaign_id == ids))
            session.execute(delete(CampaignRow).where(CampaignRow.slug == self.SLUG))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--signers", type=int, default=80_000)
    parser.add_argument("--more", type=int, default=1000,
                        help="signers added before the warm rebuild (default 1,000)")
    parser.add_argument("--languages", default="en")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--database-url", default=None,
                        help="where the signers are stored (default: a new SQLite file); its "
                             f"campaign '{SignerStore.SLUG}' is replaced")
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                        help="also render the naive single-document table of 20,000 signers "
                             "(default; --no-reference skips it)")
    args = parser.parse_args()
    languages = args.languages.split(",")
    campaign = load_campaign(REPO / "schedules" / "salman-mukaev.toml")
    created = datetime(2025, 1, 15, 9, tzinfo=UTC)
    results: list[Result] = []

    with tempfile.TemporaryDirectory(prefix="dossier-bench-") as tmp:
        store = SignerStore(args.database_url or f"sqlite:///{tmp}/signers.sqlite3", campaign)

        def build(label: str, n: int, dossier_id: str) -> None:
            store.fill(n)
            frozen = store.frozen(created)
            # Reading the signers from the database is part of the build, as in the service.
            with measured(label, results) as record:
                dossier, read_lines = compose_stored(
                    store.engine, store.campaign, frozen, dossier_id=dossier_id,
                    created_at=created, trigger="milestone", milestone=None,
                    addressees=campaign.recipients, signed=False, now=datetime.now(UTC))
                for pdf in build_dossier_pdfs(dossier, TEMPLATES, languages=languages,
                                              cache_dir=Path(tmp) / "cache",
                                              workers=args.workers, read_lines=read_lines):
                    record(pdf.pages, len(pdf.data))
                del dossier

        try:
            build(f"cold {args.signers:,} ({','.join(languages)})", args.signers, "BENCH-1")
            build(f"warm +{args.more:,} → {args.signers + args.more:,}",
                  args.signers + args.more, "BENCH-2")
        finally:
            store.close()
    reference = measure_reference(results) if args.reference else None
    for result in results:
        print(result.line(reference if result is not reference else None))


if __name__ == "__main__":
    main()
