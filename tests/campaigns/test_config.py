"""Campaign files: the default one loads; every mistake names the file, the key and the problem."""

from __future__ import annotations

import shutil
from datetime import time, timedelta
from pathlib import Path

import pytest

from delivery.campaigns.config import load_campaigns, parse_campaign
from delivery.errors import ConfigError
from delivery.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
GOOD = (REPO / "schedules" / "salman-mukaev.toml").read_text(encoding="utf-8")


def test_default_campaign_addresses_the_prime_minister_and_the_migration_service() -> None:
    campaign = load_campaigns(REPO / "schedules")["salman-mukaev"]
    assert campaign.goal == 80_000
    assert [r.name for r in campaign.recipients] == ["Nikol Pashinyan",
                                                     "Migration and Citizenship Service"]
    assert [r.text("hy").name for r in campaign.recipients] == [
        "Նիկոլ Փաշինյան", "Միգրացիայի և քաղաքացիության ծառայություն"]
    assert [r.text("ru").title for r in campaign.recipients] == [
        "Премьер-министр Республики Армения", "Министерство внутренних дел Республики Армения"]
    assert campaign.recipients[0].text("hy").postal == (
        "Հանրապետության հրապարակ, Կառավարական տուն 1", "Երևան 0010, Հայաստան")
    assert campaign.title == "Armenia: Save Salman Mukaev's life!"
    assert campaign.text("hy").title == "Հայաստան, փրկե՛ք Սալման Մուկաևի կյանքը"
    assert (campaign.text("ru").sender_name, campaign.text("ru").location) == (
        "Кампания «Спасите Салмана Мукаева»", "Ереван")
    assert campaign.sender_name == "Save Salman Mukaev campaign"
    assert all(r.email.endswith("@example.org") for r in campaign.recipients)
    assert campaign.thresholds == (1000, 5000, 10000, 25000, 50000, 80000)
    assert campaign.languages == ("en", "hy")
    assert [r.max_message_size for r in campaign.recipients] == [10_000_000, 10_000_000]
    larger = parse_campaign(GOOD.replace("# max_message_size = 10000000",
                                         "max_message_size = 25000000"), "x")
    assert [r.max_message_size for r in larger.recipients] == [25_000_000, 10_000_000]
    assert campaign.schedule.hold == timedelta(hours=2)
    window = campaign.schedule.send_window
    assert window is not None and window.days == frozenset(range(5))
    assert (window.start, window.end) == (time(9), time(18))


@pytest.mark.parametrize(("old", "new", "key", "problem"), [
    ("goal = 80000", "goal = -5", "campaign.goal", "positive whole number"),
    ("goal = 80000", 'goal = "many"', "campaign.goal", "positive whole number"),
    ('email = "prime-minister@example.org"', 'email = "a@example.org, b@example.org"',
     "recipients[0].email", "exactly one address"),
    ('email = "prime-minister@example.org"', 'email = "pm@example.org\\r\\nBcc: x@evil.test"',
     "recipients[0].email", "line break"),
    ('email = "prime-minister@example.org"', 'email = "prémier@example.org"',
     "recipients[0].email", "SMTPUTF8"),
    ('email = "prime-minister@example.org"', 'email = "migration-service@example.org"',
     "recipients", "listed twice"),
    ("[1000, 5000, 10000, 25000, 50000, 80000]", "[5000, 1000]", "milestones.thresholds", "increasing"),
    ('timezone = "Asia/Yerevan"', 'timezone = "Asia/Atlantis"', "schedule.timezone", "unknown time zone"),
    ('send_window = "Mon-Fri 09:00-18:00"', 'send_window = "weekdays"', "schedule.send_window", "Mon-Fri"),
    ('send_window = "Mon-Fri 09:00-18:00"', 'send_window = "Mon-Fri 18:00-09:00"', "schedule.send_window",
     "before the end"),
    ('hold = "2h"', 'hold = "two hours"', "schedule.hold", "duration"),
    ('language = "hy"', 'language = "Armenian"', "recipients[1].language", "not a language code"),
    ('signing = "required"', 'signing = "maybe"', "campaign.signing", "not one of"),
    ('# consent_missing = "withhold"', 'consent_missing = "sometimes"', "campaign.consent_missing",
     "not one of"),
    ('slug = "salman-mukaev"', 'slug = "Salman Mukaev"', "campaign.slug", "lowercase"),
    ('en = "Nikol Pashinyan"', 'en = "Nikol\\r\\nPashinyan"', "recipients[0].name.en", "line break"),
    ('en = "Armenia: Save', 'en = "Armenia:\\rSave', "campaign.title.en", "line break"),
    ('hy = "Հայաստան, փրկե՛ք', 'hy = "Հայաստան,\\u2028փրկե՛ք', "campaign.title.hy", "line break"),
    ('sender = "Save Salman', 'sender = "Save\\rSalman', "campaign.sender", "line break"),
    ('en = "Yerevan"', 'en = "Yere\\u0000van"', "campaign.location.en", "control character"),
    ('hy = "Հայաստան, փրկե՛ք', 'hye = "Հայաստան, փրկե՛ք', "campaign.title", "no text in hy"),
    ('hy = "Նիկոլ Փաշինյան"', '', "recipients[0].name", "no text in hy"),
    ('en = "Nikol Pashinyan"', 'EN = "Nikol Pashinyan"', "recipients[0].name.EN",
     "not a language code"),
    ('hy = "Երևան"', 'hy = ""', "campaign.location.hy", ""),
    ('en = ["Government House 1, Republic Square",', 'en = ["Government House 1\\nRepublic Square",',
     "recipients[0].postal.en[0]", "one postal line per list item"),
    ('en = ["Government House 1, Republic Square", "Yerevan 0010, Armenia"]', 'en = 10',
     "recipients[0].postal.en", "list of strings"),
    ("# max_message_size = 10000000", "max_message_size = 500000",
     "recipients[0].max_message_size", "at least 1,000,000 bytes"),
    ("# max_message_size = 10000000", 'max_message_size = "10 MB"',
     "recipients[0].max_message_size", "positive whole number"),
    ('# delivery = "auto"', 'delivery = "email"', "recipients[0].delivery",
     "not one of: auto, attachment, link"),
    ("# link_after = 1", "link_after = 0", "recipients[0].link_after", "positive whole number"),
    ('# link_expiry = "90d"', 'link_expiry = "12h"', "campaign.link_expiry", "from 1d to 3650d"),
    ('# link_expiry = "90d"', 'link_expiry = "90 days"', "campaign.link_expiry", "is not a duration"),
    ('# chase_after = "7d"', 'chase_after = "30s"', "campaign.chase_after", "from 1h to 365d"),
    ('sender = "Save Salman Mukaev campaign <campaign@example.org>"',
     'sender = "Campaign <campaign@example.org>, other@example.org"', "campaign.sender", "exactly one"),
    ('sender = "Save Salman Mukaev campaign <campaign@example.org>"',
     'sender = "Campaign <campaign@example.org> <other@example.org>"', "campaign.sender", "exactly one"),
])
def test_config_errors_name_file_key_and_problem(old: str, new: str, key: str, problem: str) -> None:
    assert old in GOOD
    with pytest.raises(ConfigError) as caught:
        parse_campaign(GOOD.replace(old, new, 1), "schedules/x.toml")
    assert caught.value.source == "schedules/x.toml"
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"schedules/x.toml: {key}: ")


def test_a_postal_string_is_one_line_in_every_language() -> None:
    start = GOOD.index("[recipients.postal]")
    table = GOOD[start:GOOD.index("[[recipients]]", start)]
    pm = 'email = "prime-minister@example.org"\n'
    campaign = parse_campaign(GOOD.replace(table, "").replace(
        pm, pm + 'postal = "Government House 1, Yerevan 0010"\n'), "x")
    assert [campaign.recipients[0].text(lang).postal for lang in ("en", "hy")] == [
        ("Government House 1, Yerevan 0010",)] * 2


def test_consent_missing_is_unset_by_default_and_read_when_given() -> None:
    assert parse_campaign(GOOD, "x.toml").consent_missing == ""
    given = GOOD.replace('# consent_missing = "withhold"', 'consent_missing = "withhold"', 1)
    assert parse_campaign(given, "x.toml").consent_missing == "withhold"


def test_missing_table_and_syntax_error_are_reported() -> None:
    with pytest.raises(ConfigError, match="missing \\[milestones\\] table"):
        parse_campaign(GOOD.split("[milestones]")[0], "x.toml")
    with pytest.raises(ConfigError, match=r"x.toml: \(syntax\)"):
        parse_campaign("[campaign\nslug=", "x.toml")


def test_two_files_with_one_slug_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.toml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(ConfigError, match="also used by"):
        load_campaigns(tmp_path)


def test_smtp_security_none_only_for_loopback() -> None:
    env = {"DELIVERY_SMTP_HOST": "mail.example.org", "DELIVERY_SMTP_SECURITY": "none"}
    with pytest.raises(ConfigError, match="loopback"):
        load_settings(env)
    smtp = load_settings({**env, "DELIVERY_SMTP_HOST": "127.0.0.1"}).smtp
    assert smtp is not None and smtp.port == 25


def test_secrets_are_not_in_repr() -> None:
    settings = load_settings({"DELIVERY_SMTP_HOST": "mail.example.org", "DELIVERY_SMTP_PASSWORD": "hunter2",
                              "DELIVERY_SIGNING_PASSPHRASE": "s3cret"})
    assert "hunter2" not in repr(settings)
    assert "s3cret" not in repr(settings)
    assert settings.smtp is not None and settings.smtp.port == 587


def test_bad_port_is_refused() -> None:
    with pytest.raises(ConfigError, match="DELIVERY_SMTP_PORT"):
        load_settings({"DELIVERY_SMTP_HOST": "mail.example.org", "DELIVERY_SMTP_PORT": "smtp"})


@pytest.mark.parametrize(("old", "new", "key"), [
    ('hold = "2h"', 'hodl = "2h"', "schedule.hodl"),
    ('send_window = "Mon-Fri 09:00-18:00"', 'send_windw = "Mon-Fri 09:00-18:00"', "schedule.send_windw"),
    ('language = "en"', 'language = "en"\nlanguge = "hy"', "recipients[0].languge"),
    ("[milestones]", "[milestone]\nx = 1\n[milestones]", "milestone"),
])
def test_misspelt_keys_are_refused_not_defaulted(old: str, new: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_campaign(GOOD.replace(old, new, 1), "x.toml")
    assert caught.value.key == key and "unknown key" in caught.value.problem


@pytest.mark.parametrize("timeout", ["-1", "0", "abc", "99999"])
def test_smtp_timeout_must_be_sensible(timeout: str) -> None:
    with pytest.raises(ConfigError, match="DELIVERY_SMTP_TIMEOUT"):
        load_settings({"DELIVERY_SMTP_HOST": "mail.example.org", "DELIVERY_SMTP_TIMEOUT": timeout})


def test_a_campaign_without_its_letter_template_is_refused_at_start(tmp_path: Path) -> None:
    from delivery.services.app import open_app

    (tmp_path / "schedules").mkdir()
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    (tmp_path / "schedules" / "c.toml").write_text(GOOD.replace("letters/salman-mukaev", "letters/nope"),
                                                   encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        open_app(load_settings({"DELIVERY_HOME": str(tmp_path)}))
    assert caught.value.key == "campaign.letter" and "letters/nope (the letter's folder does not exist)" \
        in caught.value.problem


@pytest.mark.parametrize(("url", "problem"), [
    ("mysql://x@localhost/y", "not supported"),
    ("not a url", "not a database URL"),
    ("sqlite:////nonexistent-folder/dir/x.db", "does not exist"),
])
def test_unusable_database_urls_are_config_errors(url: str, problem: str) -> None:
    from delivery.storage.db import make_engine

    with pytest.raises(ConfigError, match=problem):
        make_engine(url)
    assert not Path("/nonexistent-folder").exists()


def test_delivery_mode_link_after_and_link_expiry_are_read_with_their_defaults() -> None:
    plain = parse_campaign(GOOD, "x.toml")
    assert [(r.delivery, r.link_after) for r in plain.recipients] == [("auto", 1), ("auto", 1)]
    assert plain.link_expiry == timedelta(days=90)
    given = parse_campaign(GOOD.replace('# delivery = "auto"', 'delivery = "link"', 1)
                           .replace("# link_after = 1", "link_after = 3", 1)
                           .replace('# link_expiry = "90d"', 'link_expiry = "30d"', 1), "x.toml")
    assert (given.recipients[0].delivery, given.recipients[0].link_after) == ("link", 3)
    assert given.recipients[1].delivery == "auto" and given.link_expiry == timedelta(days=30)


def test_chase_after_is_off_unless_given() -> None:
    assert parse_campaign(GOOD, "x.toml").chase_after is None
    given = parse_campaign(GOOD.replace('# chase_after = "7d"', 'chase_after = "7d"', 1), "x.toml")
    assert given.chase_after == timedelta(days=7)
