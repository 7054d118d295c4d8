"""delivery.bundle.verify: a produced bundle verifies (folder, single PDF, .eml); every kind of tampering,
a wrong trust root, a missing or swapped part and a changed manifest are rejected with a reason."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime
from email.message import EmailMessage
from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers

from delivery.artifacts import BundleFile
from delivery.bundle.assemble import BundleFacts, assemble_bundle
from delivery.bundle.ltv import SignaturePolicy
from delivery.bundle.sign import SigningIdentity, _signer, load_identity
from delivery.bundle.verify import FileVerdict, VerifyReport, footer_problem, verify_path
from delivery.errors import InputRefused
from tests.support.pdfs import make_cert, settings_for, tsa_server, unsigned, write_pem

FACTS = BundleFacts(
    campaign_slug="salman-mukaev", campaign_title="Armenia: Save Salman Mukaev's life!",
    dossier_id="SM-20261127-001", trigger="milestone", milestone=1000, signer_count=1234,
    listed_count=1200, last_signer_number=1234, last_signer_signed_on=date(2026, 11, 26),
    template_version="t1", created_at=datetime(2026, 11, 27, 9, 30, tzinfo=UTC))
OTHER = replace(FACTS, dossier_id="SM-20261201-002", signer_count=5012, milestone=5000)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningIdentity, Path]:
    key_path, cert_path = write_pem(tmp_path_factory.mktemp("id"), "s",
                                    *make_cert("Verify Test Campaign"))
    return load_identity(settings_for(key_path, cert_path), now=datetime.now(UTC)), cert_path


@pytest.fixture(scope="module")
def bundle(keys: tuple[SigningIdentity, Path]) -> list[BundleFile]:
    pdfs = [unsigned("dossier-en-1.pdf", part=1, parts=2, pages=2),
            unsigned("dossier-en-2.pdf", part=2, parts=2, pages=1)]
    return assemble_bundle(pdfs, FACTS, keys[0], reason="Petition dossier", location="Yerevan")


@pytest.fixture(scope="module")
def other_bundle(keys: tuple[SigningIdentity, Path]) -> list[BundleFile]:
    pdfs = [unsigned("dossier-en-1.pdf", part=1, parts=2, pages=2, dossier_id=OTHER.dossier_id,
                     signer_count=OTHER.signer_count),
            unsigned("dossier-en-2.pdf", part=2, parts=2, pages=1, dossier_id=OTHER.dossier_id,
                     signer_count=OTHER.signer_count)]
    return assemble_bundle(pdfs, OTHER, keys[0], reason="Petition dossier", location="Yerevan")


@pytest.fixture
def folder(tmp_path: Path, bundle: list[BundleFile]) -> Path:
    out = tmp_path / "bundle"
    out.mkdir()
    for f in bundle:
        (out / f.name).write_bytes(f.data)
    return out


@pytest.fixture
def trust(keys: tuple[SigningIdentity, Path]) -> Path:
    return keys[1]


def _reasons(report: VerifyReport) -> dict[str, str]:
    return {v.name: v.reason for v in report.verdicts if not v.ok}


# ---------------------------------------------------------------- accepted

def test_a_produced_bundle_verifies_with_its_trust_root(folder: Path, trust: Path) -> None:
    report = verify_path(folder, trust=trust)
    assert report.ok, report.lines()
    assert report.trusted and report.signer == "Common Name: Verify Test Campaign"
    assert [v.name for v in report.verdicts] == [
        "manifest.json", "manifest.json.p7s", "dossier-en-1.pdf", "dossier-en-2.pdf"]
    pdf_reason = report.verdicts[2].reason
    assert "SHA-256 matches manifest.json" in pdf_reason
    assert "footer 'SM-20261127-001 · 1,234' on every page" in pdf_reason
    assert report.to_dict()["ok"] is True and report.lines()[-1].startswith("VERIFIED")


def test_pdfsig_reports_each_produced_signature_valid(folder: Path) -> None:
    for pdf in sorted(folder.glob("*.pdf")):
        out = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True, check=False)
        assert "Signature Validation: Signature is Valid." in out.stdout, out.stdout


def test_a_single_pdf_verifies_against_its_embedded_facts(folder: Path, trust: Path) -> None:
    report = verify_path(folder / "dossier-en-2.pdf", trust=trust)
    assert report.ok, report.lines()
    assert [v.name for v in report.verdicts] == ["dossier-en-2.pdf"]


def test_an_eml_and_a_folder_of_emls_verify(tmp_path: Path, bundle: list[BundleFile],
                                            trust: Path) -> None:
    def eml(files: list[BundleFile], name: str) -> Path:
        msg = EmailMessage()
        msg["Subject"] = "Petition dossier"
        msg.set_content("Please find the dossier attached.")
        for f in files:
            maintype, subtype = f.content_type.split("/")
            msg.add_attachment(f.data, maintype=maintype, subtype=subtype, filename=f.name)
        path = tmp_path / name
        path.write_bytes(msg.as_bytes())
        return path

    assert verify_path(eml(bundle, "all.eml"), trust=trust).ok
    (tmp_path / "all.eml").unlink()
    # one e-mail per part, each with the manifest: only together are they complete
    part1 = eml([bundle[0], *bundle[2:]], "part1.eml")
    eml([bundle[1], *bundle[2:]], "part2.eml")
    alone = verify_path(part1, trust=trust)
    assert not alone.ok and _reasons(alone)["dossier-en-2.pdf"] == (
        "listed in manifest.json but missing")
    assert verify_path(tmp_path, trust=trust).ok


def test_a_timestamped_bundle_verifies_and_names_the_time(tmp_path: Path, trust: Path,
                                                           keys: tuple[SigningIdentity, Path]) -> None:
    with tsa_server() as url:
        files = assemble_bundle([unsigned()], FACTS, keys[0], reason="r", location="l",
                                policy=SignaturePolicy("B-T", url))
    for f in files:
        (tmp_path / f.name).write_bytes(f.data)
    report = verify_path(tmp_path, trust=trust)
    assert report.ok, report.lines()
    assert "(timestamp authority untrusted)" in report.verdicts[-1].reason
    assert "signing time 20" in report.verdicts[-1].reason
    assert "UTC, from the timestamp token (timestamp authority untrusted)" in report.verdicts[-1].reason


# ---------------------------------------------------------------- trust

def test_without_trust_a_self_signed_certificate_fails_unless_allowed(folder: Path) -> None:
    report = verify_path(folder)
    assert not report.ok and not report.trusted
    reason = _reasons(report)["dossier-en-1.pdf"]
    assert "is self-signed / untrusted: pass --trust CERT (SHA-256 " in reason
    assert "--allow-untrusted" in reason
    allowed = verify_path(folder, allow_untrusted=True)
    assert allowed.ok and not allowed.trusted
    assert "self-signed / untrusted" in allowed.verdicts[2].reason


def test_a_wrong_trust_root_fails(folder: Path, tmp_path: Path) -> None:
    _, stranger = write_pem(tmp_path / "x", "stranger", *make_cert("Verify Test Campaign"))
    report = verify_path(folder, trust=stranger)
    assert not report.ok and not report.trusted
    assert "is not trusted by --trust stranger-cert.pem" in _reasons(report)["dossier-en-1.pdf"]
    assert "is not trusted by --trust" in _reasons(report)["manifest.json.p7s"]


# ---------------------------------------------------------------- tampering

def test_one_flipped_byte_inside_the_signed_range_fails(folder: Path, trust: Path) -> None:
    path = folder / "dossier-en-1.pdf"
    data = bytearray(path.read_bytes())
    at = data.index(b"stream", 200) + 40  # inside the first page content after the header
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    reason = _reasons(verify_path(folder, trust=trust))["dossier-en-1.pdf"]
    assert "signed bytes were altered (the digest does not match)" in reason
    assert "differs from manifest.json" in reason


def test_bytes_appended_after_the_end_fail(folder: Path, trust: Path) -> None:
    path = folder / "dossier-en-2.pdf"
    path.write_bytes(path.read_bytes() + b"\n% appended after signing\n")
    reason = _reasons(verify_path(path, trust=trust))["dossier-en-2.pdf"]
    assert "does not cover the entire file (26 bytes after the signed range)" in reason
    path.write_bytes(path.read_bytes() + b"x" * 5000)  # pushes %%EOF out of the reader's view
    reason = _reasons(verify_path(path, trust=trust))["dossier-en-2.pdf"]
    assert reason == "not a readable PDF (EOF marker not found)"


def test_an_incremental_edit_adding_an_annotation_fails(folder: Path, trust: Path) -> None:
    path = folder / "dossier-en-1.pdf"
    writer = IncrementalPdfFileWriter(BytesIO(path.read_bytes()))
    page_ref = writer.root["/Pages"]["/Kids"][0]
    annot = writer.add_object(generic.DictionaryObject({  # type: ignore[no-untyped-call]
        generic.NameObject("/Type"): generic.NameObject("/Annot"),
        generic.NameObject("/Subtype"): generic.NameObject("/Text"),
        generic.NameObject("/Rect"): generic.ArrayObject([generic.NumberObject(n) for n in  # type: ignore[no-untyped-call]
                                                         (10, 10, 30, 30)]),
        generic.NameObject("/Contents"): generic.TextStringObject("9,999 signers"),
    }))
    page = page_ref.get_object()
    page[generic.NameObject("/Annots")] = generic.ArrayObject([annot])
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    path.write_bytes(out.getvalue())
    report = verify_path(path, trust=trust)
    reason = _reasons(report)["dossier-en-1.pdf"]
    assert "changed after signing (an incremental update follows the signature)" in reason


def test_a_second_signature_fails(folder: Path, trust: Path,
                                  keys: tuple[SigningIdentity, Path]) -> None:
    path = folder / "dossier-en-1.pdf"
    writer = IncrementalPdfFileWriter(BytesIO(path.read_bytes()))
    meta = signers.PdfSignatureMetadata(field_name="Second", md_algorithm="sha256")

    class Careless(signers.PdfSigner):
        """pyHanko refuses to sign a 'no changes' document; an attacker's tool would not."""

        def _enforce_certification_constraints(self, reader: object) -> None:
            pass

    out = Careless(meta, _signer(keys[0])).sign_pdf(writer)
    path.write_bytes(out.getvalue())
    reason = _reasons(verify_path(path, trust=trust))["dossier-en-1.pdf"]
    assert "carries 2 signatures" in reason
    assert "changed after signing" in reason


# ---------------------------------------------------------------- bundle completeness

def test_a_swapped_part_from_another_bundle_fails(folder: Path, trust: Path,
                                                  other_bundle: list[BundleFile]) -> None:
    (folder / "dossier-en-2.pdf").write_bytes(other_bundle[1].data)
    report = verify_path(folder, trust=trust)
    reasons = _reasons(report)
    assert list(reasons) == ["dossier-en-2.pdf"]
    reason = reasons["dossier-en-2.pdf"]
    assert "size or SHA-256 differs from manifest.json" in reason
    assert "dossier_id 'SM-20261201-002', manifest.json says 'SM-20261127-001'" in reason
    assert "lacks the footer 'SM-20261127-001 · 1,234'" in reason


def test_a_missing_part_fails(folder: Path, trust: Path) -> None:
    (folder / "dossier-en-1.pdf").unlink()
    reasons = _reasons(verify_path(folder, trust=trust))
    assert reasons["dossier-en-1.pdf"] == "listed in manifest.json but missing"
    assert reasons["manifest.json"] == "1 listed file(s) missing"


def test_two_different_files_with_one_name_fail(folder: Path, trust: Path,
                                                other_bundle: list[BundleFile]) -> None:
    msg = EmailMessage()
    msg.add_attachment(other_bundle[0].data, maintype="application", subtype="pdf",
                       filename="dossier-en-1.pdf")
    (folder / "other.eml").write_bytes(msg.as_bytes())
    report = verify_path(folder, trust=trust)
    assert not report.ok
    assert report.verdicts[0] == FileVerdict("dossier-en-1.pdf", False,
                                             "two different files carry this name")


def test_an_unlisted_pdf_fails(folder: Path, trust: Path, other_bundle: list[BundleFile]) -> None:
    (folder / "extra.pdf").write_bytes(other_bundle[0].data)
    assert "not listed in manifest.json" in _reasons(verify_path(folder, trust=trust))["extra.pdf"]


def test_a_manifest_with_a_changed_count_fails_twice(folder: Path, trust: Path) -> None:
    path = folder / "manifest.json"
    doc = json.loads(path.read_bytes())
    doc["signer_count"] = 1235
    path.write_bytes((json.dumps(doc, sort_keys=True, indent=2) + "\n").encode())
    reasons = _reasons(verify_path(folder, trust=trust))
    assert "does not match manifest.json: the manifest was altered after signing" in (
        reasons["manifest.json.p7s"])
    pdf = reasons["dossier-en-1.pdf"]
    assert "page 1 footer says 1,234 signers, the dossier facts say 1,235" in pdf
    assert "embedded dossier.json says signer_count 1234, manifest.json says 1235" in pdf


def test_a_missing_manifest_signature_fails(folder: Path, trust: Path) -> None:
    (folder / "manifest.json.p7s").unlink()
    assert _reasons(verify_path(folder, trust=trust)) == {
        "manifest.json": "not signed: manifest.json.p7s is missing"}


def test_a_malformed_manifest_fails(folder: Path, trust: Path) -> None:
    (folder / "manifest.json").write_text("{}")
    assert _reasons(verify_path(folder, trust=trust))["manifest.json"] == "format is missing"


def test_an_unsigned_pdf_fails(tmp_path: Path) -> None:
    data = assemble_bundle([unsigned()], FACTS, None, reason="r", location="l")[0].data
    (tmp_path / "dossier-en.pdf").write_bytes(data)
    report = verify_path(tmp_path / "dossier-en.pdf", allow_untrusted=True)
    assert _reasons(report) == {"dossier-en.pdf": "not signed"}


def test_footer_problem_names_the_page_and_the_count() -> None:
    pages = ["SM-1 · 1,234", "nothing here"]
    assert footer_problem(pages, "SM-1", 1234) == (
        "page 2 of 2 lacks the footer 'SM-1 · 1,234' (1 pages)")
    assert footer_problem(pages[:1], "SM-1", 1234) is None
    assert footer_problem([], "SM-1", 1) == "has no pages"


# ---------------------------------------------------------------- unusable input

def test_unusable_paths_are_refused(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(InputRefused, match="no such file or folder"):
        verify_path(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputRefused, match=r"give a \.pdf, an \.eml, or a folder"):
        verify_path(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputRefused, match=r"holds no PDF and no manifest\.json"):
        verify_path(tmp_path / "empty")
    with pytest.raises(InputRefused, match="is not a PEM or DER certificate"):
        verify_path(folder, trust=tmp_path / "notes.txt")
    with pytest.raises(InputRefused, match="cannot read the trust certificate"):
        verify_path(folder, trust=tmp_path / "missing.pem")
