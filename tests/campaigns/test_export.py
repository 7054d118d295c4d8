"""delivery.campaigns.export: a campaign written out is read back as the same campaign, every key
and every language's text; `campaigns export` prints it or writes it to a file."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tomllib
from datetime import time, timedelta
from pathlib import Path

import pytest

from delivery.campaigns.config import Campaign, SendWindow, parse_campaign
from delivery.campaigns.export import campaign_toml, duration_text, send_window_text

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "schedules" / "salman-mukaev.toml"

EVERYTHING = """
[campaign]
slug = "every-key"
goal = 1200
letter = "letters/salman-mukaev"
sender = "Campaign <campaign@example.org>"
organizers = ["a@example.org", "b@example.org"]
signing = "off"
withheld_names = "omit"
consent_missing = "withhold"
retention = "180d"
link_expiry = "30d"
chase_after = "36h"
require_second_approval = true
title = "One title"
sender_name = "The campaign"
location = "Yerevan"

[[recipients]]
email = "office@example.org"
language = "hy"
max_message_size = 5000000
delivery = "link"
link_after = 2
name = "An office"
title = "Its title"
postal = ["Line one", "Line two"]

[[recipients]]
email = "other@example.org"
language = "ru"
delivery = "attachment"
[recipients.name]
hy = "Գրասենյակ"
ru = "Ведомство"
[recipients.postal]
hy = ["Երևան"]
ru = []

[milestones]
thresholds = [10, 100, 1000]

[schedule]
check_every = "90s"
timezone = "Asia/Yerevan"
send_window = "Sat-Mon 08:30-17:45"
hold = "2h"
"""


def _same(campaign: Campaign) -> None:
    again = parse_campaign(campaign_toml(campaign), "exported")
    assert dataclasses.replace(again, source=campaign.source) == campaign


def test_the_shipped_campaign_comes_back_the_same() -> None:
    _same(parse_campaign(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED)))


def test_every_key_and_its_languages_come_back_the_same() -> None:
    campaign = parse_campaign(EVERYTHING, "every-key.toml")
    assert campaign.schedule.send_window is not None and campaign.chase_after == timedelta(hours=36)
    _same(campaign)
    written = tomllib.loads(campaign_toml(campaign))
    # the campaign's own defaults are written as what is in force; a recipient's only when set
    assert written["campaign"]["link_expiry"] == "30d" and written["schedule"]["hold"] == "2h"
    assert written["recipients"][0]["max_message_size"] == 5_000_000
    assert "max_message_size" not in written["recipients"][1]
    assert written["schedule"]["send_window"] == "mon,sat,sun 08:30-17:45"
    assert written["campaign"]["sender_name"] == {"hy": "The campaign", "ru": "The campaign"}


def test_a_sender_name_given_once_is_kept() -> None:
    campaign = parse_campaign(EVERYTHING, "every-key.toml")
    assert campaign.text("hy").sender_name == campaign.text("ru").sender_name == "The campaign"
    assert campaign.sender_name == "Campaign"  # the From's display name stays the sender's


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(days=90), "90d"), (timedelta(hours=36), "36h"), (timedelta(minutes=5), "5m"),
    (timedelta(seconds=90), "90s"), (timedelta(0), "0d")])
def test_durations_are_written_in_their_largest_whole_unit(value: timedelta, text: str) -> None:
    assert duration_text(value) == text


def test_a_send_window_lists_its_days_in_the_weeks_order() -> None:
    window = SendWindow(frozenset({6, 0, 4}), time(9), time(18, 0, 30))
    assert send_window_text(window) == "mon,fri,sun 09:00-18:00:30"


def test_the_command_prints_the_campaign_or_writes_its_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_")}
    env |= {"DELIVERY_HOME": str(REPO), "DELIVERY_VAR_DIR": str(tmp_path / "var"),
            "DELIVERY_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "delivery", "campaigns", "export", *args],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)

    printed = run("salman-mukaev")
    assert printed.returncode == 0, printed.stderr
    shipped = parse_campaign(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED))
    assert dataclasses.replace(parse_campaign(printed.stdout, "-"), source=shipped.source) == shipped
    out = tmp_path / "exported.toml"
    assert run("salman-mukaev", "--out", str(out)).returncode == 0
    assert out.read_text(encoding="utf-8") == printed.stdout
    refused = run("salman-mukaev", "--out", str(out))  # never overwrites without --force
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert run("salman-mukaev", "--out", str(out), "--force").returncode == 0
    unknown = run("no-such-campaign")
    assert unknown.returncode == 2 and "no-such-campaign" in unknown.stderr
