"""Campaign + templates/ → what each recipient language needs, and every piece that is missing.

A delivery is built long after its campaign file was loaded: a recipient whose language has no
letter, no e-mail template or no fixed texts must stop the campaign when it loads, not leave a
delivery failing at 03:00. The template names are defined here, once, for the stages that render
them (delivery.dossier.render, delivery.services.pipeline).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from jinja2 import Environment, FileSystemLoader, TemplateError, TemplateSyntaxError

from delivery.campaigns.config import Campaign
from delivery.errors import CampaignIncomplete, ConfigError, MissingPiece

I18N_FILE = "i18n.toml"


def letter_template(letter: str, language: str) -> str:
    """The cover letter of `letter` (a folder under templates/, e.g. letters/salman-mukaev)."""
    return f"{letter}/{language}.html.j2"


def email_template(language: str) -> str:
    """The e-mail that carries the dossier: a 'Subject:' line, then the body."""
    return f"email/dossier.{language}.txt.j2"


@dataclass(frozen=True)
class FixedTexts:
    """templates/i18n.toml read once: one table of texts per language."""

    path: Path
    tables: Mapping[str, Mapping[str, Any]]

    @property
    def keys(self) -> frozenset[str]:
        """Every key some language defines: each language used must define them all."""
        return frozenset(key for table in self.tables.values() for key in table)


def read_fixed_texts(templates_dir: Path) -> FixedTexts:
    path = templates_dir / I18N_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), "(file)", f"cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "(syntax)", str(exc)) from None
    return FixedTexts(path, {lang: table for lang, table in data.items() if isinstance(table, dict)})


def missing_pieces(campaign: Campaign, templates_dir: Path, texts: FixedTexts,
                   env: Environment | None = None) -> Iterator[MissingPiece]:
    """Each file, template error or fixed text that a recipient's language lacks."""
    env = env or Environment(loader=FileSystemLoader(str(templates_dir)), autoescape=True)
    has_letter = (templates_dir / campaign.letter).is_dir()
    if not has_letter:
        yield MissingPiece(str(templates_dir / campaign.letter), "", campaign.languages[0],
                           "the letter's folder does not exist", "campaign.letter")
    for index, language in _first_recipient_of_each_language(campaign):
        key = f"recipients[{index}].language"
        needed = [(email_template(language), "the e-mail")]
        if has_letter:
            needed.insert(0, (letter_template(campaign.letter, language), "the cover letter"))
        for name, what in needed:
            problem = _template_problem(env, templates_dir, name)
            if problem:
                yield MissingPiece(str(templates_dir / name), "", language, f"{what}: {problem}", key)
        table = texts.tables.get(language)
        if table is None:
            yield MissingPiece(str(texts.path), f"[{language}]", language, "no table of fixed texts", key)
            continue
        absent = sorted(texts.keys - table.keys())
        if absent:
            yield MissingPiece(str(texts.path), f"[{language}] {', '.join(absent)}", language,
                               "fixed texts missing", key)
        locale = str(table.get("locale", language))
        try:
            Locale.parse(locale)
        except (ValueError, UnknownLocaleError):
            yield MissingPiece(str(texts.path), f"[{language}] locale", language,
                               f"'{locale}' is not a CLDR locale Babel knows", key)


def check_campaigns(campaigns: Mapping[str, Campaign], templates_dir: Path) -> None:
    """CampaignIncomplete naming every missing piece of every campaign; nothing when all is there."""
    texts = read_fixed_texts(templates_dir)
    env = Environment(loader=FileSystemLoader(str(templates_dir)), autoescape=True)
    for campaign in campaigns.values():
        pieces = list(missing_pieces(campaign, templates_dir, texts, env))
        if pieces:
            raise CampaignIncomplete(campaign.source, pieces)


def _first_recipient_of_each_language(campaign: Campaign) -> Iterator[tuple[int, str]]:
    seen: set[str] = set()
    for index, recipient in enumerate(campaign.recipients):
        if recipient.language not in seen:
            seen.add(recipient.language)
            yield index, recipient.language


def _template_problem(env: Environment, templates_dir: Path, name: str) -> str | None:
    path = templates_dir / name
    if not path.is_file():
        return "the file does not exist"
    try:
        env.parse(path.read_text(encoding="utf-8"), name, str(path))
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    except (OSError, UnicodeDecodeError, TemplateError) as exc:
        return f"cannot be read: {exc}"
    return None
