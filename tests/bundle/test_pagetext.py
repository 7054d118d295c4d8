"""delivery.bundle.pagetext: page texts read with poppler, long documents in page ranges at once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pypdf.errors import PdfReadError

from delivery.bundle.pagetext import SPLIT_FROM, page_ranges, page_texts
from delivery.dossier import render
from delivery.dossier.compose import Line, Volume
from delivery.pdf import typeset

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_page_ranges_cover_every_page_once_in_order() -> None:
    assert page_ranges(SPLIT_FROM - 1, 8) == [(1, SPLIT_FROM - 1)]  # short: one process
    assert page_ranges(1000, 2) == [(1, 500), (501, 1000)]
    assert page_ranges(401, 8) == [(1, 201), (202, 401)]  # at least 200 pages a process
    for count in (400, 999, 4221, 19003):
        ranges = page_ranges(count, 4)
        pages = [p for first, last in ranges for p in range(first, last + 1)]
        assert pages == list(range(1, count + 1)) and len(ranges) <= 4


def test_a_long_document_reads_the_same_in_several_processes() -> None:
    layout = render.Layout()
    lines = [Line(i, f"Anna Lee {i}", "Yerevan", "Armenia", date(2024, 3, 9))
             for i in range(1, 54 * SPLIT_FROM + 1)]
    data, pages, _ = typeset.volume_pdf(render.load_texts(TEMPLATES, "en"),
                                        Volume.of_lines(1, 1, 1, len(lines), lines), layout, b"0" * 16)
    assert pages > SPLIT_FROM
    together = page_texts(data, processes=1)
    split = page_texts(data, processes=3)
    assert split == together and len(split) == pages
    for number, text in enumerate(split, start=1):
        assert text.endswith(f"Volume 1 · page {number} of {pages}")


@pytest.mark.parametrize("data", [
    b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF", b"not a pdf"])
def test_a_damaged_file_is_an_error_not_an_empty_read(data: bytes) -> None:
    with pytest.raises(PdfReadError):
        page_texts(data)


def test_without_poppler_pypdf_reads_the_same_words(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [Line(i, f"Anna Lee {i}", "Yerevan", "Armenia", date(2024, 3, 9)) for i in range(1, 80)]
    data, pages, _ = typeset.volume_pdf(render.load_texts(TEMPLATES, "hy"),
                                        Volume.of_lines(1, 1, 1, len(lines), lines),
                                        render.Layout(), b"0" * 16)
    with_poppler = page_texts(data)
    monkeypatch.setenv("PATH", "/nonexistent")
    without = page_texts(data)
    assert len(without) == len(with_poppler) == pages == 2
    for mine, theirs in zip(without, with_poppler, strict=True):
        assert sorted(mine.split()) == sorted(theirs.split())
    assert "Anna Lee 79" in without[1]
