"""The front and the stamp come from the cache only when what they show is unchanged: the same
delivery built again reuses them; a changed count, letter, recipient or language renders them
again. Seen from outside: the cached front is replaced by a marker document, which a build then
either shows (reused) or not (rendered anew)."""

from __future__ import annotations

import dataclasses
import io
import shutil
from pathlib import Path

import pikepdf
import pypdf

from delivery.dossier.compose import Dossier
from delivery.pdf.build import build_dossier_pdfs
from tests.pdf.test_build import TEMPLATES, make_dossier, signers

MARKER = "MARKER FRONT FROM THE CACHE"


def _marker_pdf(pages: int) -> bytes:
    """A PDF of `pages` pages whose first shows MARKER."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    for number in range(pages):
        text = f"BT /F1 12 Tf 72 720 Td ({MARKER if number == 0 else 'page'}) Tj ET".encode()
        page = pdf.add_blank_page(page_size=(595, 842))
        page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        page.obj.Contents = pdf.make_stream(text)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _first_page(data: bytes) -> str:
    return pypdf.PdfReader(io.BytesIO(data)).pages[0].extract_text()


def _mark_fronts(cache: Path, before: set[Path]) -> int:
    """Replace every cached front (not the stamps: a front has the letter's page) by the marker
    → how many were replaced."""
    replaced = 0
    for path in set((cache / "fronts").glob("*.pdf")) - before:
        reader = pypdf.PdfReader(path)
        if "Dear Prime Minister" in reader.pages[0].extract_text():
            path.write_bytes(_marker_pdf(len(reader.pages)))
            replaced += 1
    return replaced


def _build(dossier: Dossier, cache: Path, languages: list[str] | None = None) -> bytes:
    [pdf] = build_dossier_pdfs(dossier, TEMPLATES, languages=languages or ["en"], workers=1,
                               cache_dir=cache)
    return pdf.data


def test_the_same_delivery_built_again_reuses_its_front(tmp_path: Path) -> None:
    dossier = make_dossier(signers(30), volume_size=50)
    cache = tmp_path / "cache"
    cache.mkdir()
    first = _build(dossier, cache)
    assert MARKER not in _first_page(first)
    assert _mark_fronts(cache, set()) == 1
    assert MARKER in _first_page(_build(dossier, cache))  # nothing it shows changed: reused


def test_a_change_in_what_the_front_shows_renders_it_again(tmp_path: Path) -> None:
    dossier = make_dossier(signers(30), volume_size=50)
    first = dossier.addressees[0]
    retitled = dataclasses.replace(first, translations=tuple(
        (lang, dataclasses.replace(text, title="Acting Prime Minister"))
        for lang, text in first.translations))
    edited = tmp_path / "templates"
    shutil.copytree(TEMPLATES, edited)
    letter = edited / "letters" / "salman-mukaev" / "en.html.j2"
    letter.write_text(letter.read_text(encoding="utf-8") + "<p>One more paragraph.</p>\n", encoding="utf-8")
    changed = {  # what changed → (dossier, templates, language)
        "count": (make_dossier(signers(31), volume_size=50), TEMPLATES, "en"),
        "letter": (dossier, edited, "en"),
        "recipient": (dataclasses.replace(dossier, addressees=(retitled, *dossier.addressees[1:])),
                      TEMPLATES, "en"),
        "language": (dossier, TEMPLATES, "hy"),
    }
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    _build(dossier, pristine)
    assert _mark_fronts(pristine, set()) == 1
    for what, (other, templates, language) in changed.items():
        cache = tmp_path / what
        shutil.copytree(pristine, cache)
        [pdf] = build_dossier_pdfs(other, templates, languages=[language], workers=1, cache_dir=cache)
        assert MARKER not in _first_page(pdf.data), what
    unchanged = tmp_path / "unchanged"
    shutil.copytree(pristine, unchanged)
    assert MARKER in _first_page(_build(dossier, unchanged))  # the control: the marker is seen
