"""PDF bytes → the text of each page (poppler's pdftotext, over page ranges on every core).

A million-signer dossier has some 19,000 pages and `verify` reads the footer of each: one
pdftotext reads ~350 pages a second here, so long documents are split into one page range per
core, read at once, and put back together in order. Without poppler, pypdf reads them (slower,
pure Python).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from io import BytesIO

from pypdf import PdfReader

SPLIT_FROM = 400  # pages: below this, one process is quicker than starting several


def page_texts(data: bytes, *, processes: int | None = None) -> list[str]:
    """The text of each page, whitespace runs (NBSP included) folded to one space."""
    if shutil.which("pdftotext") is None:
        pages = [p.extract_text() for p in PdfReader(BytesIO(data)).pages]
    else:
        with tempfile.NamedTemporaryFile(suffix=".pdf") as tmp:
            tmp.write(data)
            tmp.flush()
            count = len(PdfReader(tmp.name).pages)
            pages = _pdftotext(tmp.name, count, processes or os.cpu_count() or 1)
    return [" ".join(p.split()) for p in pages]


def page_ranges(count: int, processes: int) -> list[tuple[int, int]]:
    """First and last page (1-based) of each process's share, in order."""
    shares = max(1, min(processes, count // (SPLIT_FROM // 2))) if count >= SPLIT_FROM else 1
    size = -(-count // shares)
    return [(first, min(count, first + size - 1)) for first in range(1, count + 1, size)]


def _pdftotext(path: str, count: int, processes: int) -> list[str]:
    # Each process writes to a file of its own: through pipes, the later ones would stall on a
    # full pipe until the earlier ones were read.
    with tempfile.TemporaryDirectory(prefix="pagetext-") as folder:
        ranges = page_ranges(count, processes)
        outputs = [os.path.join(folder, f"{first}.txt") for first, _ in ranges]
        running = [subprocess.Popen(  # noqa: S603 (a fixed program and our own files)
            ["pdftotext", "-q", "-enc", "UTF-8", "-f", str(first), "-l", str(last), path,  # noqa: S607
             output], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for (first, last), output in zip(ranges, outputs, strict=True)]
        try:
            failed = 0
            for process in running:
                failed = failed or process.wait(timeout=600)
        finally:
            for process in running:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        if failed:
            raise ValueError(f"pdftotext failed ({failed})")
        pages: list[str] = []
        for output in outputs:
            with open(output, encoding="utf-8", errors="replace", newline="") as text:
                pages += text.read().split("\f")[:-1]
    if len(pages) != count:
        raise ValueError(f"pdftotext read {len(pages)} pages of {count}")
    return pages
