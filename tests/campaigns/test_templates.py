"""A campaign is checked whole when it loads: every recipient language has its cover letter, its
e-mail template and all fixed texts, or every command exits 2 naming what is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from delivery.campaigns.config import load_campaigns
from delivery.campaigns.templates import check_campaigns, email_template, letter_template
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


def add_russian_templates(home: Path) -> None:
    letters = home / "templates" / "letters" / "salman-mukaev"
    shutil.copy(letters / "en.html.j2", letters / "ru.html.j2")
    email = home / "templates" / "email"
    shutil.copy(email / "dossier.en.txt.j2", email / "dossier.ru.txt.j2")


def problems(home: Path) -> CampaignIncomplete:
    with pytest.raises(CampaignIncomplete) as caught:
        check_campaigns(load_campaigns(home / "schedules"), home / "templates")
    return caught.value


def test_the_default_campaign_is_complete() -> None:
    check_campaigns(load_campaigns(REPO / "schedules"), REPO / "templates")


@pytest.mark.parametrize("command", [["init"], ["status"], ["deliveries"], ["run-due"], ["serve"],
                                     ["signers", "count"], ["preview"]])
def test_a_russian_recipient_without_russian_templates_stops_every_command(
        home: Path, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(command) == 2
    error = capsys.readouterr().err
    assert "salman-mukaev.toml: recipients[2].language: language 'ru' lacks" in error
    assert str(home / "templates" / letter_template("letters/salman-mukaev", "ru")) in error
    assert str(home / "templates" / email_template("ru")) in error
    assert not (home / "var" / "delivery.sqlite3").exists()


def test_missing_fixed_texts_are_named_by_key(home: Path) -> None:
    add_russian_templates(home)
    check_campaigns(load_campaigns(home / "schedules"), home / "templates")  # complete now
    i18n = home / "templates" / "i18n.toml"
    text = i18n.read_text(encoding="utf-8")
    head, russian = text.split("\n[ru]\n")
    russian = "\n".join(line for line in russian.splitlines()
                        if not line.startswith(("closing =", "col_city =")))
    i18n.write_text(f"{head}\n[ru]\n{russian}\n", encoding="utf-8")
    error = problems(home)
    assert [(p.file, p.key, p.language) for p in error.pieces] == [
        (str(i18n), "[ru] closing, col_city", "ru")]


def test_a_language_without_a_table_of_texts_is_named(home: Path) -> None:
    add_russian_templates(home)
    i18n = home / "templates" / "i18n.toml"
    i18n.write_text(i18n.read_text(encoding="utf-8").split("\n[ru]\n")[0], encoding="utf-8")
    assert [(p.key, p.problem) for p in problems(home).pieces] == [("[ru]", "no table of fixed texts")]


def test_a_locale_cldr_does_not_know_is_named(home: Path) -> None:
    add_russian_templates(home)
    i18n = home / "templates" / "i18n.toml"
    i18n.write_text(i18n.read_text(encoding="utf-8").replace('locale = "ru"', 'locale = "ru_XX_NOPE"'),
                    encoding="utf-8")
    assert [(p.key, p.problem) for p in problems(home).pieces] == [
        ("[ru] locale", "'ru_XX_NOPE' is not a CLDR locale Babel knows")]


def test_a_template_that_does_not_parse_is_named_with_its_line(home: Path) -> None:
    add_russian_templates(home)
    email = home / "templates" / email_template("ru")
    email.write_text("Subject: {{ count }\nbody\n", encoding="utf-8")
    [piece] = problems(home).pieces
    assert piece.file == str(email) and piece.problem.startswith("the e-mail: line 1:")
