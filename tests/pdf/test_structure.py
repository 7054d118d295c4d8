"""The letter and summary are tagged (WeasyPrint's structure tree, carried through the join):
poppler reads headings, paragraphs and table cells from it, every element points at a page of
the part itself, and the part says it is tagged."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pikepdf
import pytest

from delivery.artifacts import UnsignedPdf
from delivery.pdf.build import build_dossier_pdfs
from tests.pdf.test_build import signers
from tests.pdf.test_pdfa import TEMPLATES, dossier


@pytest.fixture(scope="module")
def parts() -> list[UnsignedPdf]:
    return build_dossier_pdfs(dossier(signers(400)), TEMPLATES, languages=["en"], workers=2,
                              part_budget=150_000)


def _structure(pdf: UnsignedPdf, tmp_path: Path) -> str:
    path = tmp_path / pdf.name
    path.write_bytes(pdf.data)
    return subprocess.run(["pdfinfo", "-struct-text", str(path)], capture_output=True, text=True,
                          check=True).stdout


def _elements(node: pikepdf.Object) -> list[pikepdf.Dictionary]:
    found: list[pikepdf.Dictionary] = []
    kids = node.get("/K")
    for kid in (kids if isinstance(kids, pikepdf.Array) else [kids]):
        if isinstance(kid, pikepdf.Dictionary) and "/S" in kid:
            found += [kid, *_elements(kid)]
    return found


def test_the_letter_and_summary_are_read_from_their_structure(parts: list[UnsignedPdf],
                                                              tmp_path: Path) -> None:
    tree = _structure(parts[0], tmp_path)
    lines = [line.strip() for line in tree.splitlines()]
    texts = [re.sub(r'^"|"$', "", line) for line in lines]

    def under(text: str) -> str:
        """The nearest block element above the line that holds `text`."""
        index = next(i for i, t in enumerate(texts) if text in t)
        return next(lines[i].split()[0] for i in range(index, -1, -1)
                    if lines[i].split()[0] in {"P", "H1", "H2", "TD", "TH"})

    assert under("Dear Prime Minister") == "P"
    assert under("Summary") == "H1"
    assert under("Signers by country") == "H2"
    assert sum(line.startswith("TD") for line in lines) >= 10
    assert any(line.startswith("TH") for line in lines)


def test_the_tree_points_at_the_parts_own_pages(parts: list[UnsignedPdf]) -> None:
    pdf = pikepdf.open(io.BytesIO(parts[0].data))
    assert bool(pdf.Root.MarkInfo.Marked)
    elements = _elements(pdf.Root.StructTreeRoot)
    pages = {page.objgen for page in pdf.pages}
    placed = [e.Pg.objgen for e in elements if "/Pg" in e]
    assert len(placed) > 50 and set(placed) <= pages
    assert {e.Pg.objgen for e in elements if "/Pg" in e} == {p.objgen for p in pdf.pages[:2]}


def test_a_part_without_the_front_claims_no_structure(parts: list[UnsignedPdf]) -> None:
    assert len(parts) > 1
    later = pikepdf.open(io.BytesIO(parts[1].data))
    assert "/StructTreeRoot" not in later.Root and "/MarkInfo" not in later.Root
