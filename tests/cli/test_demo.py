"""`petition-delivery demo`, run as a user runs it: a fresh folder, e-mails with signed dossiers."""

from __future__ import annotations

import email
import email.policy
import re
import sqlite3
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^\s*(\d+) \d{4}-\d\d-\d\d (.+?) — ")
# pdftotext returns right-to-left and Indic names in visual or decomposed order: those rows are
# checked by number only; their glyphs are checked by the rendering tests.
COMPARABLE = re.compile(r"^[\w\s'’.-]+$")


def scripts_ok(name: str) -> bool:
    return bool(COMPARABLE.match(name)) and not any(
        unicodedata.bidirectional(c) in ("R", "AL") or "\u0900" <= c <= "\u097f" for c in name)


@pytest.mark.slow
def test_demo_delivers_signed_dossiers_with_every_signer_once(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "delivery", "demo", "--folder", str(folder),
                             "--signers", "1500"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "self-signed" in result.stdout
    emls = sorted((folder / "outbox").glob("*.eml"))
    assert len(emls) == 2  # 1,500 signers pass one milestone (1,000): one e-mail per recipient
    assert str(emls[0]) in result.stdout or str(folder / "outbox") in result.stdout

    with sqlite3.connect(folder / "delivery.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM signers").fetchone() == (1500,)
        [(frozen,)] = db.execute("SELECT last_signer_id FROM deliveries").fetchall()
        signers = db.execute("SELECT name, consent FROM signers WHERE id <= ? ORDER BY id",
                             (frozen,)).fetchall()

    messages = {p: email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in emls}
    latest, msg = next((p, m) for p, m in messages.items() if "prime-minister@" in m["To"])
    assert msg["To"] == "Nikol Pashinyan <prime-minister@example.org>"
    pdfs = [p for p in msg.iter_attachments() if str(p.get_filename()).endswith(".pdf")]
    assert pdfs
    path = tmp_path / "dossier.pdf"
    path.write_bytes(pdfs[0].get_content())
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Nikol Pashinyan" in text and "Migration and Citizenship Service" in text
    assert "Mukaev" in text and "not to extradite Salman Mukaev" in text.replace("\n", " ")

    rows = [(int(m.group(1)), m.group(2)) for m in map(LINE.match, text.splitlines()) if m]
    assert [n for n, _ in rows] == list(range(1, len(signers) + 1)), "every signer listed once, in order"
    for (number, printed), (name, consent) in zip(rows, signers, strict=True):
        if not consent:
            assert printed == "Name withheld", number
        elif scripts_ok(name):
            assert printed == name, (number, printed, name)
    assert "@example.org" not in text.replace("@example.org>", "")

    verify = subprocess.run([sys.executable, "-m", "delivery", "verify", "--trust",
                             str(tmp_path / "demo-signing" / "signing" / "demo-cert.pem"), str(latest)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
