"""PDF bytes → the text three readers the project did not write extract from it: pdf.js (Firefox,
many web viewers; run by node from tests/support/node), MuPDF's `mutool draw -F txt` and poppler's
`pdftotext`, each with its own default reading of the page.

`make setup` installs pdf.js (`npm ci` in tests/support/node); `pdfjs` installs it there itself
when it is missing, so a test run on a fresh checkout needs only node and npm.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"
# bidi formatting characters: poppler wraps right-to-left text in RLE…PDF, the dossier's lines
# hold isolates (FSI…PDI) and the writer LRMs; none of them is seen on the page
BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
SPACES = re.compile(r"[ \t\u00a0\u2007]+")


def pdfjs(data: bytes) -> list[str]:
    """Each page's text as pdf.js extracts it (its text items, a line break where it ends one)."""
    _install()
    with _file(data) as path:
        out = subprocess.run(["node", str(NODE_DIR / "pdftext.mjs"), str(path)], check=True,
                             capture_output=True, timeout=120).stdout
    pages: list[str] = json.loads(out)
    return pages


def mutool(data: bytes) -> str:
    with _file(data) as path:
        return subprocess.run(["mutool", "draw", "-q", "-F", "txt", "-o", "-", str(path)],
                              check=True, capture_output=True, timeout=120).stdout.decode()


def pdftotext(data: bytes) -> str:
    with _file(data) as path:
        return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                              capture_output=True, timeout=120).stdout.decode()


def lines(text: str) -> list[str]:
    """The text's lines without bidi formatting characters, runs of spaces as one space."""
    return [SPACES.sub(" ", BIDI_CONTROLS.sub("", line)).strip() for line in text.splitlines()]


def _install() -> None:
    if (NODE_DIR / "node_modules" / "pdfjs-dist").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is missing: run make setup (it installs nodejs and npm)")
    subprocess.run([npm, "ci", "--omit=optional", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                   check=True, capture_output=True, timeout=600)


class _file:  # a context manager, named like open
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.folder = tempfile.TemporaryDirectory(prefix="reader-")

    def __enter__(self) -> Path:
        path = Path(self.folder.name) / "document.pdf"
        path.write_bytes(self.data)
        return path

    def __exit__(self, *exc: object) -> None:
        self.folder.cleanup()
