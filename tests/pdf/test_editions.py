"""The English, Armenian and Russian editions of one dossier, built by WeasyPrint and read back
with poppler (pdftotext, pdfinfo): each edition wholly in its language, its numbers, dates and
country names written by CLDR, the signers exactly as they wrote themselves."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal

from delivery.artifacts import UnsignedPdf
from delivery.campaigns.config import parse_campaign
from delivery.dossier.compose import Dossier, Signer, compose
from delivery.pdf.build import build_dossier_pdfs

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
CAMPAIGN = parse_campaign((REPO / "schedules" / "salman-mukaev.toml").read_text(), "test")
CREATED = datetime(2025, 3, 1, 12, tzinfo=UTC)
FIRST_DAY = datetime(2024, 11, 3, 9, tzinfo=UTC)
LOCALES = {"en": "en_GB", "hy": "hy", "ru": "ru"}
# As the signers wrote them: Latin names and places must come out unchanged in every edition.
PEOPLE = [("Anna Smith", "Berlin", "Germany"), ("Ашот Ованесян", "Москва", "Russian Federation"),
          ("Արամ Պետրոսյան", "Gyumri", "Armenia"), ("Leyla Ahmadi", "Hewlêr", "Kurdistan")]
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def dossier() -> Dossier:
    people = [Signer(name, city, country, FIRST_DAY + timedelta(hours=i), True, False)
              for i, (name, city, country) in enumerate(PEOPLE * 1400)]
    return compose(CAMPAIGN, people, dossier_id="D-2025-0001", created_at=CREATED,
                   trigger="milestone", milestone=5000, addressees=CAMPAIGN.recipients,
                   signed=False, volume_size=2000)


@pytest.fixture(scope="module")
def editions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("editions")
    pdfs: list[UnsignedPdf] = build_dossier_pdfs(dossier(), TEMPLATES, languages=list(LOCALES),
                                                 workers=1)
    out = {}
    for pdf in pdfs:
        assert pdf.language in LOCALES
        path = folder / pdf.name
        path.write_bytes(pdf.data)
        out[pdf.language] = path
    assert set(out) == set(LOCALES)
    return out


def text(path: Path, *pages: str) -> str:
    """The edition's text (of `pages`: pdftotext's -f/-l), its spaces (no-break, narrow
    no-break) made plain."""
    raw = subprocess.run(["pdftotext", "-enc", "UTF-8", *pages, str(path), "-"], check=True,
                         capture_output=True, text=True).stdout
    return re.sub(r"[ \u00a0\u202f]+", " ", raw)


def plain(value: str) -> str:
    return re.sub(r"[ \u00a0\u202f]+", " ", value)


def info(path: Path) -> dict[str, str]:
    out = subprocess.run(["pdfinfo", "-enc", "UTF-8", str(path)], check=True, capture_output=True,
                         text=True).stdout
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


@pytest.mark.parametrize("language", ["hy", "ru"])
def test_an_edition_has_no_english_word_but_what_the_signers_wrote(
        editions: dict[str, Path], language: str) -> None:
    written = text(editions[language])
    english = text(editions["en"])
    # names, places, and a country that names no ISO country, as the signers wrote them
    theirs = {w for name, city, _ in PEOPLE for w in LATIN_WORD.findall(f"{name} {city}")}
    theirs.add("Kurdistan")
    # the dossier id's letter and the signature algorithm's name are not words of a language
    foreign = sorted(set(LATIN_WORD.findall(written)) - theirs - {"PAdES", "SHA"})
    assert foreign == []
    # the English edition is English: the check above is not passing because no text was drawn
    assert {"Summary", "Signatures", "Goal", "Germany"} <= set(LATIN_WORD.findall(english))


@pytest.mark.parametrize("language", ["en", "hy", "ru"])
def test_numbers_dates_and_countries_are_the_locales(editions: dict[str, Path],
                                                      language: str) -> None:
    locale = LOCALES[language]
    written = text(editions[language])
    assert plain(format_decimal(80000, locale=locale)) in written  # the goal
    assert plain(format_decimal(5600, locale=locale)) in written  # the signatures
    assert plain(format_date(CREATED.date(), format="long", locale=locale)) in written
    # the growth chart's first and last days
    assert plain(format_date(FIRST_DAY.date(), format="medium", locale=locale)) in written
    front = text(editions[language], "-l", "2")  # the letter and the summary
    assert "Signers" not in front if language != "en" else "Signers" in front
    assert FIRST_DAY.date().isoformat() not in front  # the signer list's dates stay ISO
    territories = Locale.parse(locale).territories
    for code in ("DE", "RU", "AM"):
        assert territories[code] in written
    assert "Kurdistan" in written  # free text stays as the signers wrote it


def test_the_armenian_edition_writes_armenian_months_and_russian_plurals_are_cldrs(
        editions: dict[str, Path]) -> None:
    hy, ru = text(editions["hy"]), text(editions["ru"])
    assert "2025 թ. մարտի 1" in hy
    assert "80 000" in hy and "80,000" not in hy
    assert "1 марта 2025 г." in ru
    assert "3 тома" in ru  # 5,600 signers in volumes of 2,000: three (CLDR's "few" form)


@pytest.mark.parametrize("language", ["en", "hy", "ru"])
def test_the_signers_stay_exactly_as_they_wrote(editions: dict[str, Path], language: str) -> None:
    written = text(editions[language])
    for name, city, _ in PEOPLE:
        assert name in written and city in written


@pytest.mark.parametrize("language", ["en", "hy", "ru"])
def test_the_documents_title_and_subject_are_in_the_editions_language(
        editions: dict[str, Path], language: str) -> None:
    meta = info(editions[language])
    assert meta["Title"].startswith(CAMPAIGN.text(language).title)
    assert meta["Author"] == CAMPAIGN.text(language).sender_name
    if language != "en":
        assert not LATIN_WORD.search(meta["Subject"].replace("D-2025-0001", ""))
