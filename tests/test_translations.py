"""scripts/translations.py (`make translations`, and its check in `make lint`), run as a program on
this checkout and on a copy of it: the shipped catalogs are complete and up to date, running it
changes nothing, and a message a catalog lacks fails the check, named."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po

from delivery.campaigns.languages import DOSSIER, catalog_source

REPO = Path(__file__).resolve().parents[1]


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(root / "scripts" / "translations.py"), *args],
                          capture_output=True, text=True, timeout=300, check=False)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """What the script reads and writes: the templates, the code it extracts from, itself."""
    root = tmp_path / "checkout"
    for part in ("templates", "delivery", "scripts"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_shipped_catalogs_are_complete_and_up_to_date() -> None:
    result = run(REPO, "--check")
    assert result.returncode == 0, result.stderr


def test_running_it_on_a_clean_checkout_changes_nothing(checkout: Path) -> None:
    before = snapshot(checkout / "templates" / "locale")
    result = run(checkout)
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("wrote ")] == []
    assert snapshot(checkout / "templates" / "locale") == before


def test_a_message_a_catalog_lacks_fails_the_check_naming_it(checkout: Path) -> None:
    source = catalog_source(checkout / "templates", "ru", DOSSIER)
    with source.open("rb") as fp:
        catalog = read_po(fp, locale="ru")
    catalog.delete("Signers by country")
    with source.open("wb") as fp:
        write_po(fp, catalog, width=100)

    result = run(checkout, "--check")
    assert result.returncode == 1
    assert ("templates/locale/ru/LC_MESSAGES/dossier.po: lacks the message 'Signers by country'"
            in result.stderr)
    assert "hy/LC_MESSAGES/dossier.po" not in result.stderr  # only the broken catalog is named

    # updating puts it back for a translator, untranslated: the check still fails until then
    assert run(checkout).returncode == 0
    again = run(checkout, "--check")
    assert again.returncode == 1
    assert ("templates/locale/ru/LC_MESSAGES/dossier.po: no translation of 'Signers by country'"
            in again.stderr)


def test_a_translation_that_drops_a_placeholder_fails_the_check(checkout: Path) -> None:
    source = catalog_source(checkout / "templates", "hy", DOSSIER)
    with source.open("rb") as fp:
        catalog = read_po(fp, locale="hy")
    message = catalog.get("Dossier %(id)s")
    assert message is not None
    message.string = "Փաթեթ %(identifier)s"
    with source.open("wb") as fp:
        write_po(fp, catalog, width=100)

    result = run(checkout, "--check")
    assert result.returncode == 1
    assert "'Dossier %(id)s'" in result.stderr and "identifier" in result.stderr
