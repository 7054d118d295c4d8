"""delivery.bundle.assemble: PDFs get dossier.json embedded (deterministically) and are signed; manifest.json
lists the signed files with sizes, hashes and pages; manifest.json.p7s signs the manifest."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from asn1crypto import cms
from pyhanko.pdf_utils.reader import PdfFileReader

from delivery.artifacts import BundleFile, UnsignedPdf
from delivery.bundle.assemble import (
    BundleFacts,
    assemble_bundle,
    embed_dossier_json,
    read_embedded_dossier,
    read_manifest,
)
from delivery.bundle.sign import SigningIdentity, load_identity
from delivery.campaigns.config import parse_campaign
from delivery.errors import InputRefused, RenderError
from delivery.services.pipeline import signature_text
from tests.support.pdfs import make_cert, settings_for, unsigned, write_pem

REPO = Path(__file__).resolve().parents[2]
CREATED = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
FACTS = BundleFacts(
    campaign_slug="salman-mukaev", campaign_title="Armenia: Save Salman Mukaev's life!",
    dossier_id="SM-20261127-001", trigger="milestone", milestone=1000, signer_count=1234,
    listed_count=1200, last_signer_number=1234, last_signer_signed_on=date(2026, 11, 26),
    template_version="t-abc123", created_at=CREATED)


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    paths = write_pem(tmp_path_factory.mktemp("id"), "s", *make_cert("Bundle Test Signer"))
    return load_identity(settings_for(*paths), now=datetime.now(UTC))


def _pdfs() -> list[UnsignedPdf]:
    return [unsigned("dossier-en.pdf", language="en"),
            unsigned("dossier-hy.pdf", language="hy", pages=3)]


@pytest.fixture(scope="module")
def signed_bundle(identity: SigningIdentity) -> list[BundleFile]:
    return assemble_bundle(_pdfs(), FACTS, identity, reason="Petition dossier", location="Yerevan")


def test_bundle_has_signed_pdfs_manifest_and_its_signature(signed_bundle: list[BundleFile]) -> None:
    assert [(f.name, f.kind, f.language, f.part, f.pages) for f in signed_bundle] == [
        ("dossier-en.pdf", "pdf", "en", 1, 2), ("dossier-hy.pdf", "pdf", "hy", 1, 3),
        ("manifest.json", "manifest", "", 0, None),
        ("manifest.json.p7s", "manifest-signature", "", 0, None)]
    for f in signed_bundle[:2]:
        sigs = PdfFileReader(BytesIO(f.data)).embedded_signatures
        assert len(sigs) == 1 and sigs[0].sig_object["/Reason"] == "Petition dossier"
    info = cms.ContentInfo.load(signed_bundle[3].data)
    assert info["content_type"].native == "signed_data"


def test_each_editions_signature_gives_its_reason_and_place_in_its_language(
        identity: SigningIdentity) -> None:
    campaign = parse_campaign((REPO / "schedules" / "salman-mukaev.toml").read_text(), "x")
    texts = {lang: signature_text(REPO / "templates", campaign, lang) for lang in ("en", "hy")}
    assert texts == {"en": ("Petition dossier: Armenia: Save Salman Mukaev's life!", "Yerevan"),
                     "hy": ("Խնդրագրի փաթեթ. «Հայաստան, փրկե՛ք Սալման Մուկաևի կյանքը»", "Երևան")}
    files = assemble_bundle(_pdfs(), FACTS, identity, reason="fallback", location="fallback",
                            signature_texts={"hy": texts["hy"]})
    shown = {}
    for f in files[:2]:
        [sig] = PdfFileReader(BytesIO(f.data)).embedded_signatures
        shown[f.language] = (str(sig.sig_object["/Reason"]), str(sig.sig_object["/Location"]))
    assert shown == {"en": ("fallback", "fallback"), "hy": texts["hy"]}


def test_manifest_lists_the_final_files_and_the_facts(signed_bundle: list[BundleFile],
                                                      identity: SigningIdentity) -> None:
    raw = signed_bundle[2].data
    doc = json.loads(raw)
    assert raw == (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
    assert doc["campaign"] == {"slug": "salman-mukaev", "title": "Armenia: Save Salman Mukaev's life!"}
    assert (doc["dossier_id"], doc["trigger"], doc["milestone"]) == ("SM-20261127-001", "milestone", 1000)
    assert (doc["signer_count"], doc["listed_count"]) == (1234, 1200)
    # privacy: the last signer by number and date only
    assert doc["last_signer"] == {"number": 1234, "signed_on": "2026-11-26"}
    assert doc["template_version"] == "t-abc123"
    assert doc["created_at"] == "2026-11-27T09:30:00+00:00"
    assert doc["signed_by"] == {"subject": identity.subject, "sha256": identity.fingerprint}
    for entry, f in zip(doc["files"], signed_bundle[:2], strict=True):
        assert entry == {"name": f.name, "language": f.language, "part": 1, "parts": 1,
                         "pages": f.pages, "size": len(f.data),
                         "sha256": hashlib.sha256(f.data).hexdigest()}
    assert read_manifest(raw) == doc


def test_each_pdf_embeds_its_own_dossier_json_without_hashes(signed_bundle: list[BundleFile]) -> None:
    manifest = json.loads(signed_bundle[2].data)
    for f in signed_bundle[:2]:
        embedded = read_embedded_dossier(f.data)
        assert embedded is not None
        assert embedded["file"] == {"name": f.name, "language": f.language, "part": 1, "parts": 1,
                                    "pages": f.pages}
        assert "files" not in embedded and "sha256" not in json.dumps(embedded["file"])
        shared = {k: v for k, v in manifest.items() if k not in ("files", "format")}
        assert {k: embedded[k] for k in shared} == shared
        with pikepdf.open(BytesIO(f.data)) as pdf:  # listed as associated data (PDF/A-3 /AF)
            assert pdf.Root.AF[0].AFRelationship == pikepdf.Name.Data


def test_embedding_is_deterministic_and_an_unsigned_bundle_is_reproducible() -> None:
    pdf = unsigned()
    once = embed_dossier_json(pdf.data, b"{}", created_at=CREATED, pages=2)
    assert once == embed_dossier_json(pdf.data, b"{}", created_at=CREATED, pages=2)
    a = assemble_bundle(_pdfs(), FACTS, None, reason="r", location="l")
    b = assemble_bundle(_pdfs(), FACTS, None, reason="r", location="l")
    assert [f.name for f in a] == ["dossier-en.pdf", "dossier-hy.pdf", "manifest.json"]
    assert [f.data for f in a] == [f.data for f in b]
    assert json.loads(a[2].data)["signed_by"] is None
    assert not PdfFileReader(BytesIO(a[0].data)).embedded_signatures


def test_page_count_mismatch_is_refused() -> None:
    wrong = replace(unsigned(), pages=5)
    with pytest.raises(RenderError, match="has 2 pages, the renderer said 5"):
        assemble_bundle([wrong], FACTS, None, reason="r", location="l")


@pytest.mark.parametrize("names", [["a.pdf", "a.pdf"], ["../a.pdf"], ["manifest.json"], []])
def test_bad_file_names_are_refused(names: list[str]) -> None:
    with pytest.raises(RenderError):
        assemble_bundle([replace(unsigned(), name=n) for n in names], FACTS, None,
                        reason="r", location="l")


def test_unreadable_pdf_is_refused() -> None:
    with pytest.raises(RenderError, match=r"cannot embed dossier\.json"):
        embed_dossier_json(b"not a pdf", b"{}", created_at=CREATED, pages=1)


def _manifest() -> dict[str, Any]:
    data = assemble_bundle([unsigned()], FACTS, None, reason="r", location="l")[-1].data
    doc: dict[str, Any] = json.loads(data)
    return doc


@pytest.mark.parametrize(("mutate", "problem"), [
    (lambda d: d.pop("signer_count"), "signer_count is missing"),
    (lambda d: d.update(signer_count="1234"), "signer_count has the wrong type"),
    (lambda d: d.update(signer_count=True), "signer_count has the wrong type"),
    (lambda d: d.update(format="other"), "format is 'other'"),
    (lambda d: d.update(format_version=2), "format_version 2 is not supported"),
    (lambda d: d["files"][0].update(sha256="xyz"), "files[0].sha256 is not a SHA-256"),
    (lambda d: d["files"][0].pop("pages"), "files[0].pages is missing"),
    (lambda d: d["files"][0].update(name="../evil.pdf"), "not a unique plain name"),
    (lambda d: d.update(files=[]), "lists no files"),
    (lambda d: d["last_signer"].update(number=None), "last_signer.number has the wrong type"),
])
def test_read_manifest_refuses_a_wrong_shape(mutate: Callable[[dict[str, Any]], object],
                                             problem: str) -> None:
    doc = _manifest()
    mutate(doc)
    with pytest.raises(InputRefused, match=re.escape(problem)):
        read_manifest(json.dumps(doc).encode())


def test_read_manifest_refuses_non_json(tmp_path: Path) -> None:
    with pytest.raises(InputRefused, match="not valid UTF-8 JSON"):
        read_manifest(b"\xff{")
    with pytest.raises(InputRefused, match="document is not an object"):
        read_manifest(b"[1, 2]")


def test_dossier_json_is_appended_to_the_pdf_not_written_anew() -> None:
    pdf = unsigned()
    once = embed_dossier_json(pdf.data, b'{"a": 1}', created_at=CREATED, pages=2)
    assert once.startswith(pdf.data) and once.count(b"%%EOF") == pdf.data.count(b"%%EOF") + 1
    assert read_embedded_dossier(once) == {"a": 1}
    with pikepdf.open(BytesIO(once)) as reread:
        assert reread.check_pdf_syntax() == [] and not reread.get_warnings()
        assert reread.Root.AF[0].EF.F.Subtype == pikepdf.Name("/application/json")
    # a PDF that names attachments already is saved anew, with this one in its place
    twice = embed_dossier_json(once, b'{"b": 2}', created_at=CREATED, pages=2)
    assert not twice.startswith(once) and read_embedded_dossier(twice) == {"b": 2}
