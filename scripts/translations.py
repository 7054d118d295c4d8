"""Sources → templates/locale/: extract the fixed texts, update each language's catalog, compile.

    python scripts/translations.py          extract (.pot), update (.po), compile (.mo)
    python scripts/translations.py --check  change nothing; exit 1 naming every message a
                                            catalog lacks and every file that is out of date

`make translations` runs the first, `make lint` the second, for every language of
templates/languages.toml but English (the msgids). A file is written only when its messages
change, so a clean checkout stays clean (the header's dates are not compared).
Messages come from the Jinja2 templates (`{% trans %}`, `_()`, `ngettext()`, through Babel's
Jinja2 extractor) and from Python (`gettext()`, `ngettext()`, `N_()` calls, any receiver).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from delivery.campaigns.languages import (  # noqa: E402
    ADMIN,
    DOSSIER,
    SOURCE_LANGUAGE,
    catalog_file,
    catalog_source,
    catalog_template,
    read_languages,
)

TEMPLATES = ROOT / "templates"
JINJA = "jinja2.ext:babel_extract"
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trimmed": "true"}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
# Which files each domain's messages come from (globs under the checkout).
SOURCES: dict[str, list[tuple[str, str]]] = {
    DOSSIER: [("templates/dossier/*.j2", JINJA), ("templates/email/*.j2", JINJA),
              ("delivery/dossier/*.py", "python"), ("delivery/pdf/parts.py", "python"),
              ("delivery/services/pipeline.py", "python")],
    ADMIN: [("templates/admin/*.html", JINJA), ("delivery/web/*.py", "python"),
            ("delivery/signers/formats.py", "python")],  # the import formats' titles
}
HEADER_DATES = ("POT-Creation-Date:", "PO-Revision-Date:")


HEADER = """\
# The {domain} messages of petition-delivery{language}.
# Source: the templates and code named before each message; `make translations` updates this
# file and compiles it (.mo). Translate each msgstr; keep every %(name)s and write %% for %."""


def new_catalog(domain: str, locale: str | None = None) -> Catalog:
    language = f", in {locale}" if locale else " (the template every language translates)"
    return Catalog(locale=locale, domain=domain, project="petition-delivery", version="",
                   header_comment=HEADER.format(domain=domain, language=language), fuzzy=False,
                   msgid_bugs_address="", copyright_holder="", last_translator="",
                   language_team="", charset="utf-8")


def extract(domain: str) -> Catalog:
    catalog = new_catalog(domain)
    for pattern, method in SOURCES[domain]:
        for path in sorted(ROOT.glob(pattern)):
            options = JINJA_OPTIONS if method == JINJA else {}
            relative = path.relative_to(ROOT).as_posix()
            for lineno, message, comments, context in extract_from_file(
                    method, str(path), keywords=KEYWORDS, comment_tags=("Translators:",),
                    options=options, strip_comment_tags=True):
                catalog.add(message, None, [(relative, lineno)], auto_comments=comments,
                            context=context)
    return catalog


def po_bytes(catalog: Catalog, *, template: bool = False) -> bytes:
    out = io.BytesIO()
    # no line numbers: a message's place changes with every edit near it, its file rarely
    write_po(out, catalog, width=100, omit_header=False, ignore_obsolete=True,
             include_previous=False, sort_output=False, sort_by_file=False, include_lineno=False)
    return out.getvalue()


def mo_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def _without_dates(data: bytes) -> list[bytes]:
    return [line for line in data.splitlines()
            if not any(line.startswith(b'"' + d.encode()) for d in HEADER_DATES)]


def read_catalog(path: Path, locale: str | None = None) -> Catalog | None:
    if not path.is_file():
        return None
    with path.open("rb") as fp:
        return read_po(fp, locale=locale)


def updated(template: Catalog, existing: Catalog | None, language: str) -> Catalog:
    catalog = existing or new_catalog(template.domain or "", language)
    catalog.update(template, no_fuzzy_matching=False, update_header_comment=False)
    catalog.obsolete.clear()
    return catalog


def missing(catalog: Catalog, path: Path) -> Iterator[str]:
    for message in catalog:
        if not message.id:
            continue
        shown = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
        strings = message.string
        filled = all(strings) if isinstance(strings, (list, tuple)) else bool(strings)
        if message.fuzzy:
            yield f"{path.relative_to(ROOT)}: the translation of {shown!r} is marked fuzzy"
        elif not filled:
            yield f"{path.relative_to(ROOT)}: no translation of {shown!r}"


def lacking(template: Catalog, catalog: Catalog, path: Path) -> Iterator[str]:
    """Each message of the template that the catalog does not have at all."""
    for message in template:
        if message.id and catalog.get(message.id, context=message.context) is None:
            shown = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
            yield f"{path.relative_to(ROOT)}: lacks the message {shown!r}"


def run(check: bool, languages: Iterable[str], domains: Iterable[str]) -> list[str]:
    problems: list[str] = []

    def put(path: Path, data: bytes, *, text: bool) -> None:
        old = path.read_bytes() if path.is_file() else None
        same = old is not None and (_without_dates(old) == _without_dates(data) if text
                                    else old == data)
        if same:
            return
        if check:
            problems.append(f"{path.relative_to(ROOT)}: out of date (run `make translations`)")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path.relative_to(ROOT)}")

    for domain in domains:
        template = extract(domain)
        previous = read_catalog(catalog_template(TEMPLATES, domain))
        if previous is not None and (_without_dates(po_bytes(previous, template=True))
                                     == _without_dates(po_bytes(template, template=True))):
            # the same messages: keep their date, which every catalog and compiled file repeats
            template.creation_date = previous.creation_date
        put(catalog_template(TEMPLATES, domain), po_bytes(template, template=True), text=True)
        for language in languages:
            source = catalog_source(TEMPLATES, language, domain)
            existing = read_catalog(source, language)
            if check:
                if existing is None:
                    problems.append(f"{source.relative_to(ROOT)}: missing (run `make translations`)")
                    continue
                problems.extend(lacking(template, existing, source))
                problems.extend(missing(existing, source))
                for message, errors in existing.check():
                    shown = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
                    problems.extend(f"{source.relative_to(ROOT)}: {shown!r}: {error}"
                                    for error in errors)
            catalog = updated(template, read_catalog(source, language), language)
            put(source, po_bytes(catalog), text=True)
            put(catalog_file(TEMPLATES, language, domain), mo_bytes(catalog), text=False)
            if not check:
                for line in missing(catalog, source):
                    print(f"to translate: {line}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; fail naming what is missing or out of date")
    parser.add_argument("--domain", choices=sorted(SOURCES), action="append",
                        help="only this domain (repeatable; default: all)")
    args = parser.parse_args()
    languages = [code for code in read_languages(TEMPLATES) if code != SOURCE_LANGUAGE]
    problems = run(args.check, languages, args.domain or list(SOURCES))
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
