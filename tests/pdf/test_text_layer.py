"""The dossier's text layer, read by readers the project did not write: pdf.js (node), MuPDF
(`mutool draw -F txt`) and poppler (`pdftotext`) each extract every signer's line, whatever the
script, in reading order; every glyph drawn has its text; subset tags name one subset each; no
image asks to be interpolated. The dossier is built through build_dossier_pdfs."""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pikepdf
import pytest

from delivery.artifacts import UnsignedPdf
from delivery.dossier.compose import Signer
from delivery.pdf.build import build_dossier_pdfs
from delivery.pdf.text.layer import carried_units
from tests.pdf.test_build import TEMPLATES, make_dossier
from tests.support import readers

PER_SCRIPT = 30
# (given names, family names, cities, country) per script; names and cities combine into
# PER_SCRIPT signers each
SCRIPTS: dict[str, tuple[list[str], list[str], list[str], str]] = {
    "latin": (["Zoë", "Łucja", "José", "Aoife", "Ingrid"], ["Müller-Łukasiewicz", "O'Brien",
              "García", "Dvořák", "Ærø"], ["Zürich", "Kraków", "São Paulo"], "Switzerland"),
    "cyrillic": (["Анна", "Дмитрий", "Ольга", "Сергей", "Мария"], ["Иванова", "Петров",
                 "Смирнова", "Кузнецов", "Ёлкина"], ["Москва", "Санкт-Петербург", "Київ"],
                 "Russia"),
    "armenian": (["Արամ", "Անի", "Նարեկ", "Մարիամ", "Տիգրան"], ["Պետրոսյան", "Հակոբյան",
                 "Սարգսյան", "Գրիգորյան", "Մկրտչյան"], ["Երևան", "Գյումրի", "Վանաձոր"],
                 "Armenia"),
    "georgian": (["ნინო", "გიორგი", "მარიამ", "ლაშა", "თამარ"], ["ბერიძე", "კაპანაძე",
                 "მაისურაძე", "ჯაფარიძე", "ლომიძე"], ["თბილისი", "ბათუმი", "ქუთაისი"], "Georgia"),
    "arabic": (["محمد", "فاطمة", "علي", "ليلى", "عبد الله"], ["علي", "حسن", "الخطيب", "الحسيني",
               "منصور"], ["عمّان", "القاهرة", "بيروت"], "Jordan"),
    "hebrew": (["דוד", "שרה", "יוסף", "מרים", "אברהם"], ["כהן", "לוי", "מזרחי", "פרץ",
               "בן דוד"], ["תל אביב", "ירושלים", "חיפה"], "Israel"),
    "devanagari": (["प्रिया", "राहुल", "अमित", "श्रेया", "कृष्ण"], ["क्षत्रिय", "शर्मा", "वर्मा",
                   "त्रिपाठी", "ज्ञानी"], ["नई दिल्ली", "मुंबई", "वाराणसी"], "India"),
    "cjk": (["王", "李", "山田", "김", "佐藤"], ["小明", "秀英", "太郎", "민수", "花子"],
            ["北京", "東京", "서울"], "China"),
    "emoji": (["Sam 👨\u200d👩\u200d👧", "Ani 🇦🇲", "Lea 👍🏽", "Kim ❤️", "Tom 🌍✨"],
              ["Lee 🏳️\u200d⚧️", "Park 🇰🇷", "Nowak 👩🏽\u200d💻", "Ruiz 🏃\u200d♀️",
               "Cho 🏳️\u200d🌈"],
              ["Paris 🗼", "Berlin", "Rome 🇮🇹"], "France"),
}
DAY = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
BEFORE_ASTRAL_ZWJ = re.compile("\u200d(?=[\U00010000-\U0010ffff])")
READERS: dict[str, Callable[[bytes], str]] = {
    "pdf.js": lambda data: "\n".join(readers.pdfjs(data)),
    "mutool": readers.mutool,
    "pdftotext": readers.pdftotext,
}


@dataclass(frozen=True)
class Built:
    pdfs: list[UnsignedPdf]
    expected: dict[str, list[str]]  # script → each of its signers' lines, as read


def signers() -> tuple[list[Signer], dict[str, list[str]]]:
    rows: list[Signer] = []
    expected: dict[str, list[str]] = defaultdict(list)
    for script, (given, family, cities, country) in SCRIPTS.items():
        for i in range(PER_SCRIPT):
            # CJK names are written family name first, without a space
            name = (f"{family[i % 5]}{given[(i // 5) % 5]}" if script == "cjk" else
                    f"{given[i % 5]} {family[(i // 5) % 5]}")
            city = cities[i % 3]
            signed = DAY + timedelta(hours=len(rows))
            rows.append(Signer(name, city, country, signed, True))
            expected[script].append(
                f"{len(rows)} {signed.date().isoformat()} {name} — {city}, {country}")
    return rows, dict(expected)


@pytest.fixture(scope="module")
def built() -> Built:
    rows, expected = signers()
    pdfs = build_dossier_pdfs(make_dossier(rows, volume_size=100), TEMPLATES, languages=["en"],
                              workers=2, strict=True)
    return Built(pdfs, expected)


@pytest.fixture(scope="module")
def extracted(built: Built) -> dict[str, set[str]]:
    return {name: set(readers.lines(read(built.pdfs[0].data))) for name, read in READERS.items()}


@pytest.mark.parametrize("script", list(SCRIPTS))
@pytest.mark.parametrize("reader", list(READERS))
def test_each_reader_reads_each_signer_line_in_reading_order(
        built: Built, extracted: dict[str, set[str]], reader: str, script: str) -> None:
    # number, date, name — city, country: right-to-left names and cities read in reading
    # order and each in its place, clusters and ligatures whole, emoji sequences as written
    lines = extracted[reader]
    expected = built.expected[script]
    if reader == "pdf.js" and script == "emoji":
        # pdf.js skips a text ending in a ZWJ and MuPDF garbles one joined to a character
        # beyond the BMP, so only there does pdf.js read a sequence without its joiner
        # (delivery.pdf.text.layer.carried_units); before ♀ or ⚧ it keeps it
        expected = [BEFORE_ASTRAL_ZWJ.sub("", line) for line in expected]
    missing = [line for line in expected if line not in lines]
    assert not missing, f"{reader} misreads {len(missing)} {script} lines, e.g. {missing[:3]}"


def test_the_names_the_readers_got_wrong_before(extracted: dict[str, set[str]]) -> None:
    for lines in extracted.values():
        text = "\n".join(lines)
        assert "عمّان" in text and "प्रिया क्षत्रिय" in text and "דוד כהן — תל אביב" in text
        assert "\ufffd" not in text


def test_every_glyph_drawn_has_its_text(built: Built) -> None:
    # each code a volume page's content selects maps to text in its font's ToUnicode map
    pdf = pikepdf.open(io.BytesIO(built.pdfs[0].data))
    for page in pdf.pages:
        fonts = page.Resources.get("/Font")
        if not isinstance(fonts, pikepdf.Dictionary):
            continue
        # the typesetter's fonts (/F<weight>_<number>); the front's are WeasyPrint's
        mapped = {name: _mapped(font) for name, font in fonts.items()
                  if re.fullmatch(r"/F\d_\d+", name) and isinstance(font, pikepdf.Dictionary)}
        current = None
        for instruction in pikepdf.parse_content_stream(page):
            if not isinstance(instruction, pikepdf.ContentStreamInstruction):
                continue
            operands, operator = instruction.operands, instruction.operator
            if operator == pikepdf.Operator("Tf"):
                current = str(operands[0])
            elif operator in (pikepdf.Operator("Tj"), pikepdf.Operator("TJ")) and current:
                strings = operands[0] if operator == pikepdf.Operator("TJ") else [operands[0]]
                for item in strings:
                    if isinstance(item, pikepdf.String) and current in mapped:
                        raw = bytes(item)
                        codes = {int.from_bytes(raw[i:i + 2], "big")
                                 for i in range(0, len(raw), 2)}
                        assert codes <= mapped[current], (current, codes - mapped[current])


def test_no_two_different_subsets_the_typesetter_embeds_share_a_tag() -> None:
    # volumes of different signers use different glyphs of the same fonts: each subset gets
    # its own tag, across every PDF of the dossier
    rows, _ = signers()
    pdfs = build_dossier_pdfs(make_dossier(rows[:120], volume_size=20), TEMPLATES,
                              languages=["en"], workers=2, part_budget=60_000)
    programs = _programs(pdfs, typeset_only=True)
    assert len(programs) > 10
    assert not {name: len(found) for name, found in programs.items() if len(found) > 1}


def test_no_two_different_subsets_share_a_tag(built: Built) -> None:
    # across every PDF of the dossier, the front's fonts too: one tag, one font program
    programs = _programs(built.pdfs, typeset_only=False)
    assert programs
    shared = {name: len(found) for name, found in programs.items() if len(found) > 1}
    assert not shared


def _programs(pdfs: list[UnsignedPdf], *, typeset_only: bool) -> dict[str, set[bytes]]:
    """Subset tag and name → the font programs embedded under it."""
    programs: dict[str, set[bytes]] = defaultdict(set)
    for unsigned in pdfs:
        pdf = pikepdf.open(io.BytesIO(unsigned.data))
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == "/FontDescriptor":
                program = obj.get("/FontFile2") or obj.get("/FontFile3")
                name = str(obj.FontName)
                # the typesetter writes PostScript names (DejaVuSans), WeasyPrint family names
                # with hyphens (DejaVu-Sans)
                ours = re.match(r"^/[A-Z]{6}\+[A-Za-z0-9]+(-(Bold|Regular))?$", name) and \
                    "-Sans" not in name
                if program is not None and re.match(r"^/[A-Z]{6}\+", name) and (
                        ours or not typeset_only):
                    programs[name].add(program.read_bytes())
    return programs


def test_no_image_is_interpolated(built: Built) -> None:
    for unsigned in built.pdfs:
        pdf = pikepdf.open(io.BytesIO(unsigned.data))
        images = [obj for obj in pdf.objects if isinstance(obj, pikepdf.Stream)
                  and obj.get("/Subtype") == "/Image"]
        assert images  # the emoji
        assert not [image for image in images if bool(image.get("/Interpolate", False))]


def _mapped(font: pikepdf.Dictionary) -> set[int]:
    data = font.ToUnicode.read_bytes()
    codes = {int(code, 16) for code in re.findall(rb"<([0-9a-f]{4})> <[0-9a-f]+>", data)}
    for low, high in re.findall(rb"<([0-9a-f]{4})> <([0-9a-f]{4})> <", data):
        codes |= set(range(int(low, 16), int(high, 16) + 1))
    return codes


def test_a_joiner_goes_with_the_bmp_character_after_it_and_astral_ones_go_alone() -> None:
    assert carried_units("🏃\u200d♀\ufe0f") == ["🏃", "\u200d♀", "\ufe0f"]
    assert carried_units("🏳\ufe0f\u200d⚧\ufe0f") == ["🏳", "\ufe0f", "\u200d⚧", "\ufe0f"]
    assert carried_units("👨\u200d👩\u200d👧") == ["👨", "\u200d", "👩", "\u200d", "👧"]
    assert carried_units("🇦🇲") == ["🇦", "🇲"]
