"""Dossier + language + templates → HTML documents and page data (pure apart from reading templates).

What the dossier shows, per language:
- the *front*: cover letter and summary, numbered "page X of Y" within itself (HTML, rendered
  by WeasyPrint through `delivery.pdf.weasy`);
- each *volume*: the signer lines (`line_parts`; the countries named in the edition's
  language, the names and cities as the signers wrote them), and what the language adds (`overlay`): the
  volume heading ("Volume 3: signers no. 4,001–6,000") on its first page, the column headers,
  the withheld signers' lines ("Name withheld — city, country") at their places, and "Volume v
  · page X of Y". Nothing in it changes with a later milestone, so a full volume is drawn once
  (by delivery.pdf.typeset) and cached. `volume_html` and `overlay_html` render the same pages as
  HTML: the reference delivery.pdf.typeset's tests compare it with;
- the *stamp*: one page with the dossier footer (title, dossier id · signer count), laid over
  every volume page when they are joined. It is the only per-delivery part besides the front,
  and its cost does not grow with the dossier.

Page geometry is fixed (a forced break every `Layout.lines_per_page` lines, fixed line height,
no wrapping), so every volume's page count is known before it is drawn.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import icu
from babel import Locale, UnknownLocaleError
from babel import __version__ as babel_version
from babel.dates import format_date
from babel.numbers import format_decimal
from babel.support import NullTranslations
from jinja2 import Environment, StrictUndefined, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from delivery.campaigns.languages import (
    DOSSIER,
    LANGUAGES_FILE,
    LOCALE_DIR,
    read_languages,
    translations,
)
from delivery.campaigns.templates import letter_template, template_loader
from delivery.dossier import charts
from delivery.dossier.compose import Dossier, Line, Volume
from delivery.errors import ConfigError, RenderError
from delivery.signers.countries import country_code

FSI, PDI, FIGURE_SPACE = "\u2068", "\u2069", "\u2007"
NUMBER_WIDTH = 7  # digits of the running number; padded with figure spaces to line up
DOSSIER_DIR = "dossier"
BAR_LABEL_MAX = 170  # px of the bar chart's 380 for labels: the bars keep more than half
COUNTRY_ROWS = 10
NEUTRAL_LANGUAGE = "und"  # volume bodies serve every language


@dataclass(frozen=True)
class Layout:
    """Fixed page geometry of a volume body: `lines_per_page` signer lines on every page but the
    first, which gives `heading_lines` lines to the volume heading laid over it."""

    lines_per_page: int = 54
    heading_lines: int = 3
    line_height_mm: float = 4.6

    @property
    def first_page_lines(self) -> int:
        return self.lines_per_page - self.heading_lines

    def pages_for(self, lines: int) -> int:
        if lines <= self.first_page_lines:
            return 1
        rest = lines - self.first_page_lines
        return 1 + -(-rest // self.lines_per_page)

    def key(self) -> str:
        return f"{self.lines_per_page}/{self.heading_lines}/{self.line_height_mm}"


class Texts:
    """One language's fixed texts (its `dossier` gettext catalog under templates/locale/), with
    the dates, numbers, percentages, country names and alphabetical order of its CLDR locale
    (Babel; ICU's collation)."""

    def __init__(self, language: str, locale_name: str, templates_dir: Path) -> None:
        self.language = language
        # The name, not the Locale: Texts go to the render workers with every volume, and a
        # Locale that has formatted once carries its whole CLDR data along when pickled.
        self.locale_name = locale_name
        self.templates_dir = templates_dir
        self._catalog: NullTranslations | None = None
        self._countries: dict[str, str] = {}  # stored name → this locale's, once per name
        try:
            cldr_locale(locale_name)
        except (ValueError, UnknownLocaleError) as exc:
            raise RenderError(f"templates/{LANGUAGES_FILE}: [{language}] locale "
                              f"'{locale_name}' is not a CLDR locale") from exc

    def __getstate__(self) -> dict[str, Any]:
        # a catalog holds its plural rule as compiled code, which does not pickle: each worker
        # reads the file again (once, languages.translations caches it)
        return {**self.__dict__, "_catalog": None, "_countries": {}}

    @property
    def catalog(self) -> NullTranslations:
        if self._catalog is None:
            try:
                self._catalog = translations(self.templates_dir, self.language, DOSSIER)
            except ConfigError as exc:
                raise RenderError(str(exc)) from exc
        return self._catalog

    @property
    def locale(self) -> Locale:
        return cldr_locale(self.locale_name)

    def gettext(self, message: str, **values: object) -> str:
        """`message` in this language, its %(name)s placeholders filled (whole numbers written
        as this locale writes them)."""
        return self._fill(self.catalog.gettext(message), values)

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        """The form of `singular`/`plural` this language uses for `n` (CLDR's plural rules:
        Russian has three), with %(num)s the number as this locale writes it."""
        return self._fill(self.catalog.ngettext(singular, plural, n), {"num": n, **values})

    def _fill(self, text: str, values: Mapping[str, object]) -> str:
        # always formatted, as Jinja2's newstyle gettext does: a literal % is %% everywhere
        return text % {k: self.num(v) if isinstance(v, int) and not isinstance(v, bool) else v
                       for k, v in values.items()}

    def num(self, value: int) -> str:
        return format_decimal(value, locale=self.locale)

    def date(self, day: date, length: str = "long") -> str:
        """The day as CLDR's `length` (short, medium, long, full) writes it in this locale: long
        "1 May 2024", "1 мая 2024 г.", "2024 թ. մայիսի 1"; medium "1 May 2024", "1 мая 2024 г."."""
        return format_date(day, format=length, locale=self.locale)

    def percent(self, value: float) -> str:
        return format_decimal(value, format="#,##0.0", locale=self.locale)

    def country(self, name: str) -> str:
        """A stored country (the canonical English name, or free text) → its name in this
        locale; free text ("Kurdistan") stays as the signers wrote it."""
        known = self._countries.get(name)
        if known is None:
            code = country_code(name)
            known = self._countries[name] = (self.locale.territories.get(code, name) if code
                                             else name)
        return known

    def sort_key(self, text: str) -> bytes:
        """Where `text` goes in this locale's alphabetical order (ICU's collation of its CLDR
        locale: Armenian letters in the Armenian alphabet's order, Russian Ё beside Е)."""
        return collator(self.locale_name).getSortKey(text)  # type: ignore[no-any-return]


@functools.cache
def cldr_locale(name: str) -> Locale:
    """A CLDR locale by name, once per process."""
    return Locale.parse(name)


@functools.cache
def collator(locale_name: str) -> Any:
    return icu.Collator.createInstance(icu.Locale(locale_name))


def load_texts(templates_dir: Path, language: str) -> Texts:
    try:
        known = read_languages(templates_dir)
    except ConfigError as exc:
        raise RenderError(str(exc)) from exc
    if language not in known:
        raise RenderError(f"templates/{LANGUAGES_FILE}: no language '{language}'")
    texts = Texts(language, known[language].locale, templates_dir)
    texts.catalog  # noqa: B018 (a missing catalog fails here, not in a render worker)
    return texts


def make_environment(templates_dir: Path, texts: Texts | None = None, *,
                     overrides: Mapping[str, str] | None = None) -> Environment:
    """The dossier's templates, with `overrides` (template name → source: letters edited in the
    web admin) in place of their files; with `texts`, `{% trans %}`, `_()` and `ngettext()`
    speak its language (one environment per language: a shared one would change under another
    build)."""
    # sandboxed: an owner edits the letter in the web admin, and no template may reach Python's
    # internals through attributes (`''.__class__…`)
    env = SandboxedEnvironment(loader=template_loader(templates_dir, overrides), autoescape=True,
                               undefined=StrictUndefined, keep_trailing_newline=False,
                               extensions=["jinja2.ext.i18n"])
    env.policies["ext.i18n.trimmed"] = True
    env.filters["css_string"] = css_string
    catalog = texts.catalog if texts is not None else NullTranslations()
    env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
    return env


def template_version(templates_dir: Path, letter: str) -> str:
    """A hash of every template file a dossier of this letter is made from, and of the CLDR data
    (Babel's version) that formats its dates, numbers and country names."""
    digest = hashlib.sha256(f"babel {babel_version}\0icu {icu.ICU_VERSION}\0".encode())
    roots = [templates_dir / LANGUAGES_FILE, templates_dir / LOCALE_DIR, templates_dir / DOSSIER_DIR,
             templates_dir / letter]
    for root in roots:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            digest.update(str(path.relative_to(templates_dir)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def css_string(text: str) -> Markup:
    """A CSS string literal for `content:`; everything but letters, digits and spaces is escaped
    as a code point, so no text can close the string or the <style> element. (The space after
    each escape ends it and is eaten by the CSS parser.)"""
    out = ['"']
    for ch in text:
        out.append(ch if ch.isascii() and (ch.isalnum() or ch == " ") else f"\\{ord(ch):x} ")
    out.append('"')
    return Markup("".join(out))  # noqa: S704 (every character is escaped or alphanumeric)


def page_content(template: str, **labels: str) -> Markup:
    """'Volume %(volume)s · page %(page)s of %(pages)s' → a CSS `content` value with page
    counters."""
    out: list[str] = []
    rest = template % {**labels, "page": "\0page\0", "pages": "\0pages\0"}
    for i, piece in enumerate(rest.split("\0")):
        if i % 2:
            out.append(f"counter({piece})")
        elif piece:
            out.append(css_string(piece))
    return Markup(" ".join(out))  # noqa: S704 (css_string pieces and fixed counter names)


def footer_text(dossier: Dossier, language: str) -> str:
    """The dossier footer; `verify` finds the signer count by the 'id · count' pattern."""
    title = dossier.text(language).title
    return f"{title} — {dossier.dossier_id} · {dossier.signer_count:,}"


def pdf_subject(texts: Texts, dossier: Dossier) -> str:
    """The PDF's Subject: what it is and whom it addresses, in the edition's language."""
    addressees = ", ".join(a.text(texts.language).name for a in dossier.addressees)
    return texts.ngettext("Petition dossier: %(num)s signature, addressed to %(addressees)s",
                          "Petition dossier: %(num)s signatures, addressed to %(addressees)s",
                          dossier.signer_count, addressees=addressees)


def country_table(texts: Texts, dossier: Dossier) -> tuple[list[tuple[str, int]],
                                                            list[tuple[str, int]]]:
    """(the bar chart's rows, most signers first; the table's rows, the same countries in the
    edition's alphabetical order), each ending with "Other countries" when there are more."""
    named = [(texts.country(name), count) for name, count in dossier.by_country]
    rows = charts.top_rows(named, COUNTRY_ROWS, texts.gettext("Other countries"))
    grouped = len(named) > COUNTRY_ROWS  # the last row sums the rest
    head = rows[:-1] if grouped else rows
    table = sorted(head, key=lambda row: texts.sort_key(row[0]))
    return rows, (table + rows[-1:] if grouped else table)


def front_html(env: Environment, texts: Texts, dossier: Dossier, *, volume_pages: int,
               measure: Callable[[str], float] | None = None) -> str:
    """The letter and summary as HTML; `measure` (a bar label → its drawn width in px, see
    charts.bar_chart) lets the chart's labels fit their column. `env` is the language's
    (make_environment with these texts)."""
    lang = texts.language
    letter_name = letter_template(dossier.letter, lang)
    try:
        env.get_template(letter_name)
    except TemplateNotFound as exc:
        raise RenderError(f"no letter template templates/{letter_name} for language '{lang}'") \
            from exc
    rows, table = country_table(texts, dossier)
    # 160 of 240 px high: with ten countries the chart still fits under them on the summary
    # page, in every edition, instead of alone on a third page
    growth = charts.line_chart(dossier.growth, fmt=texts.num, height=160,
                               day_fmt=lambda day: texts.date(day, "medium"))
    total = dossier.signer_count or 1
    own = dossier.text(lang)
    return env.get_template(f"{DOSSIER_DIR}/front.html.j2").render(
        d=dossier, t=texts, lang=lang, letter_template=letter_name,
        count=texts.num(dossier.signer_count), title=own.title, sender_name=own.sender_name,
        location=own.location,
        addressees=[a.text(lang) for a in dossier.addressees],
        description=pdf_subject(texts, dossier),
        footer=footer_text(dossier, lang),
        page_label=page_content(texts.catalog.gettext("page %(page)s of %(pages)s")),
        country_rows=[(name, texts.num(n), texts.percent(100 * n / total)) for name, n in table],
        # charts.* escape every label themselves
        bar_chart=Markup(charts.bar_chart(rows, fmt=texts.num, width=380, label_width=120,  # noqa: S704
                                          measure=measure, max_label_width=BAR_LABEL_MAX)),
        line_chart=Markup(growth),  # noqa: S704 - charts escape every text they draw
        volume_pages=volume_pages,
    )


def line_text(line: Line, withheld: str, country: Callable[[str], str] = str) -> str:
    """One signer as one run of text: number and date at fixed width, then name — city, country.

    A single text run per line is what makes long lists fast (every extra inline box costs a
    layout box per signer). Each name, city and country sits between Unicode isolates (FSI…PDI,
    what <bdi> means), so a right-to-left name cannot reorder the rest of its line.
    """
    return "".join(line_parts(line, withheld, country))


def line_parts(line: Line, withheld: str,
               country: Callable[[str], str] = str) -> tuple[str, str, str, str]:
    """`line_text` in four pieces: the padded number, the date with its spaces, the name, and
    " — city, country" (empty without a place). `country`: the stored country → as the edition
    names it (Texts.country); the name and the city stay as the signer wrote them."""
    place = ", ".join(f"{FSI}{_one_line(part)}{PDI}"
                      for part in (line.city, country(line.country) if line.country else "")
                      if part)
    name = withheld if line.name is None else f"{FSI}{_one_line(line.name)}{PDI}"
    return (str(line.number).rjust(NUMBER_WIDTH, FIGURE_SPACE),
            f"  {line.signed_on.isoformat()}  ", name, f" — {place}" if place else "")


def volume_html(env: Environment, volume: Volume, layout: Layout,
                texts: Texts | None = None) -> str:
    """The lines of the signers who gave their names, as WeasyPrint lays them out: with
    overlay_html (the headers, withheld signers' lines and page labels laid over it), the
    reference rendering of typeset.volume_pdf, which its tests compare word by word. With
    `texts`, the countries are named in that edition's language; without, as stored."""
    country = texts.country if texts is not None else str
    pages = [[line_text(line, "", country) if line.name is not None else "" for line in page]
             for page in paginate(volume.printed_lines(), layout)]
    return env.get_template(f"{DOSSIER_DIR}/volume.html.j2").render(
        lang=texts.language if texts is not None else NEUTRAL_LANGUAGE, layout=layout,
        pages=pages)


@dataclass(frozen=True)
class OverlayPage:
    rows: list[tuple[int, tuple[str, str, str, str]]]  # (row, line parts) per withheld signer
    label: str  # "Volume 3 · page 2 of 38"

    @property
    def lines(self) -> list[tuple[int, str]]:
        """(blank lines before it, text) per withheld signer: how the HTML places them."""
        out, next_row = [], 0
        for row, parts in self.rows:
            out.append((row - next_row, "".join(parts)))
            next_row = row + 1
        return out


@dataclass(frozen=True)
class Overlay:
    """What one language lays over a volume body (see overlay_html)."""

    heading: str  # "Volume 3: signers no. 4,001–6,000"
    columns: tuple[str, str, str, str, str]  # number, date, name, city, country
    pages: list[OverlayPage]


def volume_heading(texts: Texts, volume: Volume) -> str:
    """"Volume 3: signers no. 4,001–6,000": the volume's first line, and its bookmark."""
    return texts.gettext("Volume %(volume)s: signers no. %(first)s–%(last)s", volume=volume.number,
                         first=volume.first, last=volume.last)


def overlay(texts: Texts, volume: Volume, layout: Layout) -> Overlay:
    withheld = texts.gettext("Name withheld")
    paginated = paginate(volume.printed_lines(), layout)
    pages = []
    for number, page in enumerate(paginated, start=1):
        rows = [(row, line_parts(line, withheld, texts.country)) for row, line in enumerate(page)
                if line.name is None]
        label = texts.gettext("Volume %(volume)s · page %(page)s of %(pages)s",
                              volume=str(volume.number), page=str(number),
                              pages=str(len(paginated)))
        pages.append(OverlayPage(rows, label))
    return Overlay(
        volume_heading(texts, volume),
        # Translators: the column headers of the signer list: number, date, name, city, country
        (texts.gettext("No."), texts.gettext("Date"), texts.gettext("Name"),
         texts.gettext("City"), texts.gettext("Country")), pages)


def overlay_html(env: Environment, texts: Texts, volume: Volume, layout: Layout) -> str:
    """What one language lays over a volume body, page for page at the same line positions: the
    volume heading, the column headers, the lines of signers who withheld their name ("Name
    withheld — city, country", a few per page) and "Volume v · page p of n". With volume_html,
    the reference rendering of typeset.volume_pdf."""
    drawn = overlay(texts, volume, layout)
    return env.get_template(f"{DOSSIER_DIR}/overlay.html.j2").render(
        lang=texts.language, layout=layout, pages=drawn.pages,
        header=_column_header(drawn.columns), heading=drawn.heading)


def _column_header(columns: tuple[str, str, str, str, str]) -> Markup:
    return Markup(  # format() escapes each text
        '<span class="hno">{}</span><span class="hdt">{}</span>{} — {}, {}').format(*columns)


def stamp_html(env: Environment, texts: Texts, dossier: Dossier) -> str:
    """One page: the dossier footer, laid over every volume page."""
    return env.get_template(f"{DOSSIER_DIR}/stamp.html.j2").render(
        lang=texts.language, footer=css_string(footer_text(dossier, texts.language)))


def _one_line(text: str) -> str:
    """Line breaks would add lines to a page and break the fixed geometry."""
    return text.translate(_LINE_BREAKS)


_LINE_BREAKS = {ord(c): " " for c in "\n\r\t\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


def paginate(lines: Sequence[Line], layout: Layout) -> list[Sequence[Line]]:
    first = layout.first_page_lines
    pages = [lines[:first]]
    for start in range(first, len(lines), layout.lines_per_page):
        pages.append(lines[start:start + layout.lines_per_page])
    return pages
