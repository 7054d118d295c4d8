"""delivery.bundle.assemble's `workers`: editions signed at once, in threads, make the bundle that
signing them one after the other makes, at B-B, B-T and B-LTA: the same files in the same order,
accepted by the project's verify and by pyHanko's validator alike, the same manifest but for the
signed files' sizes and hashes, the same dossier.json in each PDF and the same signature texts.
By default two are signed at once; a failure is raised as the loop raises it, and once one PDF
has failed no other starts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_detached_cms, validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from delivery.artifacts import BundleFile, UnsignedPdf
from delivery.bundle import assemble
from delivery.bundle.appearance import Appearance
from delivery.bundle.assemble import (
    SIGNING_THREADS,
    BundleFacts,
    assemble_bundle,
    in_order,
    read_embedded_dossier,
    read_manifest,
)
from delivery.bundle.ltv import SignaturePolicy, signature_policy
from delivery.bundle.sign import SigningIdentity, load_identity, sign_pdf
from delivery.bundle.verify import VerifyReport, verify_path
from delivery.campaigns.config import parse_campaign
from delivery.errors import RenderError
from delivery.services.pipeline import signature_appearance, signature_text
from tests.support.pdfs import make_cert, settings_for, tsa_server, unsigned, write_pem
from tests.support.pki import Pki, running_pki

REPO = Path(__file__).resolve().parents[2]
FACTS = BundleFacts(
    campaign_slug="salman-mukaev", campaign_title="Armenia: Save Salman Mukaev's life!",
    dossier_id="SM-20261127-001", trigger="milestone", milestone=1000, signer_count=1234,
    listed_count=1200, last_signer_number=1234, last_signer_signed_on=date(2026, 11, 26),
    template_version="t-parallel", created_at=datetime(2026, 11, 27, 9, 30, tzinfo=UTC))
LANGUAGES = ("en", "hy")


@dataclass(frozen=True)
class Signing:
    """An identity, the level it signs at, and what trusts it: verify's root, pyHanko's roots."""

    identity: SigningIdentity
    policy: SignaturePolicy
    trust: Path
    roots: list[Any]


def _editions() -> list[UnsignedPdf]:
    """Two editions in two parts each, as a large dossier comes: more PDFs than threads."""
    return [unsigned("dossier-en-1.pdf", language="en", part=1, parts=2, pages=2),
            unsigned("dossier-en-2.pdf", language="en", part=2, parts=2, pages=1),
            unsigned("dossier-hy-1.pdf", language="hy", part=1, parts=2, pages=3),
            unsigned("dossier-hy-2.pdf", language="hy", part=2, parts=2, pages=1)]


def _texts() -> tuple[dict[str, tuple[str, str]], dict[str, Appearance]]:
    """Each language's signature reason and place and its visible signature, as the service has them."""
    campaign = parse_campaign((REPO / "schedules" / "salman-mukaev.toml").read_text(), "x")
    templates = REPO / "templates"
    return ({lang: signature_text(templates, campaign, lang) for lang in LANGUAGES},
            {lang: signature_appearance(templates, lang) for lang in LANGUAGES})


def _bundle(signing: Signing, workers: int, pdfs: list[UnsignedPdf] | None = None) -> list[BundleFile]:
    texts, appearances = _texts()
    return assemble_bundle(pdfs or _editions(), FACTS, signing.identity, reason="fallback",
                           location="fallback", policy=signing.policy, signature_texts=texts,
                           appearances=appearances, workers=workers)


def _roots(path: Path) -> list[Any]:
    return list(load_certs_from_pemder_data(path.read_bytes()))


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningIdentity, Path]:
    key, cert = write_pem(tmp_path_factory.mktemp("id"), "s", *make_cert("Parallel Test Signer"))
    return load_identity(settings_for(key, cert), now=datetime.now(UTC)), cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    with running_pki(tmp_path_factory.mktemp("pki")) as running:
        yield running


@pytest.fixture(scope="module", params=["B-B", "B-T", "B-LTA"])
def signing(request: pytest.FixtureRequest,
            self_signed: tuple[SigningIdentity, Path]) -> Iterator[Signing]:
    identity, cert = self_signed
    if request.param == "B-B":
        yield Signing(identity, SignaturePolicy(), cert, _roots(cert))
    elif request.param == "B-T":
        with tsa_server() as url:
            yield Signing(identity, SignaturePolicy("B-T", url), cert, _roots(cert))
    else:
        test_pki: Pki = request.getfixturevalue("pki")
        settings = replace(settings_for(*test_pki.signing_files()), signature_level="B-LTA",
                           timestamp_url=test_pki.tsa_url, trust_roots=test_pki.root_pem)
        yield Signing(load_identity(settings, now=datetime.now(UTC)), signature_policy(settings),
                      test_pki.root_pem, _roots(test_pki.root_pem))


@pytest.fixture(scope="module")
def bundles(signing: Signing) -> tuple[list[BundleFile], list[BundleFile]]:
    """(one after the other, two at once) of the same editions."""
    return _bundle(signing, workers=1), _bundle(signing, workers=2)


def _verified(files: list[BundleFile], folder: Path, trust: Path) -> VerifyReport:
    folder.mkdir()
    for f in files:
        (folder / f.name).write_bytes(f.data)
    return verify_path(folder, trust=trust)


def test_the_same_files_come_in_the_same_order(
        bundles: tuple[list[BundleFile], list[BundleFile]]) -> None:
    sequential, parallel = bundles
    shape = [(f.name, f.kind, f.language, f.part, f.pages) for f in sequential]
    assert shape == [(f.name, f.kind, f.language, f.part, f.pages) for f in parallel]
    assert [name for name, *_ in shape] == [
        "dossier-en-1.pdf", "dossier-en-2.pdf", "dossier-hy-1.pdf", "dossier-hy-2.pdf",
        "manifest.json", "manifest.json.p7s"]


def test_both_bundles_verify_with_the_projects_verify_at_the_level_signed(
        bundles: tuple[list[BundleFile], list[BundleFile]], signing: Signing,
        tmp_path: Path) -> None:
    reports = [_verified(files, tmp_path / label, signing.trust)
               for label, files in zip(("sequential", "parallel"), bundles, strict=True)]
    for report in reports:
        assert report.ok and report.trusted, report.lines()
        assert report.level == signing.policy.level
    sequential, parallel = reports
    assert sequential.signer == parallel.signer
    assert signing.identity.display_name in (sequential.signer or "")
    assert ([(v.name, v.level, v.time_source) for v in sequential.verdicts]
            == [(v.name, v.level, v.time_source) for v in parallel.verdicts])


def _pdf_status(data: bytes, roots: list[Any]) -> tuple[object, ...]:
    """What pyHanko's validator says of a PDF's one signature, trusting `roots` only and
    fetching nothing."""
    reader = PdfFileReader(BytesIO(data))
    [sig] = reader.embedded_regular_signatures
    context = ValidationContext(trust_roots=roots, allow_fetching=False)
    status = validate_pdf_signature(sig, signer_validation_context=context,
                                    ts_validation_context=context)
    stamp = status.timestamp_validity
    return (status.intact, status.valid, status.trusted, status.docmdp_ok,
            status.modification_level, status.md_algorithm, status.signing_cert.subject.native,
            None if stamp is None else (stamp.intact, stamp.valid),
            len(reader.embedded_timestamp_signatures))


def _manifest_status(files: list[BundleFile], roots: list[Any]) -> tuple[bool, bool, bool]:
    manifest, p7s = files[-2].data, files[-1].data
    signed_data = cms.ContentInfo.load(p7s)["content"]
    status = asyncio.run(async_validate_detached_cms(
        manifest, signed_data, signer_validation_context=ValidationContext(
            trust_roots=roots, allow_fetching=False)))
    return status.intact, status.valid, status.trusted


def test_both_bundles_validate_alike_in_pyhanko(
        bundles: tuple[list[BundleFile], list[BundleFile]], signing: Signing) -> None:
    sequential, parallel = bundles
    seen = [[_pdf_status(f.data, signing.roots) for f in files if f.kind == "pdf"]
            for files in bundles]
    assert seen[0] == seen[1]
    for intact, valid, trusted, docmdp_ok, *_, stamp, doc_stamps in seen[0]:
        assert intact and valid and trusted and docmdp_ok
        assert (stamp is not None) == signing.policy.timestamped
        assert stamp in (None, (True, True))
        assert doc_stamps == (1 if signing.policy.archival else 0)
    assert _manifest_status(sequential, signing.roots) == (True, True, True)
    assert _manifest_status(parallel, signing.roots) == (True, True, True)


def test_the_manifests_differ_only_in_the_signed_files_sizes_and_hashes(
        bundles: tuple[list[BundleFile], list[BundleFile]]) -> None:
    manifests = [read_manifest(files[-2].data) for files in bundles]
    for doc, files in zip(manifests, bundles, strict=True):
        listed = doc["files"]
        assert isinstance(listed, list)
        assert [(e["size"], e["sha256"]) for e in listed] == [
            (len(f.data), hashlib.sha256(f.data).hexdigest()) for f in files if f.kind == "pdf"]
        for entry in listed:
            del entry["size"], entry["sha256"]
    assert manifests[0] == manifests[1]
    assert (manifests[0]["signer_count"], manifests[0]["listed_count"]) == (1234, 1200)


def test_each_pdf_carries_the_same_dossier_json_and_signature_texts(
        bundles: tuple[list[BundleFile], list[BundleFile]]) -> None:
    def carried(f: BundleFile) -> tuple[object, ...]:
        [sig] = PdfFileReader(BytesIO(f.data)).embedded_regular_signatures
        visible = [float(v) for v in sig.sig_field["/Rect"]] != [0.0] * 4
        return (json.dumps(read_embedded_dossier(f.data), sort_keys=True),
                str(sig.sig_object["/Reason"]), str(sig.sig_object["/Location"]), visible)

    sequential, parallel = ([carried(f) for f in files if f.kind == "pdf"] for files in bundles)
    assert sequential == parallel
    texts, _ = _texts()
    assert [(reason, location, visible) for _, reason, location, visible in sequential] == [
        (*texts["en"], True), (*texts["en"], False), (*texts["hy"], True), (*texts["hy"], False)]


# ---------------------------------------------------------------- how many at once, and failures

def test_by_default_two_pdfs_are_signed_at_once(self_signed: tuple[SigningIdentity, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert SIGNING_THREADS == 2
    both = threading.Barrier(2, timeout=30)  # broken, failing the signature, unless two meet
    calls = []

    def meeting(*args: Any, **kwargs: Any) -> bytes:
        calls.append(threading.current_thread().name)
        if len(calls) <= 2:
            both.wait()
        return sign_pdf(*args, **kwargs)

    monkeypatch.setattr(assemble, "sign_pdf", meeting)
    files = assemble_bundle(_editions(), FACTS, self_signed[0], reason="r", location="l")
    assert len(calls) == 4 and all(name.startswith("sign") for name in calls)
    assert len(set(calls)) == 2
    assert [f.name for f in files[:4]] == [p.name for p in _editions()]


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_a_failing_pdf_fails_the_bundle_as_one_after_the_other_does(
        self_signed: tuple[SigningIdentity, Path], workers: int) -> None:
    pdfs = _editions()
    pdfs[1] = replace(pdfs[1], pages=7)  # the renderer's count disagrees with the file's
    pdfs[3] = replace(pdfs[3], pages=9)
    signing = Signing(self_signed[0], SignaturePolicy(), self_signed[1], [])
    with pytest.raises(RenderError, match=r"^the PDF has 1 pages, the renderer said 7$"):
        _bundle(signing, workers, pdfs)


def _file(pdf: UnsignedPdf) -> BundleFile:
    return BundleFile(name=pdf.name, kind="pdf", language=pdf.language, part=pdf.part,
                      pages=pdf.pages, data=b"signed " + pdf.name.encode())


def test_after_a_failure_no_other_pdf_starts_and_the_first_in_order_is_raised() -> None:
    pdfs = _editions()
    started: list[str] = []
    failed = threading.Event()

    def work(pdf: UnsignedPdf) -> BundleFile:
        started.append(pdf.name)
        if pdf is pdfs[1]:
            failed.set()
            raise RenderError("part 2 failed")
        assert failed.wait(10)
        time.sleep(0.05)  # a moment for the pool to start another, were it fed ahead
        return _file(pdf)

    with pytest.raises(RenderError, match="part 2 failed"):
        in_order(work, pdfs, 2)
    assert started == ["dossier-en-1.pdf", "dossier-en-2.pdf"]

    def both_fail(pdf: UnsignedPdf) -> BundleFile:
        if pdf is pdfs[1]:
            failed.set()
            raise RenderError("part 2 failed first")
        if pdf is pdfs[0]:
            assert failed.wait(10)
            raise RenderError("part 1 failed later")
        return _file(pdf)

    failed.clear()
    with pytest.raises(RenderError, match="part 1 failed later"):
        in_order(both_fail, pdfs, 2)


def test_results_come_in_the_order_of_the_pdfs_whichever_finishes_first() -> None:
    pdfs = _editions()

    def slower_first(pdf: UnsignedPdf) -> BundleFile:
        time.sleep(0.02 * (len(pdfs) - pdfs.index(pdf)))
        return _file(pdf)

    assert in_order(slower_first, pdfs, 3) == [_file(p) for p in pdfs]
