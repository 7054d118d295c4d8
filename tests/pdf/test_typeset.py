"""delivery.pdf.typeset, delivery.pdf.text.shape, delivery.pdf.text.fonts: volume bodies drawn
without WeasyPrint, read back with poppler and compared with WeasyPrint's rendering of the same page
(volume.html.j2)."""

from __future__ import annotations

import dataclasses
import io
import re
import subprocess
from datetime import date
from pathlib import Path

import pikepdf
import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.t2CharStringPen import T2CharStringPen

from delivery.dossier import render
from delivery.dossier.compose import Line, Volume
from delivery.errors import RenderError
from delivery.pdf import typeset
from delivery.pdf.jobs import PdfJob
from delivery.pdf.pool import render_job
from delivery.pdf.text import fonts, shape
from delivery.pdf.text.fonts import Font
from delivery.pdf.writer import _subset

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
DAY = date(2024, 3, 9)
ID = b"0123456789abcdef"
EN = render.load_texts(TEMPLATES, "en")
SCRIPTS = {
    "latin": "Zoë Müller-Łukasz", "cyrillic": "Мария Иванова", "armenian": "Նարեկ Սարգսյան",
    "greek": "Νίκος Παπαδόπουλος", "hebrew": "דוד לוי", "arabic": "فاطمة الخطيب",
    "chinese": "王小明", "japanese": "鈴木 花子", "korean": "김민수", "georgian": "გიორგი",
    "devanagari": "राहुल शर्मा", "emoji": "Sam 🌍✨",
}


def volume(names: list[str | None], *, first: int = 1) -> Volume:
    lines = [Line(first + i, name, "Yerevan", "Armenia", DAY) for i, name in enumerate(names)]
    return Volume.of_lines(1, 1, first, first + len(lines) - 1, lines)


def words(data: bytes, tmp_path: Path, name: str) -> list[tuple[int, float, float, float, str]]:
    """(page, x_min, y_min, x_max, word) of every word, as pdftotext -bbox finds them."""
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-bbox", "-enc", "UTF-8", str(path), "-"], check=True,
                         capture_output=True, text=True).stdout
    found, page = [], 0
    for row in out.splitlines():
        if row.lstrip().startswith("<page"):
            page += 1
        match = re.match(r'\s*<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" '
                         r'yMax="[\d.]+">(.*)</word>', row)
        if match:
            found.append((page, float(match[1]), float(match[2]), float(match[3]), match[4]))
    return found


def text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "text.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                         capture_output=True, text=True).stdout
    return re.sub("[\u2066-\u2069\u200e\u200f\u202a-\u202e]", "", out)


@pytest.mark.parametrize("language", ["en", "hy", "ru"])
def test_every_word_sits_where_weasyprint_puts_it(language: str, tmp_path: Path) -> None:
    # 60 lines: both kinds of page (the first leaves room for the volume heading), withheld
    # signers on the first and last rows of each; the reference is WeasyPrint's rendering of
    # the body and of the overlay laid over it
    names: list[str | None] = [f"Anna Lee {i}" for i in range(60)]
    for row in (0, 7, 52, 59):
        names[row] = None
    vol = volume(names, first=2001)
    layout = render.Layout()
    texts = render.load_texts(TEMPLATES, language)
    drawn, pages, warnings = typeset.volume_pdf(texts, vol, layout, ID)
    env = render.make_environment(TEMPLATES)
    body = render_job(PdfJob("body", render.volume_html(env, vol, layout, texts), str(TEMPLATES),
                             ID))
    over = render_job(PdfJob("overlay", render.overlay_html(env, texts, vol, layout),
                             str(TEMPLATES), ID))
    assert pages == body.pages == over.pages == 2 and warnings == ()
    def reading_order(word: tuple[int, float, float, float, str]) -> tuple[int, float, float]:
        return word[0], round(word[2]), word[1]

    ours = sorted(words(drawn, tmp_path, "ours.pdf"), key=reading_order)
    theirs = sorted(words(body.data, tmp_path, "b.pdf") + words(over.data, tmp_path, "o.pdf"),
                    key=reading_order)
    assert len(ours) == len(theirs) > 60 * 6
    for mine, weasy in zip(ours, theirs, strict=True):
        assert (mine[0], mine[4]) == (weasy[0], weasy[4])  # same word, same page
        assert abs(mine[2] - weasy[2]) < 0.05, mine  # same line
        assert abs(mine[1] - weasy[1]) < 1.0, mine  # same place, right-aligned ones too


def test_every_script_is_drawn_and_reads_back(tmp_path: Path) -> None:
    drawn, _, warnings = typeset.volume_pdf(EN, volume(list(SCRIPTS.values())), render.Layout(),
                                            ID)
    assert warnings == ()
    extracted = text(drawn, tmp_path)
    for script, name in SCRIPTS.items():
        if script == "emoji":
            assert "Sam 🌍✨" in extracted  # bitmap glyphs, read from their ActualText
        elif script in ("hebrew", "arabic"):
            assert all(word in extracted for word in name.split()), script
        else:
            assert name in extracted, script
    pdf = pikepdf.open(io.BytesIO(drawn))
    embedded = {str(f.BaseFont).split("+")[1] for f in pdf.pages[0].Resources.Font.values()}
    assert {"DejaVuSans", "DejaVuSans-Bold", "NotoSansCJKsc-Regular",
            "NotoSansDevanagari-Regular"} <= embedded
    for font in pdf.pages[0].Resources.Font.values():
        descriptor = font.DescendantFonts[0].FontDescriptor
        program = descriptor.get("/FontFile2") or descriptor.get("/FontFile3")
        # the fonts are 0.7 MB (DejaVu) to 19 MB (the CJK collection): only used glyphs go in
        assert program is not None and len(program.read_raw_bytes()) < 150_000
    images = [x for x in pdf.pages[0].Resources.XObject.values() if x.Subtype == "/Image"]
    assert len(images) == 2  # 🌍 and ✨, as bitmaps


def test_emoji_sequences_are_one_picture_each_and_read_back(tmp_path: Path) -> None:
    # a family (joined with ZWJ), a flag, a keycap (asked for by U+FE0F) and a skin tone
    sequences = ["👨\u200d👩\u200d👧", "🇦🇲", "1\ufe0f\u20e3", "👍🏽"]
    drawn, _, warnings = typeset.volume_pdf(EN, volume([f"Ani {s} x" for s in sequences]),
                                            render.Layout(), ID)
    assert warnings == ()
    pdf = pikepdf.open(io.BytesIO(drawn))
    images = [x for x in pdf.pages[0].Resources.XObject.values() if x.Subtype == "/Image"]
    assert len(images) == len(sequences)
    extracted = text(drawn, tmp_path)
    for sequence in sequences:
        assert f"Ani {sequence} x" in extracted


def test_right_to_left_names_keep_their_place_and_their_order() -> None:
    chain = fonts.chain(typeset.FAMILIES)
    runs = shape.shape_line("1 \u2068אבג דהו\u2069 — \u2068Paris\u2069", chain)
    assert "".join(r.text for r in runs) == "1 אבג דהו — Paris"
    assert runs[1].text == "אבג דהו"
    hebrew = runs[1]
    first_drawn = chain.font(hebrew.font).glyph("ו")
    assert hebrew.glyphs[0] == first_drawn  # the last letter is drawn leftmost
    mixed = shape.shape_line("\u2068שלום 42\u2069", chain)
    assert [r.text for r in mixed] == ["42", "שלום "]  # the number left of the word, as read


def test_the_same_volume_gives_the_same_bytes() -> None:
    vol = volume([*SCRIPTS.values(), None, "Ann"])
    assert typeset.volume_pdf(EN, vol, render.Layout(), ID) == \
        typeset.volume_pdf(EN, vol, render.Layout(), ID)


def test_a_line_wider_than_the_column_is_cut_not_wrapped(tmp_path: Path) -> None:
    layout = render.Layout()
    drawn, pages, _ = typeset.volume_pdf(EN, volume(["W" * 400] * layout.first_page_lines),
                                         layout, ID)
    assert pages == 1
    pdf = pikepdf.open(io.BytesIO(drawn))
    content = pdf.pages[0].Contents.read_bytes()
    assert b"re W n" in content  # clipped to the text column
    assert max(w[3] for w in words(drawn, tmp_path, "wide.pdf")) > 595  # drawn past it


def test_a_character_no_font_has_is_reported() -> None:
    _, _, warnings = typeset.volume_pdf(EN, volume(["Ann \U000f0000"]), render.Layout(), ID)
    assert warnings == ("no installed font has a glyph for U+F0000 (.notdef drawn)",)


def test_a_volume_job_names_itself_in_its_error() -> None:
    broken = dataclasses.replace(volume(["Ann"]), number=4, lines=[
        Line(1, "Ann", "Yerevan", "Armenia", "2024-03-09")])  # type: ignore[arg-type]
    job = typeset.VolumeJob("volume 4", EN, broken, render.Layout(), ID, 1)
    with pytest.raises(RenderError, match=r"^volume 4: AttributeError: "):
        job.draw()


def test_without_fontconfig_the_error_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RenderError, match="install the fontconfig package"):
        fonts.chain.__wrapped__("DejaVu Sans")


def test_a_cff_font_that_is_not_cid_keyed_keeps_its_glyph_numbers(tmp_path: Path) -> None:
    # CID-keyed CFF (the CJK fonts) is cut down to the glyphs used and selected by CID; a plain
    # CFF font has no CIDs, so its subset keeps every glyph at its number instead
    names = [".notdef", "A", "B", "C"]
    builder = FontBuilder(1000, isTTF=False)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({ord(n): n for n in names[1:]})
    strings = {}
    for name in names:
        pen = T2CharStringPen(600, None)
        pen.moveTo((0, 0))
        pen.lineTo((500, 0))
        pen.lineTo((250, 700))
        pen.closePath()
        strings[name] = pen.getCharString()
    builder.setupCFF("Plain", {"FullName": "Plain"}, strings, {})
    builder.setupHorizontalMetrics({n: (600, 0) for n in names})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "Plain", "styleName": "Regular"})
    builder.setupOS2()
    builder.setupPost()
    path = tmp_path / "plain.otf"
    builder.save(str(path))
    font = Font.open(str(path))
    assert font.cff
    program, kind = _subset(font, [0, font.glyph("C") or 0])
    assert kind == "OpenType" and program.startswith(b"OTTO")
    cjk = fonts.chain(typeset.FAMILIES)
    chinese = cjk.font(cjk.font_for("王"))
    program, kind = _subset(chinese, [0, chinese.glyph("王") or 0])
    assert kind == "CFF" and len(program) < 20_000
