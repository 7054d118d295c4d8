"""delivery.dossier.render and delivery.dossier.charts: pure HTML and SVG, no PDF engine involved."""

from __future__ import annotations

import dataclasses
import re
import shutil
import unicodedata
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from delivery.campaigns.config import parse_campaign
from delivery.campaigns.languages import DOSSIER, catalog_file, catalog_problems, read_languages
from delivery.dossier import charts, render
from delivery.dossier.compose import Dossier, Line, Signer, Volume, compose
from delivery.errors import RenderError

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
CAMPAIGN = parse_campaign((REPO / "schedules" / "salman-mukaev.toml").read_text(), "test")
DAY = date(2024, 1, 29)


def dossier(n: int = 30, *, signed: bool = False, volume_size: int = 10,
            verify_url: str | None = None) -> Dossier:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [Signer(f"Signer {i}", "Yerevan", ["Armenia", "France"][i % 2],
                   base + timedelta(days=i), i != 3) for i in range(n)]
    composed = compose(CAMPAIGN, rows, dossier_id="D-1", created_at=base + timedelta(days=n),
                       trigger="milestone", milestone=25, addressees=CAMPAIGN.recipients,
                       signed=signed, volume_size=volume_size)
    return dataclasses.replace(composed, verify_url=verify_url)


def test_every_language_has_every_text() -> None:
    assert set(read_languages(TEMPLATES)) == {"en", "hy", "ru"}
    for language in ("hy", "ru"):
        assert list(catalog_problems(TEMPLATES, language, DOSSIER)) == [], language


def test_css_string_cannot_break_out() -> None:
    hostile = '"; } </style><script>x</script> \\ \n'
    out = render.css_string(hostile)
    assert out.startswith('"') and out.endswith('"')
    inner = str(out)[1:-1]
    assert '"' not in inner and "<" not in inner and ";" not in inner and "\n" not in inner
    assert render.css_string("a b") == '"a b"'
    assert render.css_string("·") == '"\\b7 "'


def test_page_content_uses_counters() -> None:
    assert render.page_content("page %(page)s of %(pages)s") == \
        '"page " counter(page) " of " counter(pages)'
    assert render.page_content("Volume %(volume)s · page %(page)s of %(pages)s", volume="3") == \
        '"Volume 3 \\b7  page " counter(page) " of " counter(pages)'


def test_line_text_isolates_names_and_pads_numbers() -> None:
    line = Line(42, "محمد علي", "القاهرة", "Egypt", DAY)
    text = render.line_text(line, "Name withheld")
    assert text == "\u2007\u2007\u2007\u2007\u200742  2024-01-29  \u2068محمد علي\u2069 — " \
                   "\u2068القاهرة\u2069, \u2068Egypt\u2069"
    withheld = render.line_text(Line(1, None, "", "Armenia", DAY), "Name withheld")
    assert withheld.endswith("Name withheld — \u2068Armenia\u2069")


def test_layout_page_counts() -> None:
    layout = render.Layout(lines_per_page=10, heading_lines=3)
    assert [layout.pages_for(n) for n in (0, 1, 7, 8, 17, 18, 27)] == [1, 1, 1, 2, 2, 3, 3]


def test_volume_body_escapes_names_and_shows_nothing_delivery_or_language_specific() -> None:
    volume = Volume.of_lines(4, 9, 31, 32, [Line(31, "<b>Anna</b> {{ 7*7 }}", "Yerevan", "AM", DAY),
                                        Line(32, None, "Gyumri", "AM", DAY)])
    env = render.make_environment(TEMPLATES)
    html = render.volume_html(env, volume, render.Layout())
    assert "&lt;b&gt;Anna&lt;/b&gt; {{ 7*7 }}" in html and "<b>" not in html and "49" not in html
    # totals and ids change with every delivery: a cached body must not contain them
    assert "999" not in html and "of 9" not in html and "D-" not in html
    # nor anything in a language: one body serves every edition
    for language in ("en", "hy", "ru"):
        t = render.load_texts(TEMPLATES, language)
        for text in ("Name withheld", "No.", "Name", "Country"):
            assert t.gettext(text) not in html, (language, text)
    assert 'lang="und"' in html and "Gyumri" not in html and "counter(page)" not in html


def test_volume_overlay_holds_headers_withheld_lines_and_page_labels() -> None:
    volume = Volume.of_lines(4, 9, 31, 33, [Line(31, "Anna", "Yerevan", "AM", DAY),
                                        Line(32, None, "Gyumri", "AM", DAY),
                                        Line(33, "Ivan", "Yerevan", "AM", DAY)])
    env = render.make_environment(TEMPLATES)
    html = render.overlay_html(env, render.load_texts(TEMPLATES, "hy"), volume, render.Layout())
    assert "Anna" not in html and "Ivan" not in html and 'lang="hy"' in html
    lines = re.findall(r'<p class="pg"([^>]*)><span class="t">(.*?)</span></p>', html, re.S)
    assert lines == [(' style="margin-top: 4.6000mm"',  # one line down: line 32 is the 2nd
                      "\u2007\u2007\u2007\u2007\u200732  2024-01-29  Անունը չի հրապարակվում — "
                      "\u2068Gyumri\u2069, \u2068AM\u2069")]
    assert "Հ/հ" in html and "Երկիր" in html
    assert "Հատոր 4 · էջ 1՝ 1-ից" in html
    assert '<p class="heading">Հատոր 4. ստորագրողներ № 31–33</p>' in html


def test_volume_body_breaks_pages_at_fixed_line_counts() -> None:
    lines = [Line(i, f"N{i}", "C", "K", DAY) for i in range(1, 26)]
    volume = Volume.of_lines(1, 1, 1, 25, lines)
    layout = render.Layout(lines_per_page=10, heading_lines=3)
    env = render.make_environment(TEMPLATES)
    html = render.volume_html(env, volume, layout)
    assert html.count('class="hd pb"') == layout.pages_for(25) - 1
    pages = re.findall(r'<p class="pg">(.*?)</p>', html, re.S)
    assert [len(page.split("\n")) for page in pages] == [7, 10, 8]
    overlay = render.overlay_html(env, render.load_texts(TEMPLATES, "en"), volume, layout)
    assert overlay.count('class="op pb"') == layout.pages_for(25) - 1


def test_line_breaks_in_names_cannot_add_lines() -> None:
    line = Line(1, "Anna\nMaria\u2028X", "Yere\rvan", "A\tM", DAY)
    assert "\n" not in render.line_text(line, "") and "\r" not in render.line_text(line, "")


def test_front_has_letter_summary_and_footer() -> None:
    d = dossier()
    env = render.make_environment(TEMPLATES)
    html = render.front_html(env, render.load_texts(TEMPLATES, "en"), d, volume_pages=3)
    assert "Nikol Pashinyan" in html and "Prime Minister of the Republic of Armenia" in html
    assert "This dossier is not digitally signed." in html
    assert "3 volumes, 3 pages" in html and "25 signatures" in html
    assert html.count("<svg") == 2
    assert "counter(page)" in html and "D\\2d 1 \\b7  30" in html
    hy = render.load_texts(TEMPLATES, "hy")
    signed = render.front_html(render.make_environment(TEMPLATES, hy), hy, dossier(signed=True),
                               volume_pages=3)
    assert "not digitally signed" not in signed and "PAdES" in signed
    assert "Սալման Մուկաևին" in signed and 'lang="hy"' in signed


def test_the_signed_letter_page_names_the_verification_page() -> None:
    env = render.make_environment(TEMPLATES)
    texts = render.load_texts(TEMPLATES, "en")
    url = "https://petition.example.org/verify"
    named = render.front_html(env, texts, dossier(signed=True, verify_url=url), volume_pages=1)
    assert f"open {url} and drop its PDF files" in " ".join(named.split())
    # an unsigned dossier (a preview) has nothing that page would accept
    for unnamed in (dossier(signed=True), dossier(signed=False, verify_url=url)):
        assert "/verify" not in render.front_html(env, texts, unnamed, volume_pages=1)


def test_front_escapes_campaign_texts() -> None:
    d = dossier()
    hostile = d.__class__(**{**d.__dict__, "campaign_title": "</title><script>x</script>",
                             "sender_name": '"><img src=x>', "campaign_texts": ()})
    env = render.make_environment(TEMPLATES)
    html = render.front_html(env, render.load_texts(TEMPLATES, "en"), hostile, volume_pages=1)
    assert "<script>" not in html and "<img src=x>" not in html
    assert "&lt;/title&gt;&lt;script&gt;" in html


def test_missing_letter_language_and_catalog_are_render_errors(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    (templates / "letters" / "salman-mukaev" / "ru.html.j2").unlink()
    env = render.make_environment(templates)
    with pytest.raises(RenderError, match="no letter template"):
        render.front_html(env, render.load_texts(templates, "ru"), dossier(), volume_pages=1)
    with pytest.raises(RenderError, match="no language 'fr'"):
        render.load_texts(templates, "fr")
    catalog_file(templates, "hy", DOSSIER).unlink()
    with pytest.raises(RenderError, match="no compiled catalog: run `make translations`"):
        render.load_texts(templates, "hy")


def test_undefined_template_variables_fail(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    letter = templates / "letters" / "salman-mukaev" / "en.html.j2"
    letter.write_text(letter.read_text() + "{{ no_such_variable }}")
    env = render.make_environment(templates)
    with pytest.raises(UndefinedError):
        render.front_html(env, render.load_texts(templates, "en"), dossier(), volume_pages=1)


def test_template_version_follows_the_files(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    before = render.template_version(templates, "letters/salman-mukaev")
    assert before == render.template_version(templates, "letters/salman-mukaev")
    (templates / "dossier" / "dossier.css").write_text("/* changed */", encoding="utf-8")
    assert render.template_version(templates, "letters/salman-mukaev") != before


def test_texts_format_numbers_and_dates() -> None:
    en, hy, ru = (render.load_texts(TEMPLATES, lang) for lang in ("en", "hy", "ru"))
    # CLDR's formats (Babel): a no-break space groups Armenian and Russian digits
    assert en.num(80000) == "80,000" and hy.num(80000) == ru.num(80000) == "80\u00a0000"
    assert en.date(DAY) == "29 January 2024"
    assert hy.date(DAY) == "2024 թ. հունվարի 29"
    assert ru.date(DAY) == "29 января 2024\u202fг."
    assert (en.percent(6.9), hy.percent(6.9), ru.percent(1234.5)) == ("6.9", "6,9", "1\u00a0234,5")
    heading = "Volume %(volume)s: signers no. %(first)s–%(last)s"
    assert en.gettext(heading, volume=3, first=4001, last=6000) == \
        "Volume 3: signers no. 4,001–6,000"
    assert ru.gettext(heading, volume=3, first=4001, last=6000) == \
        "Том 3: подписавшие № 4\u00a0001–6\u00a0000"


def test_plural_forms_follow_cldr_rules() -> None:
    ru, hy = render.load_texts(TEMPLATES, "ru"), render.load_texts(TEMPLATES, "hy")
    forms = [ru.ngettext("%(count)s volume", "%(count)s volumes", n, count=n) for n in (1, 3, 5, 21, 1000)]
    assert forms == ["1 том", "3 тома", "5 томов", "21 том", "1\u00a0000 томов"]
    # Armenian nouns stay singular after a numeral
    assert hy.ngettext("%(count)s page", "%(count)s pages", 38, count=38) == "38 էջ"


def test_country_table_in_the_editions_alphabetical_order_and_chart_by_count() -> None:
    d = dossier()
    counts = (("Russian Federation", 9), ("Armenia", 7), ("Germany", 5), ("Egypt", 3))
    d = d.__class__(**{**d.__dict__, "by_country": counts})
    hy = render.load_texts(TEMPLATES, "hy")
    chart, table = render.country_table(hy, d)
    assert [name for name, _ in chart] == ["Ռուսաստան", "Հայաստան", "Գերմանիա", "Եգիպտոս"]
    # Armenian alphabet: Գ, Ե, Հ, Ռ
    assert [name for name, _ in table] == ["Գերմանիա", "Եգիպտոս", "Հայաստան", "Ռուսաստան"]
    many = tuple((f"Land {chr(65 + i)}", 20 - i) for i in range(12))
    d = d.__class__(**{**d.__dict__, "by_country": (("Zimbabwe", 30), *many)})
    chart, table = render.country_table(render.load_texts(TEMPLATES, "en"), d)
    assert table[-1] == chart[-1] == ("Other countries", sum(n for _, n in many[8:]))
    assert [name for name, _ in table[:2]] == ["Land A", "Land B"] and ("Zimbabwe", 30) in table


def test_the_armenian_edition_prints_the_campaign_in_armenian() -> None:
    env_texts = render.load_texts(TEMPLATES, "hy")
    html = render.front_html(render.make_environment(TEMPLATES, env_texts), env_texts, dossier(),
                             volume_pages=3)
    for text in ("Հայաստան, փրկե՛ք Սալման Մուկաևի կյանքը", "Նիկոլ Փաշինյան",
                 "Հայաստանի Հանրապետության վարչապետ", "Երևան 0010, Հայաստան",
                 "Միգրացիայի և քաղաքացիության ծառայություն", "«Փրկենք Սալման Մուկաևին» արշավ",
                 "Երևան, "):
        assert text in html, text
    for english in ("Save Salman", "Pashinyan", "Prime Minister", "Yerevan,", "campaign"):
        assert english not in html.split("<body>")[1].replace("Signer ", ""), english


def test_countries_are_named_in_the_edition_language_and_free_text_stays() -> None:
    en, hy, ru = (render.load_texts(TEMPLATES, lang) for lang in ("en", "hy", "ru"))
    assert (en.country("Germany"), hy.country("Germany"), ru.country("Germany")) == (
        "Germany", "Գերմանիա", "Германия")
    assert (en.country("Russian Federation"), hy.country("Armenia")) == ("Russia", "Հայաստան")
    assert hy.country("Kurdistan") == "Kurdistan" and ru.country("") == ""


def test_an_edition_whose_locale_cldr_lacks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="not a CLDR locale"):
        render.Texts("xx", "xx_NOWHERE", TEMPLATES)


def test_footer_text_pattern() -> None:
    assert render.footer_text(dossier(), "en") == "Armenia: Save Salman Mukaev's life! — D-1 · 30"
    assert render.footer_text(dossier(), "ru").startswith("Армения, спасите жизнь")


def test_bar_chart_escapes_labels_and_scales() -> None:
    svg = charts.bar_chart([("<script>", 10), ("A & B", 5)], fmt=str)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "A &amp; B" in svg
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths[0] == pytest.approx(2 * widths[1])
    assert charts.bar_chart([], fmt=str) == ""


def test_fit_shortens_to_the_room_at_a_word_and_keeps_marks_with_their_letter() -> None:
    def width(text: str) -> float:
        return 10.0 * sum(1 for c in text if not unicodedata.combining(c))

    assert charts.fit("Russia", 60, width) == "Russia"
    assert charts.fit("Saint Vincent & Grenadines", 160, width) == "Saint Vincent…"
    assert charts.fit("Bosnia", 40, width) == "Bos…"
    # the accent stays on its e: a cut never falls between a letter and its combining mark
    assert charts.fit("Cafe\u0301 Noir Extra", 50, width) == "Cafe\u0301…"
    assert charts.fit("Cafe\u0301s", 40, width) == "Caf…"


def test_line_chart_points_and_thinning() -> None:
    points = [(DAY + timedelta(days=i), i * 10) for i in range(1000)]
    svg = charts.line_chart(points, fmt=str, max_points=100)
    coords = re.search(r'points="([^"]+)"', svg)
    assert coords is not None and len(coords.group(1).split()) == 100
    assert "2024-01-29" in svg and (DAY + timedelta(days=999)).isoformat() in svg
    single = charts.line_chart([(DAY, 5)], fmt=str)
    assert "<polyline" in single


def test_top_rows_sums_the_rest() -> None:
    rows = [("A", 5), ("B", 4), ("C", 3), ("D", 2)]
    assert charts.top_rows(rows, 3, "Other") == [("A", 5), ("B", 4), ("Other", 5)]
    assert charts.top_rows(rows, 4, "Other") == rows
