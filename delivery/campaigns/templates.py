"""Campaign + templates/ → what each recipient language needs, and every piece that is missing.

A delivery is built long after its campaign file was loaded: a recipient whose language is not
in templates/languages.toml, has no letter, or whose catalog lacks a fixed text must stop the
campaign when it loads, not leave a
delivery failing at 03:00. The template names are defined here, once, for the stages that render
them (delivery.dossier.render, delivery.services.pipeline).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    FunctionLoader,
    TemplateError,
    TemplateSyntaxError,
)

from delivery.campaigns.config import Campaign
from delivery.campaigns.languages import (
    DOSSIER,
    LANGUAGES_FILE,
    Language,
    catalog_problems,
    read_languages,
)
from delivery.errors import CampaignIncomplete, MissingPiece


def letter_template(letter: str, language: str) -> str:
    """The cover letter of `letter` (a folder under templates/, e.g. letters/salman-mukaev)."""
    return f"{letter}/{language}.html.j2"


def letter_overrides(letter: str, letters: Iterable[tuple[str, str]]) -> dict[str, str]:
    """(language, source) of letters edited in the web admin → their sources by template name."""
    return {letter_template(letter, language): source for language, source in letters}


def edited_filename(name: str) -> str:
    """The file name Jinja2 gives an edited template in tracebacks (to find its line)."""
    return f"(edited) {name}"


def template_loader(templates_dir: Path, overrides: Mapping[str, str] | None = None) -> BaseLoader:
    """templates/, with `overrides` (template name → source) in place of those files."""
    files = FileSystemLoader(str(templates_dir))
    if not overrides:
        return files
    sources = dict(overrides)

    def edited(name: str) -> tuple[str, str, Callable[[], bool]] | None:
        source = sources.get(name)
        return None if source is None else (source, edited_filename(name), lambda: True)

    return ChoiceLoader([FunctionLoader(edited), files])


EMAIL_TEMPLATE = "email/dossier.txt.j2"  # a 'Subject:' line, then the body; one for all languages


def missing_pieces(campaign: Campaign, templates_dir: Path, languages: Mapping[str, Language],
                   env: Environment | None = None) -> Iterator[MissingPiece]:
    """Each file, template error or translation that a recipient's language lacks."""
    env = env or Environment(loader=FileSystemLoader(str(templates_dir)), autoescape=True,
                             extensions=["jinja2.ext.i18n"])
    edited = dict(campaign.letters)
    has_letter = (templates_dir / campaign.letter).is_dir() or bool(edited)
    if not has_letter:
        yield MissingPiece(str(templates_dir / campaign.letter), "", campaign.languages[0],
                           "the letter's folder does not exist", "campaign.letter")
    problem = _template_problem(env, templates_dir, EMAIL_TEMPLATE)
    if problem:
        yield MissingPiece(str(templates_dir / EMAIL_TEMPLATE), "", campaign.languages[0],
                           f"the e-mail: {problem}", "recipients")
    for index, language in _first_recipient_of_each_language(campaign):
        key = f"recipients[{index}].language"
        if language not in languages:
            yield MissingPiece(str(templates_dir / LANGUAGES_FILE), f"[{language}]", language,
                               f"'{language}' is not a language of {LANGUAGES_FILE} (known: "
                               f"{', '.join(languages)})", key)
            continue
        if has_letter:
            name = letter_template(campaign.letter, language)
            problem = _template_problem(env, templates_dir, name, edited.get(language))
            if problem:
                yield MissingPiece(str(templates_dir / name), "", language,
                                   f"the cover letter: {problem}", key)
        for line in catalog_problems(templates_dir, language, DOSSIER):
            path, _, what = line.partition(": ")
            yield MissingPiece(path, "", language, what, key)


def check_campaigns(campaigns: Mapping[str, Campaign], templates_dir: Path) -> None:
    """CampaignIncomplete naming every missing piece of every campaign; nothing when all is there."""
    languages = read_languages(templates_dir)
    env = Environment(loader=FileSystemLoader(str(templates_dir)), autoescape=True,
                      extensions=["jinja2.ext.i18n"])
    for campaign in campaigns.values():
        pieces = list(missing_pieces(campaign, templates_dir, languages, env))
        if pieces:
            raise CampaignIncomplete(campaign.source, pieces)


def _first_recipient_of_each_language(campaign: Campaign) -> Iterator[tuple[int, str]]:
    seen: set[str] = set()
    for index, recipient in enumerate(campaign.recipients):
        if recipient.language not in seen:
            seen.add(recipient.language)
            yield index, recipient.language


def _template_problem(env: Environment, templates_dir: Path, name: str,
                      edited: str | None = None) -> str | None:
    """What is wrong with the template `name` (its `edited` source, when the web admin holds
    one), or None."""
    path = templates_dir / name
    if edited is None and not path.is_file():
        return "the file does not exist"
    try:
        source = path.read_text(encoding="utf-8") if edited is None else edited
        env.parse(source, name, str(path))
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    except (OSError, UnicodeDecodeError, TemplateError) as exc:
        return f"cannot be read: {exc}"
    return None
