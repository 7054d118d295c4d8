"""A campaign is checked whole when it loads: every recipient language is one of
templates/languages.toml, has its cover letter and a catalog with every fixed text, or every
command exits 2 naming what is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from delivery.campaigns.config import load_campaigns
from delivery.campaigns.languages import DOSSIER, catalog_file, catalog_source
from delivery.campaigns.templates import EMAIL_TEMPLATE, check_campaigns, letter_template
from delivery.cli.main import main
from delivery.errors import CampaignIncomplete

REPO = Path(__file__).resolve().parents[2]
RUSSIAN_RECIPIENT = '''
[[recipients]]
name = "Embassy of the Russian Federation"
email = "embassy@example.org"
language = "ru"

[milestones]'''


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A campaign folder like the default one, with a third recipient who reads Russian."""
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    (tmp_path / "schedules").mkdir()
    text = (REPO / "schedules" / "salman-mukaev.toml").read_text(encoding="utf-8")
    (tmp_path / "schedules" / "salman-mukaev.toml").write_text(
        text.replace("\n[milestones]", RUSSIAN_RECIPIENT, 1), encoding="utf-8")
    monkeypatch.setenv("DELIVERY_HOME", str(tmp_path))
    monkeypatch.delenv("DELIVERY_DATABASE_URL", raising=False)
    return tmp_path


def problems(home: Path) -> CampaignIncomplete:
    with pytest.raises(CampaignIncomplete) as caught:
        check_campaigns(load_campaigns(home / "schedules"), home / "templates")
    return caught.value


def without_russian(home: Path) -> None:
    (home / "templates" / letter_template("letters/salman-mukaev", "ru")).unlink()
    shutil.rmtree(home / "templates" / "locale" / "ru")


def test_the_default_campaign_is_complete() -> None:
    check_campaigns(load_campaigns(REPO / "schedules"), REPO / "templates")


def test_a_russian_recipient_is_complete_with_the_shipped_templates(home: Path) -> None:
    check_campaigns(load_campaigns(home / "schedules"), home / "templates")


@pytest.mark.parametrize("command", [["init"], ["status"], ["deliveries"], ["run-due"], ["serve"],
                                     ["signers", "count"], ["preview"]])
def test_a_russian_recipient_without_russian_templates_stops_every_command(
        home: Path, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    without_russian(home)
    assert main(command) == 2
    error = capsys.readouterr().err
    assert "salman-mukaev.toml: recipients[2].language: language 'ru' lacks" in error
    assert str(home / "templates" / letter_template("letters/salman-mukaev", "ru")) in error
    assert str(catalog_file(home / "templates", "ru", DOSSIER)) in error
    assert not (home / "var" / "delivery.sqlite3").exists()


def test_a_message_the_catalog_lacks_is_named(home: Path) -> None:
    templates = home / "templates"
    source = catalog_source(templates, "ru", DOSSIER)
    with source.open("rb") as fp:
        catalog = read_po(fp, locale="ru")
    catalog.delete("Respectfully,")
    catalog["Summary"].string = ""
    with catalog_file(templates, "ru", DOSSIER).open("wb") as fp:
        write_mo(fp, catalog)
    assert sorted(p.problem for p in problems(home).pieces) == [
        "no translation of 'Respectfully,'", "no translation of 'Summary'"]


PLAIN_CAMPAIGN = """
[campaign]
slug = "plain"
title = "A petition"
goal = 100
letter = "letters/salman-mukaev"
sender = "Campaign <campaign@example.org>"

[[recipients]]
name = "An office"
email = "office@example.org"
language = "fr"

[milestones]
thresholds = [10]
"""


def test_a_language_that_languages_toml_does_not_list_is_named(home: Path) -> None:
    (home / "schedules" / "salman-mukaev.toml").write_text(PLAIN_CAMPAIGN, encoding="utf-8")
    [piece] = problems(home).pieces
    assert piece.key == "[fr]" and piece.needed_by == "recipients[0].language"
    assert "'fr' is not a language of languages.toml (known: en, hy, ru)" in piece.problem


def test_a_locale_cldr_does_not_know_stops_every_command(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    languages = home / "templates" / "languages.toml"
    languages.write_text(languages.read_text(encoding="utf-8").replace('locale = "ru"',
                                                                       'locale = "ru_XX_NOPE"'),
                         encoding="utf-8")
    assert main(["status"]) == 2
    assert "ru.locale: 'ru_XX_NOPE' is not a CLDR locale Babel knows" in capsys.readouterr().err


def test_a_template_that_does_not_parse_is_named_with_its_line(home: Path) -> None:
    email = home / "templates" / EMAIL_TEMPLATE
    email.write_text("Subject: {{ count }\nbody\n", encoding="utf-8")
    [piece] = problems(home).pieces
    assert piece.file == str(email) and piece.problem.startswith("the e-mail: line 1:")
