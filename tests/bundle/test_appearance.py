"""The visible signature: on the letter page of part 1 only, naming the signer and the time in the
edition's language, read back by poppler and MuPDF; the PDF stays PDF/A-3b and verifies."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pikepdf
import pytest

from delivery.artifacts import BundleFile
from delivery.bundle.appearance import BOX, Appearance, stamp_text
from delivery.bundle.assemble import assemble_bundle
from delivery.bundle.sign import SigningIdentity, load_identity
from delivery.bundle.verify import verify_path
from delivery.pdf.build import build_dossier_pdfs
from delivery.services.pipeline import signature_appearance
from tests.pdf.test_build import signers
from tests.pdf.test_pdfa import TEMPLATES, assert_pdfa, dossier, facts
from tests.support.pdfs import make_cert, settings_for, write_pem

SIGNER = "Appearance Test Signer"
WORDS = {"en": "Digitally signed by", "hy": "Թվային ստորագրությամբ ստորագրել է՝",
         "ru": "Подписано электронной подписью:"}
PRINT = 4  # annotation flag: printed (PDF/A wants it), and neither hidden nor invisible


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningIdentity, Path]:
    key, cert = write_pem(tmp_path_factory.mktemp("id"), "s", *make_cert(SIGNER))
    return load_identity(settings_for(key, cert), now=datetime.now(UTC)), cert


@pytest.fixture(scope="module")
def bundle(identity: tuple[SigningIdentity, Path],
           tmp_path_factory: pytest.TempPathFactory) -> tuple[list[BundleFile], Path]:
    d = dossier(signers(400))
    languages = ["en", "hy", "ru"]
    pdfs = build_dossier_pdfs(d, TEMPLATES, languages=languages, workers=2, part_budget=150_000)
    files = assemble_bundle(pdfs, facts(d), identity[0], reason="Petition dossier", location="Yerevan",
                            appearances={lang: signature_appearance(TEMPLATES, lang) for lang in languages})
    folder = tmp_path_factory.mktemp("bundle")
    for f in files:
        (folder / f.name).write_bytes(f.data)
    return files, folder


def _widget(pdf: pikepdf.Pdf) -> pikepdf.Object:
    """The signature's widget, which is on the first page."""
    [widget] = [a for p in pdf.pages for a in p.get("/Annots", []) if a.get("/FT") == "/Sig"]
    assert pdf.pages[0].objgen == widget.P.objgen
    return widget


def _fonts(form: pikepdf.Object) -> Iterator[pikepdf.Object]:
    """The fonts an appearance stream and the forms it draws use."""
    resources = form.get("/Resources", pikepdf.Dictionary())
    yield from resources.get("/Font", pikepdf.Dictionary()).values()
    for inner in resources.get("/XObject", pikepdf.Dictionary()).values():
        yield from _fonts(inner)


def _page_text(path: Path, reader: str) -> str:
    command = (["pdftotext", "-f", "1", "-l", "1", "-enc", "UTF-8", str(path), "-"] if reader == "poppler"
               else ["mutool", "draw", "-q", "-F", "txt", "-o", "-", str(path), "1"])
    return " ".join(subprocess.run(command, capture_output=True, text=True, check=True).stdout.split())


@pytest.mark.parametrize("reader", ["poppler", "mupdf"])
def test_the_letter_page_names_the_signer_and_the_time_in_its_language(
        bundle: tuple[list[BundleFile], Path], reader: str) -> None:
    files, folder = bundle
    firsts = [f for f in files if f.kind == "pdf" and f.part == 1]
    assert sorted(f.language for f in firsts) == ["en", "hy", "ru"]
    for f in firsts:
        text = _page_text(folder / f.name, reader)
        assert f"{WORDS[f.language]} {SIGNER}" in text, (f.name, text[-300:])
        stamped = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", text)
        assert stamped is not None, f.name
        when = datetime.strptime(stamped.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert abs(when - datetime.now(UTC)) < timedelta(minutes=10)


def test_only_part_one_shows_it_where_the_margin_has_room(bundle: tuple[list[BundleFile], Path]) -> None:
    files, _ = bundle
    pdfs = [f for f in files if f.kind == "pdf"]
    assert {f.part for f in pdfs} >= {1, 2}, "the dossier should be in several parts"
    for f in pdfs:
        widget = _widget(pdf := pikepdf.open(BytesIO(f.data)))
        rect = [float(v) for v in widget.Rect]
        if f.part == 1:
            assert rect == [float(v) for v in BOX]
            assert int(widget.F) & PRINT and not int(widget.F) & 0b11  # printed, not hidden
            assert "/N" in widget.AP
        else:
            assert rect[2] - rect[0] == 0 and rect[3] - rect[1] == 0  # invisible
        pdf.close()


def test_the_stamp_font_is_embedded_with_widths_in_thousandths(bundle: tuple[list[BundleFile], Path]) -> None:
    files, _ = bundle
    first = next(f for f in files if f.kind == "pdf" and f.part == 1)
    pdf = pikepdf.open(BytesIO(first.data))
    widths: list[float] = []
    fonts = list(_fonts(_widget(pdf).AP.N))
    assert fonts
    for font in fonts:
        descendant = font.DescendantFonts[0]
        assert "/FontFile2" in descendant.FontDescriptor
        for item in descendant.W:
            if isinstance(item, pikepdf.Array):
                widths += [float(w) for w in item]
    # DejaVu Sans's widest glyphs here are about an em: pyHanko's raw units (2,048 per em) would
    # give twice that, and the text would be drawn spaced out
    assert widths and max(widths) < 1100
    pdf.close()


def test_the_signed_parts_stay_pdfa_and_verify(bundle: tuple[list[BundleFile], Path],
                                               identity: tuple[SigningIdentity, Path]) -> None:
    files, folder = bundle
    for f in files:
        if f.kind == "pdf":
            assert_pdfa(f.data)
    report = verify_path(folder, trust=identity[1])
    assert report.ok, report.lines()


def test_the_words_keep_their_placeholder_and_escape_the_rest() -> None:
    text = stamp_text(Appearance("Signed by %(signer)s (100%%)"), "A 50% Campaign")
    assert text == "Signed by A 50%% Campaign (100%%)\n%(ts)s"
    assert text % {"ts": "T"} == "Signed by A 50% Campaign (100%)\nT"


def test_on_a_tagged_page_the_widget_is_a_described_form_element_of_the_tree(
        bundle: tuple[list[BundleFile], Path], tmp_path: Path) -> None:
    # PDF/UA-1 7.18.1 and 7.18.4: an annotation a reader shows is reached from the structure
    # tree (a Form element holding an object reference to it, found from its /StructParent
    # through the parent tree), and a form field is described by /TU
    files, folder = bundle
    tagged = [f for f in files if f.kind == "pdf" and f.part == 1]
    for f in tagged:
        pdf = pikepdf.open(BytesIO(f.data))
        widget = _widget(pdf)
        assert str(widget.TU) == f"{WORDS[f.language]} {SIGNER}"
        tree = pdf.Root.StructTreeRoot
        nums = list(tree.ParentTree.Nums)
        element = dict(zip(map(int, nums[0::2]), nums[1::2], strict=True))[int(widget.StructParent)]
        assert element.S == "/Form" and element.K.Type == "/OBJR"
        assert element.K.Obj.objgen == widget.objgen and element.Pg.objgen == pdf.pages[0].objgen
        assert int(tree.ParentTreeNextKey) > int(widget.StructParent)
        document = element.P
        assert any(kid.objgen == element.objgen for kid in document.K)
        assert document.objgen in {kid.objgen for kid in tree.K}
        pdf.close()
        # poppler reads the element from the tree the signature was added to
        structure = subprocess.run(["pdfinfo", "-struct", str(folder / f.name)],
                                   capture_output=True, text=True, check=True).stdout
        assert "Form" in structure, structure[-500:]
    later = [f for f in files if f.kind == "pdf" and f.part > 1]
    assert later
    for f in later:
        with pikepdf.open(BytesIO(f.data)) as pdf:
            assert "/StructTreeRoot" not in pdf.Root and "/StructParent" not in _widget(pdf)
