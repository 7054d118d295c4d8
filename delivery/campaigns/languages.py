"""templates/languages.toml + templates/locale/ → the languages an edition or the admin can be
written in, and their gettext catalogs (read, never written: `make translations` writes them).

A language is a code (what a recipient's `language` or an organizer's choice names), the CLDR
locale that writes its dates, numbers and country names (through Babel), and its own name.
Fixed texts are English in the code and templates (the msgids) and translated in one catalog
per domain and language: `dossier` (what recipients get: the PDF and the e-mail) and `admin`
(the web admin). English needs no catalog.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from delivery.errors import ConfigError

SOURCE_LANGUAGE = "en"  # the language of the msgids
LANGUAGES_FILE = "languages.toml"
LOCALE_DIR = "locale"
DOSSIER, ADMIN = "dossier", "admin"
DOMAINS = (DOSSIER, ADMIN)
_CODE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class Language:
    code: str  # "hy"
    locale: str  # the CLDR locale: "hy", "en_GB"
    name: str  # its own name: "Հայերեն"


def N_(message: str) -> str:
    """Marks a message for extraction (scripts/translations.py) where it is defined; it is
    translated where it is shown."""
    return message


def read_languages(templates_dir: Path) -> dict[str, Language]:
    """templates/languages.toml: one table per language code, with its `locale` and `name`."""
    path = templates_dir / LANGUAGES_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), "(file)", f"cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "(syntax)", str(exc)) from None
    out: dict[str, Language] = {}
    for code, table in data.items():
        if not _CODE.match(code) or not isinstance(table, dict):
            raise ConfigError(str(path), code, "each language is a table named by its code, "
                                               "two or three lowercase letters, like [hy]")
        locale, name = table.get("locale"), table.get("name")
        if not isinstance(locale, str) or not isinstance(name, str) or not name.strip():
            raise ConfigError(str(path), code, 'needs locale = "<CLDR locale>" and name = "<its own name>"')
        try:
            Locale.parse(locale)
        except (ValueError, UnknownLocaleError):
            raise ConfigError(str(path), f"{code}.locale",
                              f"'{locale}' is not a CLDR locale Babel knows") from None
        out[code] = Language(code, locale, name.strip())
    if SOURCE_LANGUAGE not in out:
        raise ConfigError(str(path), SOURCE_LANGUAGE, "the texts' own language must be listed")
    return out


def catalog_template(templates_dir: Path, domain: str) -> Path:
    """The extracted messages of a domain (`<domain>.pot`), which every catalog translates."""
    return templates_dir / LOCALE_DIR / f"{domain}.pot"


def catalog_source(templates_dir: Path, language: str, domain: str) -> Path:
    """The catalog translators edit (`.po`)."""
    return templates_dir / LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"


def catalog_file(templates_dir: Path, language: str, domain: str) -> Path:
    """The compiled catalog the service reads (`.mo`)."""
    return catalog_source(templates_dir, language, domain).with_suffix(".mo")


def translations(templates_dir: Path, language: str, domain: str) -> NullTranslations:
    """The compiled catalog of `language` in `domain`; English (the msgids) needs none.
    Read again when the file changes."""
    if language == SOURCE_LANGUAGE:
        return NullTranslations()
    path = catalog_file(templates_dir, language, domain)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        raise ConfigError(str(path), "(file)", "no compiled catalog: run `make translations`") from None
    return _read_translations(path, stamp, domain)


@functools.lru_cache(maxsize=32)
def _read_translations(path: Path, stamp: int, domain: str) -> Translations:
    with path.open("rb") as fp:
        return Translations(fp, domain=domain)


def catalog_problems(templates_dir: Path, language: str, domain: str) -> Iterator[str]:
    """What the compiled catalog of `language` lacks against `<domain>.pot`: each message with
    no translation (or no translation of one of its plural forms), by its msgid."""
    if language == SOURCE_LANGUAGE:
        return
    template_path = catalog_template(templates_dir, domain)
    compiled = catalog_file(templates_dir, language, domain)
    if not template_path.is_file():
        yield f"{template_path}: missing (run `make translations`)"
        return
    if not compiled.is_file():
        yield f"{compiled}: no compiled catalog (run `make translations`)"
        return
    with template_path.open("rb") as fp:
        template = read_po(fp)
    with compiled.open("rb") as fp:
        catalog = read_mo(fp)
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context)
        strings = found.string if found is not None else None
        filled = (all(strings) if isinstance(strings, (list, tuple)) else bool(strings))
        if not filled:
            shown = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
            yield f"{catalog_source(templates_dir, language, domain)}: no translation of {shown!r}"


def negotiate(accepted: str, languages: Mapping[str, Language]) -> str:
    """An Accept-Language header → the best of `languages`, English when none is asked for."""
    asked = []
    for item in accepted.split(","):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            asked.append((quality, tag.strip().lower().replace("_", "-")))
    for _, tag in sorted(asked, key=lambda qt: -qt[0]):
        code = tag.split("-")[0]
        if code in languages:
            return code
    return SOURCE_LANGUAGE

