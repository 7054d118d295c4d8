"""A small campaign file for tests: the default campaign's letter, two recipients, test addresses."""

from __future__ import annotations


def campaign_file(*, slug: str, title: str, goal: int, signing: str, hold: str, thresholds: str,
                  check_every: str, second_language: str = "hy", send_window: str | None = None) -> str:
    window = f'send_window = "{send_window}"\n' if send_window else ""
    return f"""
[campaign]
slug = "{slug}"
title = "{title}"
goal = {goal}
letter = "letters/salman-mukaev"
sender = "Test campaign <campaign@example.org>"
organizers = ["organizers@example.org"]
location = "Yerevan"
signing = "{signing}"

[[recipients]]
name = "Nikol Pashinyan"
title = "Prime Minister of the Republic of Armenia"
email = "prime-minister@example.org"
language = "en"

[[recipients]]
name = "Migration Service of Armenia"
email = "migration-service@example.org"
language = "{second_language}"

[milestones]
thresholds = {thresholds}

[schedule]
check_every = "{check_every}"
timezone = "Asia/Yerevan"
{window}hold = "{hold}"
"""
