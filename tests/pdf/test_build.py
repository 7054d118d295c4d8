"""build_dossier_pdfs end to end: real WeasyPrint workers, PDFs read back with pdftotext, pypdf,
pikepdf and fontTools."""

from __future__ import annotations

import dataclasses
import html
import io
import itertools
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pikepdf
import pypdf
import pytest
from fontTools.pens.boundsPen import BoundsPen
from fontTools.ttLib import TTFont

from delivery.artifacts import UnsignedPdf
from delivery.campaigns.config import parse_campaign
from delivery.dossier import charts, render
from delivery.dossier.compose import Dossier, Signer, compose
from delivery.dossier.render import Layout
from delivery.errors import RenderError
from delivery.pdf.build import bar_label_width, build_dossier_pdfs, volume_key
from delivery.pdf.join import PartInfo, PartJob
from delivery.pdf.parts import split_parts

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
CAMPAIGN = parse_campaign((REPO / "schedules" / "salman-mukaev.toml").read_text(), "test")
CREATED = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
DOSSIER_ID = "D-2024-0007"
SAMPLES = {
    "latin": "Zoë Müller-Łukasiewicz", "cyrillic": "Анна Петровна Иванова",
    "armenian": "Արամ Պետրոսյան", "georgian": "ნინო ბერიძე", "greek": "Γιώργος Παπαδόπουλος",
    "arabic": "محمد علي", "hebrew": "דוד כהן", "chinese": "王小明", "japanese": "山田太郎",
    "korean": "김민수", "devanagari": "राहुल शर्मा", "emoji": "Sam 🌍✨",
    "hostile": "<b>Anna</b> {{ 7*7 }}", "fetch": '<img src="file:///etc/passwd">',
}
LINE = re.compile(r"^[ \u2007]*(\d+)[ \u2007]+\d{4}-\d{2}-\d{2} ", re.M)
BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def signers(n: int, *, start: int = 0) -> list[Signer]:
    """Samples in every script first, then plain numbered names, every 9th of them without
    consent."""
    base = datetime(2024, 1, 1, tzinfo=UTC)
    samples = list(SAMPLES.values())
    out = []
    for i in range(start, start + n):
        name = samples[i] if i < len(samples) else f"Signer {i:05d}"
        out.append(Signer(name=name, city=["Yerevan", "Москва", "القاهرة", "東京"][i % 4],
                          country=["Armenia", "Russia", "Egypt", "Japan", "France"][i % 5],
                          signed_at=base + timedelta(hours=7 * i),
                          consent=i < len(samples) or i % 9 != 8))
    return out


def make_dossier(rows: Sequence[Signer], *, signed: bool = False, volume_size: int = 50,
                 dossier_id: str = DOSSIER_ID) -> Dossier:
    return compose(CAMPAIGN, rows, dossier_id=dossier_id, created_at=CREATED, trigger="milestone",
                   milestone=1000, addressees=CAMPAIGN.recipients, signed=signed,
                   volume_size=volume_size)


def text_of(pdf: UnsignedPdf, tmp_path: Path) -> str:
    path = tmp_path / pdf.name
    path.write_bytes(pdf.data)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                         capture_output=True).stdout.decode()
    return BIDI_CONTROLS.sub("", out)


def page_texts(pdf: UnsignedPdf) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf.data)).pages]


@dataclass
class Built:
    dossier: Dossier
    pdfs: list[UnsignedPdf]
    cache: Path
    progress: list[tuple[int, int]]

    def lang(self, language: str) -> UnsignedPdf:
        return next(p for p in self.pdfs if p.language == language)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    cache = tmp_path_factory.mktemp("cache")
    dossier = make_dossier(signers(130))
    calls: list[tuple[int, int]] = []
    pdfs = build_dossier_pdfs(dossier, TEMPLATES, languages=["en", "hy"], cache_dir=cache,
                              workers=2, strict=True, progress=lambda d, t: calls.append((d, t)))
    return Built(dossier, pdfs, cache, calls)


def test_one_pdf_per_language_named_for_the_campaign(built: Built) -> None:
    assert [(p.name, p.language, p.part, p.parts) for p in built.pdfs] == [
        ("dossier-salman-mukaev-en.pdf", "en", 1, 1), ("dossier-salman-mukaev-hy.pdf", "hy", 1, 1)]
    for pdf in built.pdfs:
        assert pdf.data.startswith(b"%PDF-")
        assert pdf.pages == len(pypdf.PdfReader(io.BytesIO(pdf.data)).pages)


def test_every_listed_signer_appears_once_in_order(built: Built, tmp_path: Path) -> None:
    # withheld signers' lines come from each language's overlay, the others from the shared
    # body: read back, they interleave at their places
    for language in ("hy", "en"):
        text = text_of(built.lang(language), tmp_path)
        numbers = [int(m) for m in LINE.findall(text)]
        assert numbers == list(range(1, built.dossier.listed_count + 1)), language
    plain = re.findall(r"Signer (\d{5})", text)
    consenting = [f"{i:05d}" for i in range(len(SAMPLES), 130) if i % 9 != 8]
    assert len(numbers) == len(consenting) + len(SAMPLES) + sum(1 for s in signers(130)
                                                                if not s.consent)
    assert plain == consenting


def test_names_in_every_script_are_extracted(built: Built, tmp_path: Path) -> None:
    for language in ("en", "hy"):
        text = text_of(built.lang(language), tmp_path)
        for script, name in SAMPLES.items():
            if script == "emoji":
                assert "Sam" in text and "🌍" in text
            elif script == "devanagari":  # extractors reorder vowel signs; the glyph test checks
                assert "राहुल" in text
            else:
                assert name in text, script


def test_hostile_names_appear_literally(built: Built, tmp_path: Path) -> None:
    text = text_of(built.lang("en"), tmp_path)
    assert "<b>Anna</b> {{ 7*7 }}" in text
    assert '<img src="file:///etc/passwd">' in text
    assert "root:x:0" not in text


def test_withheld_names_are_replaced_in_the_recipients_language(built: Built,
                                                                tmp_path: Path) -> None:
    withheld = [s for s in signers(130) if not s.consent]
    assert text_of(built.lang("en"), tmp_path).count("Name withheld") == len(withheld)
    assert text_of(built.lang("hy"), tmp_path).count("Անունը չի հրապարակվում") == len(withheld)
    for signer in withheld:
        assert signer.name not in text_of(built.lang("en"), tmp_path)


def test_each_cover_letter_fits_its_first_page(built: Built) -> None:
    for language, summary in (("en", "Summary"), ("hy", "Ամփոփում")):
        pages = page_texts(built.lang(language))
        assert CAMPAIGN.text(language).sender_name in pages[0], language  # the signature block
        assert pages[1].lstrip().startswith(summary), language


def test_summary_counts_add_up(built: Built, tmp_path: Path) -> None:
    withheld = sum(1 for s in signers(130) if not s.consent)
    summary = " ".join(page_texts(built.lang("en"))[1].split())
    assert f"Listed by name {130 - withheld}" in summary
    assert f"Counted, name withheld {withheld}" in summary


def test_volume_headings_and_page_numbers(built: Built, tmp_path: Path) -> None:
    en = text_of(built.lang("en"), tmp_path)
    assert "Volume 1: signers no. 1–50" in en
    assert "Volume 3: signers no. 101–130" in en
    assert "Volume 2 · page 1 of 1" in en
    assert "page 1 of 2" in en and "page 2 of 2" in en
    hy = text_of(built.lang("hy"), tmp_path)
    assert "Հատոր 2. ստորագրողներ № 51–100" in hy
    assert "Հատոր 2 · էջ 1՝ 1-ից" in hy


def test_footer_with_dossier_id_and_count_on_every_page(built: Built) -> None:
    pattern = f"{DOSSIER_ID} · {built.dossier.signer_count:,}"
    for pdf in built.pdfs:
        pages = page_texts(pdf)
        assert len(pages) == pdf.pages
        for text in pages:
            assert pattern in text
            assert CAMPAIGN.text(pdf.language).title in text


def test_letter_and_summary(built: Built, tmp_path: Path) -> None:
    en = text_of(built.lang("en"), tmp_path)
    for expected in ("Nikol Pashinyan", "Prime Minister of the Republic of Armenia",
                     "We call on you not to extradite Salman Mukaev", "1 May 2024",
                     "Save Salman Mukaev campaign", "Yerevan", "Summary", "80,000",
                     "1,000 signatures", "Signers by country", "Signatures over time",
                     "This dossier is not digitally signed."):
        assert expected in en, expected
    hy = text_of(built.lang("hy"), tmp_path)
    assert "Սալման Մուկաևին" in hy and "2024 թ. մայիսի 1" in hy and "Ամփոփում" in hy
    assert "Այս փաթեթը թվային ստորագրությամբ հաստատված չէ։" in hy


def test_the_summary_names_countries_and_writes_numbers_in_the_edition_language(
        built: Built) -> None:
    en_summary = " ".join(page_texts(built.lang("en"))[1].split())
    # the campaign's title (in the footer) is one language for all editions as yet
    hy_summary = " ".join(page_texts(built.lang("hy"))[1].replace(CAMPAIGN.title, "").split())
    for english, armenian in (("Armenia", "Հայաստան"), ("Egypt", "Եգիպտոս"), ("Japan", "Ճապոնիա"),
                              ("France", "Ֆրանսիա")):
        assert english in en_summary and armenian in hy_summary, english
        assert english not in hy_summary, english  # CLDR's Armenian name, not the stored English
    assert "80,000" in en_summary and "80\u00a0000" in page_texts(built.lang("hy"))[1]


def test_the_bar_chart_labels_fit_their_column_as_the_fonts_draw_them() -> None:
    names = ("Բոսնիա և Հերցեգովինա", "Միացյալ Նահանգներ", "Saint Vincent & Grenadines",
             "Демократическая Республика Конго", "Russia")
    svg = charts.bar_chart([(name, 10) for name in names], fmt=str, width=380, label_width=120,
                           measure=bar_label_width, max_label_width=render.BAR_LABEL_MAX)
    labels = [(float(x), html.unescape(text)) for x, text in re.findall(
        r'<text x="([\d.]+)" [^>]*text-anchor="end"[^>]*>([^<]*)</text>', svg)]
    assert len(labels) == len(names)
    for end, label in labels:  # drawn leftwards from `end`: it must not start before the chart
        assert bar_label_width(label) <= end, label
    shown = [label for _, label in labels]
    assert shown[:2] == list(names[:2]) and shown[4] == "Russia"  # whole where they fit
    assert shown[3].endswith("…") and names[3].startswith(shown[3][:-1])


@pytest.mark.parametrize("signed", [False, True])  # signed: a two-line notice on the summary
def test_the_growth_chart_stays_on_the_summary_page_with_ten_countries(
        tmp_path: Path, signed: bool) -> None:
    countries = ["Armenia", "Germany", "Russian Federation", "France", "United Kingdom", "Georgia",
                 "Iran", "Bosnia and Herzegovina", "South Korea", "Netherlands", "Italy"]
    rows = [s._replace(country=countries[i % len(countries)]) for i, s in enumerate(signers(60))]
    pdfs = build_dossier_pdfs(make_dossier(rows, signed=signed), TEMPLATES,
                              languages=["en", "hy", "ru"], cache_dir=tmp_path / "cache",
                              workers=1)
    en, hy, ru = (text_of(pdf, tmp_path) for pdf in pdfs)
    # the front is the letter and the summary, the growth chart on the summary's page
    assert "page 2 of 2" in en and "page 1 of 3" not in en
    assert "էջ 2՝ 2-ից" in hy and "էջ 1՝ 3-ից" not in hy
    assert "стр. 2 из 2" in ru and "стр. 1 из 3" not in ru


def test_summary_embeds_both_charts_as_vectors(built: Built) -> None:
    pdf = pikepdf.open(io.BytesIO(built.lang("en").data))
    summary = pdf.pages[1]
    ops = Counter(str(item.operator) for item in pikepdf.parse_content_stream(summary))
    assert ops["re"] >= 5  # one filled rectangle per country bar (and the progress bar)
    assert ops["l"] >= len(built.dossier.growth) - 1  # the growth polyline, segment by segment
    xobjects: Any = summary.Resources.get("/XObject", {})
    assert all(x.get("/Subtype") != "/Image" for x in xobjects.values())


def test_privacy_no_addresses_or_internal_ids(built: Built, tmp_path: Path) -> None:
    for pdf in built.pdfs:
        text = text_of(pdf, tmp_path)
        assert "@" not in text
        assert "example.org" not in text
        reader = pypdf.PdfReader(io.BytesIO(pdf.data))
        meta = " ".join(str(v) for v in (reader.metadata or {}).values())
        assert "@" not in meta
        assert not reader.attachments
        assert b"@example.org" not in pdf.data


def test_metadata(built: Built) -> None:
    pdf = pikepdf.open(io.BytesIO(built.lang("hy").data))
    info = pdf.docinfo
    assert str(info.Title) == CAMPAIGN.text("hy").title == "Հայաստան, փրկե՛ք Սալման Մուկաևի կյանքը"
    assert str(info.Author) == "«Փրկենք Սալման Մուկաևին» արշավ"
    assert "130" in str(info.Subject)
    assert str(info.CreationDate) == "D:20240501123000+00'00'"
    assert str(pdf.Root.Lang) == "hy"


def test_progress_reported_as_volumes_finish(built: Built) -> None:
    assert built.progress[0] == (0, 3)
    assert built.progress[-1] == (3, 3)
    assert [d for d, _ in built.progress] == sorted(d for d, _ in built.progress)


def test_no_missing_glyphs_in_embedded_fonts(built: Built) -> None:
    """Every glyph a page shows exists in its embedded font and has ink (outline or bitmap)."""
    checked = 0
    for pdf_file in built.pdfs:
        pdf = pikepdf.open(io.BytesIO(pdf_file.data))
        seen: set[tuple[int, int]] = set()
        for obj in pdf.objects:
            if not isinstance(obj, pikepdf.Dictionary) or obj.get("/Type") != "/Font" \
                    or obj.get("/Subtype") != "/Type0":
                continue
            if (obj.objgen in seen):
                continue
            seen.add(obj.objgen)
            descendant = obj.DescendantFonts[0]
            descriptor = descendant.FontDescriptor
            program = descriptor.get("/FontFile2") or descriptor.get("/FontFile3")
            assert program is not None
            font = TTFont(io.BytesIO(program.read_bytes())) \
                if "/FontFile2" in descriptor else None
            if "Emoji" in str(descriptor.FontName):
                font = None  # colour bitmaps: drawn as images, the font only gives widths
            table = descendant.get("/CIDToGIDMap")
            codes = table.read_bytes() if isinstance(table, pikepdf.Stream) else None

            def glyph_of(code: int, codes: bytes | None = codes) -> int:
                return code if codes is None else int.from_bytes(codes[2 * code:2 * code + 2],
                                                                 "big")
            blank = font.getBestCmap().get(32) if font is not None else None
            for code, char in _to_unicode(obj.ToUnicode.read_bytes()):
                gid = glyph_of(code)
                if char.isspace() or not char.isprintable():
                    continue
                assert gid != 0, f".notdef used for {char!r}"
                if font is not None and blank is not None and \
                        gid == font.getGlyphID(blank):
                    continue  # characters carried by blank glyphs (emoji drawn as images)
                if font is not None:
                    order = font.getGlyphOrder()
                    assert gid < len(order), f"glyph {gid} for {char!r} not in font"
                    if "glyf" in font:
                        glyph = font["glyf"][order[gid]]
                        pen = BoundsPen(font.getGlyphSet())
                        font.getGlyphSet()[order[gid]].draw(pen)
                        assert glyph.numberOfContours != 0 and pen.bounds, \
                            f"empty glyph for {char!r}"
                checked += 1
    assert checked > 200


def _to_unicode(cmap: bytes) -> list[tuple[int, str]]:
    pairs = []
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            pairs.append((int(src, 16), bytes.fromhex(dst.decode()).decode("utf-16-be")))
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>",
                                      block):
            first = bytes.fromhex(dst.decode()).decode("utf-16-be")
            for k in range(int(hi, 16) - int(lo, 16) + 1):
                pairs.append((int(lo, 16) + k, chr(ord(first[-1]) + k)))
    return pairs


def test_same_dossier_gives_the_same_bytes(tmp_path: Path) -> None:
    dossier = make_dossier(signers(60), volume_size=40)
    first = build_dossier_pdfs(dossier, TEMPLATES, languages=["en"], workers=2, strict=True,
                               inline_budget=0)
    second = build_dossier_pdfs(dossier, TEMPLATES, languages=["en"], workers=1, strict=True)
    assert [p.data for p in first] == [p.data for p in second]  # in workers, in this process
    ids: Any = pypdf.PdfReader(io.BytesIO(first[0].data)).trailer["/ID"]
    assert ids[0] == ids[1]


def test_unchanged_volumes_come_from_the_cache(built: Built) -> None:
    before = {p.name: p.stat().st_size for p in built.cache.glob("*.pdf")}
    assert len(before) == 6  # 3 volumes in each language
    grown = make_dossier([*signers(130), *signers(10, start=130)], dossier_id="D-2024-0008")
    calls: list[tuple[int, int]] = []
    pdfs = build_dossier_pdfs(grown, TEMPLATES, languages=["en", "hy"], cache_dir=built.cache,
                              workers=2, strict=True, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (2, 3)  # volumes 1 and 2 reused in both languages
    assert calls[-1] == (3, 3)
    after = {p.name for p in built.cache.glob("*.pdf")}
    assert len(after - set(before)) == 2  # only volume 3, in each language
    en = pdfs[0]
    text = "\n".join(page_texts(en))
    assert "D-2024-0008 · 140" in text and "Volume 3: signers no. 101–140" in text
    assert "D-2024-0007" not in text


def test_a_withdrawal_re_renders_only_its_volume(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rows = signers(60)
    first = build_dossier_pdfs(make_dossier(rows, volume_size=20), TEMPLATES, languages=["en"],
                               cache_dir=cache, workers=2, strict=True)
    before = {p.name for p in cache.glob("*.pdf")}
    assert len(before) == 3  # a volume in English
    rows[24] = rows[24]._replace(withdrawn=True)  # signer no. 25, in volume 2
    calls: list[tuple[int, int]] = []
    [pdf] = build_dossier_pdfs(make_dossier(rows, volume_size=20, dossier_id="D-2024-0008"),
                               TEMPLATES, languages=["en"], cache_dir=cache, workers=2,
                               strict=True, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (2, 3)  # volumes 1 and 3 come from the cache
    assert len({p.name for p in cache.glob("*.pdf")} - before) == 1  # volume 2
    old_numbers = [int(n) for n in LINE.findall(text_of(first[0], tmp_path))]
    numbers = [int(n) for n in LINE.findall(text_of(pdf, tmp_path))]
    assert numbers == [n for n in old_numbers if n != 25]  # the gap stays; no number moves
    assert "D-2024-0008 · 59" in "\n".join(page_texts(pdf))


def test_the_cache_stays_within_its_limit_dropping_entries_no_build_used_lately(
        tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    build_dossier_pdfs(make_dossier(signers(40), volume_size=20), TEMPLATES, languages=["en"],
                       cache_dir=cache, workers=1)
    earlier = {p.name for p in cache.glob("*.pdf")}
    for path in cache.glob("*.pdf"):
        os.utime(path, (path.stat().st_mtime - 7200, path.stat().st_mtime - 7200))
    build_dossier_pdfs(make_dossier(signers(40, start=200), volume_size=20), TEMPLATES,
                       languages=["en"], cache_dir=cache, workers=1, cache_limit=1)
    now = {p.name for p in cache.glob("*.pdf")}
    assert len(earlier) == len(now) == 2 and not earlier & now


def test_a_withheld_line_moving_up_a_row_changes_its_volumes_key() -> None:
    # the last volume: no. 22 withdrawn and no. 31 added keep 10 lines, but no. 27 (withheld)
    # moves up a row, so the volume that draws it must be drawn again
    rows = signers(30)
    before = make_dossier(rows, volume_size=20).volumes[1]
    rows[21] = rows[21]._replace(withdrawn=True)
    after = make_dossier([*rows, *signers(1, start=30)], volume_size=20).volumes[1]
    assert len(before.printed_lines()) == len(after.printed_lines()) == 10
    assert (before.first, before.last) == (21, 30) and (after.first, after.last) == (21, 31)
    same_range = dataclasses.replace(after, last=before.last)
    assert volume_key(same_range, "en", "v", Layout()) != volume_key(before, "en", "v", Layout())


def test_signed_dossier_does_not_claim_otherwise(tmp_path: Path) -> None:
    pdfs = build_dossier_pdfs(make_dossier(signers(20), signed=True), TEMPLATES,
                              languages=["en"], workers=1, strict=True)
    text = text_of(pdfs[0], tmp_path)
    assert "not digitally signed" not in text
    assert "digitally signed by the organizers" in text


def test_the_letter_page_names_the_verification_page_and_keeps_one_page() -> None:
    url = "https://petition.example.org/verify"
    signed = make_dossier(signers(20), signed=True)
    languages = ["en", "hy", "ru"]
    plain = build_dossier_pdfs(signed, TEMPLATES, languages=languages, workers=1, strict=True)
    named = build_dossier_pdfs(dataclasses.replace(signed, verify_url=url), TEMPLATES,
                               languages=languages, workers=1, strict=True)
    for before, after in zip(plain, named, strict=True):
        pages = page_texts(after)
        assert len(pages) == len(page_texts(before)), after.name  # the letter still fits its page
        assert url in "".join(pages[0].split()), after.name
        assert url not in "".join("".join(pages[1:]).split())
        assert url not in "".join("".join(page_texts(before)).split())


def test_split_into_parts_at_volume_boundaries(tmp_path: Path) -> None:
    dossier = make_dossier(signers(90), volume_size=20)
    whole = build_dossier_pdfs(dossier, TEMPLATES, languages=["en"], workers=2, strict=True)
    budget = len(whole[0].data) // 3
    parts = build_dossier_pdfs(dossier, TEMPLATES, languages=["en"], workers=2, strict=True,
                               part_budget=budget)
    assert len(parts) > 1
    assert [p.name for p in parts] == [f"dossier-salman-mukaev-en-part{i}of{len(parts)}.pdf"
                                       for i in range(1, len(parts) + 1)]
    assert sum(p.pages for p in parts) == whole[0].pages
    numbers: list[int] = []
    for part in parts:
        assert {p.parts for p in parts} == {len(parts)}
        text = text_of(part, tmp_path)
        assert f"{DOSSIER_ID} · 90" in text
        volumes = re.findall(r"Volume \d: signers", text)
        assert len(part.data) <= budget or len(volumes) == 1  # one volume is never split
        got = [int(m) for m in LINE.findall(text)]
        if part.part > 1:  # each later part starts with a whole volume
            assert got, part.name
            assert volumes
        numbers += got
    assert numbers == list(range(1, dossier.listed_count + 1))


def test_parts_joined_in_worker_processes_are_the_parts_joined_here(tmp_path: Path) -> None:
    dossier = make_dossier(signers(90), volume_size=20)
    whole = build_dossier_pdfs(dossier, TEMPLATES, languages=["en"], workers=1)
    budget = len(whole[0].data) // 3
    here = build_dossier_pdfs(dossier, TEMPLATES, languages=["en", "hy"], workers=2,
                              part_budget=budget, cache_dir=tmp_path, inline_budget=10**9)
    in_workers = build_dossier_pdfs(dossier, TEMPLATES, languages=["en", "hy"], workers=2,
                                    part_budget=budget, cache_dir=tmp_path, inline_budget=0)
    assert len(here) > 2
    assert [(p.name, p.pages, p.data) for p in in_workers] == [
        (p.name, p.pages, p.data) for p in here]


def test_a_volume_gone_from_the_cache_fails_its_part_with_its_name(tmp_path: Path) -> None:
    stamp = build_dossier_pdfs(make_dossier(signers(3)), TEMPLATES, languages=["en"],
                               workers=1)[0].data
    info = PartInfo("Title", "Author", "Subject", "test", "en", CREATED)
    job = PartJob("part 2 of 3 (en)", info, stamp, None, (tmp_path / "gone.pdf",))
    with pytest.raises(RenderError, match=r"^part 2 of 3 \(en\): a rendered volume could not "
                                          "be read back from the cache folder"):
        job.draw()
    broken = PartJob("part 1 of 1 (en)", info, stamp, None, (b"%PDF-1.7 not a volume",))
    with pytest.raises(RenderError, match=r"^part 1 of 1 \(en\): "):
        broken.draw()


def test_split_parts_groups() -> None:
    assert split_parts([5, 5, 5, 5], 10) == [[0, 1], [2, 3]]
    assert split_parts([5, 20, 5], 10) == [[0], [1], [2]]
    assert split_parts([1], 10) == [[0]]


def test_a_failing_volume_fails_the_build_with_nothing_returned(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(RenderError, match=r"took longer than the limit"):
        build_dossier_pdfs(make_dossier(signers(60)), TEMPLATES, languages=["en"],
                           cache_dir=cache, workers=1, time_limit=0.05, inline_budget=0)
    assert not list(cache.glob("*.pdf"))


def test_a_killed_worker_fails_the_build_naming_its_job(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"^(front \(en\)|stamp \(en\)|volume \d+( \(en\))?): "):
        build_dossier_pdfs(make_dossier(signers(60)), TEMPLATES, languages=["en"], workers=2,
                           memory_limit=150 * 2**20, inline_budget=0)


def test_weasyprint_warnings_fail_a_strict_build(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    with (templates / "dossier" / "dossier.css").open("a") as css:
        css.write("\nbdi { unicode-bidi: isolate; }\n")
    with pytest.raises(RenderError, match=r"^front \(en\): .*unicode-bidi"):
        build_dossier_pdfs(make_dossier(signers(20)), templates, languages=["en"], workers=1,
                           strict=True)


def test_a_glyph_no_font_has_fails_a_strict_build() -> None:
    rows = [s._replace(name=f"{s.name} \U000f0000") for s in signers(3)]
    with pytest.raises(RenderError, match=r"^volume 1 \(en\): no installed font has a glyph "
                                          r"for U\+F0000"):
        build_dossier_pdfs(make_dossier(rows), TEMPLATES, languages=["en"], workers=1,
                           strict=True)
    [pdf] = build_dossier_pdfs(make_dossier(rows), TEMPLATES, languages=["en"], workers=1)
    assert pdf.pages == 3  # not strict: drawn, with the font's empty box


def test_a_language_without_letter_is_refused(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    (templates / "letters" / "salman-mukaev" / "ru.html.j2").unlink()
    with pytest.raises(RenderError, match=r"letters/salman-mukaev/ru\.html\.j2"):
        build_dossier_pdfs(make_dossier(signers(5)), templates, languages=["ru"], workers=1)


def test_every_line_sits_at_the_same_pitch_whatever_its_fonts(built: Built, tmp_path: Path) -> None:
    """CJK and emoji fall back to taller fonts; withheld lines come from another layer. Every
    signer line still sits exactly one line below the one before, so pages never overflow and a
    withheld line prints where its number says."""
    path = tmp_path / "en.pdf"
    path.write_bytes(built.lang("en").data)
    out = subprocess.run(["pdftotext", "-bbox", str(path), "-"], check=True,
                         capture_output=True).stdout.decode()
    pages = [p for p in out.split("<page ")[1:] if ">No.</word>" in p]  # the volume pages
    checked = 0
    for page in pages:
        tops = [float(y) for y in re.findall(
            r'<word xMin="[\d.]+" yMin="([\d.]+)"[^>]*>\d{4}-\d{2}-\d{2}</word>', page)]
        pitches = {round(b - a, 2) for a, b in itertools.pairwise(tops)}
        assert pitches <= {13.04}, pitches
        checked += len(tops)
    assert checked == built.dossier.listed_count
