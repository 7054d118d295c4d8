"""delivery.pdf.parts and delivery.pdf.restamp: parts after the first are joined once as bodies, kept, and
restamped for each delivery; the result reads, signs and verifies like a part joined in full."""

from __future__ import annotations

import io
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pikepdf
import pypdf
import pytest

from delivery.artifacts import UnsignedPdf
from delivery.bundle.assemble import BundleFacts, assemble_bundle
from delivery.bundle.sign import load_identity
from delivery.bundle.verify import verify_path
from delivery.campaigns.config import parse_campaign
from delivery.dossier.compose import Dossier, Signer, compose
from delivery.errors import RenderError
from delivery.pdf.build import build_dossier_pdfs
from delivery.pdf.cache import VolumeCache
from delivery.pdf.join import PartInfo, PartJob, document_info, join_part
from delivery.pdf.parts import PlannedPart, Rendered, join_parts
from delivery.pdf.restamp import restamp
from tests.support.pdfs import make_cert, settings_for, write_pem

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
CAMPAIGN = parse_campaign((REPO / "schedules" / "salman-mukaev.toml").read_text(), "test")
CREATED = datetime(2025, 2, 1, 10, tzinfo=UTC)
SIGNING_STARTED = CREATED - timedelta(days=30)
BUDGET = 60_000  # bytes: a few volumes of 20 signers a part


def signers(n: int) -> list[Signer]:
    return [Signer(f"Signer {i}", "Yerevan", "Armenia", SIGNING_STARTED + timedelta(hours=i), True)
            for i in range(1, n + 1)]


def dossier(n: int, dossier_id: str) -> Dossier:
    return compose(CAMPAIGN, signers(n), dossier_id=dossier_id, created_at=CREATED,
                   trigger="milestone", milestone=None, addressees=CAMPAIGN.recipients,
                   signed=True, volume_size=20)


def build(d: Dossier, cache: Path) -> list[UnsignedPdf]:
    return build_dossier_pdfs(d, TEMPLATES, languages=["en"], workers=2, cache_dir=cache,
                              part_budget=BUDGET, strict=True)


def pages_of(pdf: UnsignedPdf, folder: Path) -> list[str]:
    path = folder / pdf.name
    path.write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout
    return text.split("\f")[:-1]


def body_length(pdf: UnsignedPdf) -> int:
    """Where a restamped part's update begins: after the body's end-of-file marker."""
    return pdf.data.index(b"%%EOF") + len(b"%%EOF\n")


def test_a_restamped_part_is_the_part_joined_with_its_footer(tmp_path: Path) -> None:
    parts = build(dossier(300, "D-1"), tmp_path / "cache")
    assert len(parts) >= 4
    for part in parts[1:]:
        assert part.data.count(b"%%EOF") == 2  # the body, then this delivery's update
        texts = pages_of(part, tmp_path)
        assert len(texts) == part.pages == len(pypdf.PdfReader(io.BytesIO(part.data)).pages)
        assert all("D-1 · 300" in text for text in texts)
        pdf = pikepdf.open(io.BytesIO(part.data))
        assert pdf.check_pdf_syntax() == [] and not pdf.get_warnings()
        assert str(pdf.docinfo.Title).endswith(f"(part {part.part} of {part.parts})")
        assert str(pdf.Root.Lang) == "en"
    assert parts[0].data.count(b"%%EOF") == 1  # the front's part is joined in full


def test_a_later_delivery_restamps_the_bodies_it_kept(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = build(dossier(300, "D-1"), cache)
    files = {p.name for p in cache.glob("*.pdf")}
    second = build(dossier(300, "D-2"), cache)
    assert {p.name for p in cache.glob("*.pdf")} == files  # nothing joined or drawn again
    for before, after in zip(first[1:], second[1:], strict=True):
        assert after.data[:body_length(after)] == before.data[:body_length(before)]
        assert all("D-2 · 300" in t and "D-1" not in t for t in pages_of(after, tmp_path))
    fresh = build(dossier(300, "D-2"), tmp_path / "fresh")
    assert [p.data for p in fresh] == [p.data for p in second]


def test_new_signers_leave_the_earlier_parts_where_they_were(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = build(dossier(300, "D-1"), cache)
    second = build(dossier(330, "D-2"), cache)
    assert len(second) >= len(first)
    unchanged = first[1:-1]  # the last part takes the new volumes
    assert unchanged
    for before, after in zip(unchanged, second[1:len(first) - 1], strict=True):
        assert after.pages == before.pages
        assert after.data[:body_length(after)] == before.data[:body_length(before)]


def test_a_damaged_kept_body_is_joined_again_and_replaced(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = build(dossier(300, "D-1"), cache)
    body = first[2].data[:body_length(first[2])]
    kept = next(p for p in cache.glob("*.pdf") if p.read_bytes() == body)
    kept.write_bytes(body[:len(body) // 2])
    second = build(dossier(300, "D-2"), cache)
    assert kept.read_bytes() == body
    assert [p.data for p in second] == [p.data for p in build(dossier(300, "D-2"),
                                                              tmp_path / "fresh")]


def test_a_body_that_cannot_be_stamped_fails_its_part_by_name(tmp_path: Path) -> None:
    stamp = build_dossier_pdfs(dossier(3, "D-1"), TEMPLATES, languages=["en"], workers=1)[0].data
    info = PartInfo("T", "A", "S", "P", "en", CREATED)
    part = PlannedPart(UnsignedPdf("p.pdf", "en", 2, 3, 0, b""), info, stamp,
                       PartJob("part 2 of 3 (en)", info, None, None, ()), "key", None)
    cache = VolumeCache(tmp_path, 10**9)
    with pytest.raises(RenderError, match=r"^part 2 of 3 \(en\): the joined pages could not be "
                                          "stamped: the part body has no pages"):
        join_parts([part], Rendered({}, cache), workers=1, time_limit=60, memory_limit=None,
                   inline_budget=10**9)


def test_restamp_refuses_what_is_not_a_body() -> None:
    stamp = build_dossier_pdfs(dossier(3, "D-1"), TEMPLATES, languages=["en"], workers=1)[0].data
    info = document_info(PartInfo("T", "A", "S", "P", "en", CREATED))
    with pytest.raises(ValueError, match="does not end in a cross-reference offset"):
        restamp(b"%PDF-1.7\n1 0 obj <<>> endobj\n", stamp, info)
    body, _ = join_part(PartInfo("T", "A", "S", "P", "en", CREATED), None, None, [])
    with pytest.raises(Exception):  # noqa: B017 - a body without volumes has no slot
        restamp(body, stamp, info)


def test_a_dossier_in_restamped_parts_signs_and_verifies(tmp_path: Path) -> None:
    d = dossier(300, "D-9")
    parts = build(d, tmp_path / "cache")
    key, cert = write_pem(tmp_path / "id", "s", *make_cert("Parts Test Campaign"))
    identity = load_identity(settings_for(key, cert), now=datetime.now(UTC))
    last_number, last_day = d.last_line
    facts = BundleFacts(
        campaign_slug=d.campaign_slug, campaign_title=d.campaign_title, dossier_id=d.dossier_id,
        trigger=d.trigger, milestone=d.milestone, signer_count=d.signer_count,
        listed_count=d.listed_count, last_signer_number=last_number,
        last_signer_signed_on=last_day, template_version="t", created_at=d.created_at)
    folder = tmp_path / "bundle"
    folder.mkdir()
    for f in assemble_bundle(parts, facts, identity, reason="Petition dossier",
                             location="Yerevan"):
        (folder / f.name).write_bytes(f.data)
    report = verify_path(folder, trust=cert)
    assert report.ok, report.lines()
    assert sum(1 for line in report.lines() if "footer 'D-9 · 300' on every page" in line) == len(parts)


def outline(pdf: UnsignedPdf) -> list[tuple[str, int]]:
    """(title, page number from 1) of each top-level bookmark, as pypdf resolves them."""
    reader = pypdf.PdfReader(io.BytesIO(pdf.data))
    out = []
    for item in reader.outline:
        if not isinstance(item, list):
            page = reader.get_destination_page_number(item)
            assert page is not None, item.title  # a bookmark that leads nowhere
            out.append((str(item.title), page + 1))
    return out


def test_every_part_and_a_restamped_one_bookmarks_its_own_volumes(tmp_path: Path) -> None:
    build(dossier(300, "D-1"), tmp_path / "cache")
    parts = build(dossier(310, "D-2"), tmp_path / "cache")  # later parts: bodies reused
    assert len(parts) >= 4 and all(p.data.count(b"%%EOF") == 2 for p in parts[1:])
    first = outline(parts[0])
    assert [t for t, _ in first[:2]] == [CAMPAIGN.title, "Summary"] and first[0][1] == 1
    seen = []
    for part in parts:
        marks = [(t, page) for t, page in outline(part) if t.startswith("Volume ")]
        assert marks, part.name
        reader = pypdf.PdfReader(io.BytesIO(part.data))
        for title, page in marks:  # each bookmark opens the page its volume starts on
            assert title in reader.pages[page - 1].extract_text()
            assert page == 1 or title not in reader.pages[page - 2].extract_text()
        seen += [t for t, _ in marks]
        assert pikepdf.open(io.BytesIO(part.data)).Root.ViewerPreferences.DisplayDocTitle
    assert seen == [f"Volume {v}: signers no. {20 * v - 19}–{min(20 * v, 310)}"
                    for v in range(1, 17)]
    # an independent reader agrees
    path = tmp_path / parts[-1].name
    path.write_bytes(parts[-1].data)
    shown = subprocess.run(["mutool", "show", str(path), "outline"], check=True,
                           capture_output=True, text=True).stdout
    assert seen[-1] in shown
