"""delivery.bundle.verify on what a recipient must never accept, or must survive: a preview → FAIL
however it comes (alone, in a folder without its manifest, with it); hostile manifest.json,
embedded dossier.json, PDF and .eml bytes → a FAIL line each, exit 1, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from delivery.artifacts import BundleFile
from delivery.bundle.assemble import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    BundleFacts,
    assemble_bundle,
    dossier_json,
    embed_dossier_json,
)
from delivery.bundle.sign import SigningIdentity, load_identity, sign_pdf
from delivery.bundle.verify import MAX_FILE_BYTES, MAX_FILES, PREVIEW_PROBLEM, VerifyReport, verify_path
from delivery.cli.main import main
from delivery.errors import InputRefused
from delivery.services.preview import preview
from delivery.services.signers import add_signer
from tests.support.campaigns import campaign_file
from tests.support.pdfs import make_cert, settings_for, unsigned, write_pem

Keys = tuple[SigningIdentity, Path]
FACTS = BundleFacts(
    campaign_slug="salman-mukaev", campaign_title="Armenia: Save Salman Mukaev's life!",
    dossier_id="SM-20261127-001", trigger="milestone", milestone=1000, signer_count=1234,
    listed_count=1200, last_signer_number=1234, last_signer_signed_on=date(2026, 11, 26),
    template_version="t1", created_at=datetime(2026, 11, 27, 9, 30, tzinfo=UTC))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    key_path, cert_path = write_pem(tmp_path_factory.mktemp("id"), "s", *make_cert("Hostile Test"))
    return load_identity(settings_for(key_path, cert_path), now=datetime.now(UTC)), cert_path


@pytest.fixture(scope="module")
def bundle(keys: Keys) -> list[BundleFile]:
    pdfs = [unsigned("dossier-en-1.pdf", part=1, parts=2, pages=2),
            unsigned("dossier-en-2.pdf", part=2, parts=2, pages=1)]
    return assemble_bundle(pdfs, FACTS, keys[0], reason="Petition dossier", location="Yerevan")


@pytest.fixture
def folder(tmp_path: Path, bundle: list[BundleFile]) -> Path:
    return write_files(tmp_path / "bundle", bundle)


def write_files(folder: Path, files: list[BundleFile]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f.name).write_bytes(f.data)
    return folder


def fails(report: VerifyReport) -> dict[str, str]:
    return {v.name: v.reason for v in report.verdicts if not v.ok}


def signed_pdf(keys: Keys, payload: bytes, *, base: bytes | None = None) -> bytes:
    """A signed test PDF whose embedded dossier.json is `payload`, exactly as assemble embeds it."""
    pdf = unsigned()
    data = embed_dossier_json(base or pdf.data, payload, created_at=FACTS.created_at, pages=pdf.pages)
    return sign_pdf(data, keys[0], reason="Petition dossier", location="Yerevan")


def facts_json(keys: Keys, **changes: Any) -> bytes:
    doc = json.loads(dossier_json(FACTS, unsigned(), keys[0])) | changes
    return json.dumps(doc).encode()


# ---------------------------------------------------------------- previews

@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # verify reads no database
def test_a_preview_is_refused_alone_in_a_folder_without_its_manifest_and_with_it(
        make_app: Callable[..., Any], signing_files: tuple[Path, Path], tmp_path: Path) -> None:
    app = make_app(campaign_toml=campaign_file(
        slug="small", title="Small test petition", goal=50, signing="required", hold="2h",
        thresholds="[5, 10]", check_every="1m"))
    campaign = app.campaign(None)
    now = datetime.now(UTC)
    for i, name in enumerate(["Anna Hakobyan", "Иван Петров", "Նարե Սարգսյան"]):
        add_signer(app, campaign, {"name": name, "email": f"s{i}@example.net", "city": "Yerevan",
                                   "country": "AM", "signed_at": now - timedelta(hours=1)},
                   now=now, actor="test")
    folder = Path(preview(app, campaign, out_dir=tmp_path / "preview", now=now).folder)
    trust = signing_files[1]
    pdfs = sorted(folder.glob("*.pdf"))
    assert len(pdfs) == 2  # the English and the Armenian edition

    whole = fails(verify_path(folder, trust=trust))
    assert whole == {MANIFEST_NAME: PREVIEW_PROBLEM} | {p.name: PREVIEW_PROBLEM for p in pdfs}
    for pdf in pdfs:  # every other check holds: only being a preview fails it
        assert fails(verify_path(pdf, trust=trust)) == {pdf.name: PREVIEW_PROBLEM}
    (folder / MANIFEST_NAME).unlink()
    (folder / SIGNATURE_NAME).unlink()
    alone = verify_path(folder, trust=trust)
    assert not alone.ok and fails(alone) == {p.name: PREVIEW_PROBLEM for p in pdfs}
    assert main(["verify", "--trust", str(trust), str(pdfs[0])]) == 1


def test_a_preview_dossier_id_alone_marks_a_preview(tmp_path: Path, keys: Keys) -> None:
    facts = replace(FACTS, dossier_id="PREVIEW-" + FACTS.dossier_id, trigger="manual")
    pdf = unsigned(dossier_id=facts.dossier_id)
    folder = write_files(tmp_path, assemble_bundle([pdf], facts, keys[0], reason="r", location="l"))
    assert fails(verify_path(folder / pdf.name, trust=keys[1])) == {pdf.name: PREVIEW_PROBLEM}
    assert fails(verify_path(folder, trust=keys[1])) == {MANIFEST_NAME: PREVIEW_PROBLEM,
                                                          pdf.name: PREVIEW_PROBLEM}


def test_a_pdf_whose_facts_say_preview_fails_beside_a_delivered_manifest(
        folder: Path, keys: Keys) -> None:
    part = unsigned("dossier-en-2.pdf", part=2, parts=2, pages=1)
    payload = json.loads(dossier_json(FACTS, part, keys[0])) | {"trigger": "preview"}
    data = embed_dossier_json(part.data, json.dumps(payload).encode(), created_at=FACTS.created_at,
                              pages=1)
    (folder / "dossier-en-2.pdf").write_bytes(sign_pdf(data, keys[0], reason="r", location="l"))
    reason = fails(verify_path(folder, trust=keys[1]))["dossier-en-2.pdf"]
    assert PREVIEW_PROBLEM in reason
    assert "embedded dossier.json says trigger 'preview', manifest.json says 'milestone'" in reason


# ---------------------------------------------------------------- hostile manifest.json

def _manifest_with(change: Callable[[dict[str, Any]], object]) -> Callable[[bytes], bytes]:
    def edit(raw: bytes) -> bytes:
        doc = json.loads(raw)
        change(doc)
        return json.dumps(doc).encode()
    return edit


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda raw: raw.replace(b'"signer_count": 1234', b'"signer_count": ' + b"7" * 5000),
     "holds a number of more than 18 digits"),
    (lambda raw: b"[" * 100_000 + b"]" * 100_000, "nests deeper than 16 levels"),
    (lambda raw: raw.replace(b'"signer_count"', b'"deep": ' + b"{\"a\": " * 17 + b"1" + b"}" * 17
                             + b', "signer_count"'), "nests deeper than 16 levels"),
    (lambda raw: raw[:-2] + b" " * 1_000_000 + b"}\n", "is larger than 1,000,000 bytes: not read"),
    (lambda raw: raw.replace(b'"signer_count": 1234', b'"signer_count": NaN'),
     "NaN is not a JSON value"),
    (_manifest_with(lambda d: d.update(dossier_id="x" * 1001)),
     "dossier_id is longer than 1000 characters"),
    (_manifest_with(lambda d: d.update(signed_by={"sha256": ["not", "a", "digest"]})),
     "signed_by.subject is missing"),
    (_manifest_with(lambda d: d["files"][0].update(name="..")), "'..' is not a unique plain name"),
    (_manifest_with(lambda d: d["files"][0].update(name=".hidden.pdf")),
     "is not a unique plain name"),
    (_manifest_with(lambda d: d["files"][0].update(name="a.pdf\nOK   forged.pdf: fine")),
     "is not a unique plain name"),
], ids=["5000-digit-int", "100000-deep", "17-deep", "too-large", "nan", "long-text",
        "wrong-signed-by", "dot-dot", "hidden-name", "newline-name"])
def test_a_hostile_manifest_is_one_fail_line(folder: Path, keys: Keys,
                                             edit: Callable[[bytes], bytes], reason: str) -> None:
    path = folder / MANIFEST_NAME
    path.write_bytes(edit(path.read_bytes()))
    report = verify_path(folder, trust=keys[1])
    assert not report.ok
    assert reason in fails(report)[MANIFEST_NAME]
    assert fails(report).get(SIGNATURE_NAME) != f"{MANIFEST_NAME} is missing"


def test_a_huge_trust_file_is_refused_unread(folder: Path, tmp_path: Path) -> None:
    huge = tmp_path / "trust.pem"
    huge.write_bytes(b"-----BEGIN CERTIFICATE-----\n" + b"A" * 2_000_000)
    with pytest.raises(InputRefused, match=r"trust\.pem: is larger than 1,000,000 bytes"):
        verify_path(folder, trust=huge)


# ---------------------------------------------------------------- hostile embedded dossier.json

@pytest.mark.parametrize(("payload", "reason"), [
    (lambda k: facts_json(k, file=[1]), "file is missing or has the wrong type"),
    (lambda k: facts_json(k, signer_count="1234"), "signer_count is missing or has the wrong type"),
    (lambda k: facts_json(k, signer_count=True), "signer_count is missing or has the wrong type"),
    (lambda k: facts_json(k, dossier_id=None), "dossier_id is missing or has the wrong type"),
    (lambda k: facts_json(k, file={"name": "dossier-en.pdf", "language": "en", "part": 1,
                                   "pages": "2"}), "file.pages is missing or has the wrong type"),
    (lambda k: facts_json(k)[:-1] + b', "n": ' + b"9" * 5000 + b"}",
     "holds a number of more than 18 digits"),
    (lambda k: b"[" * 100_000 + b"]" * 100_000, "nests deeper than 16 levels"),
    (lambda k: facts_json(k, pad="x" * 1_000_000), "is larger than 1,000,000 bytes"),
], ids=["list-for-dict", "string-for-int", "bool-for-int", "no-dossier-id", "string-pages",
        "5000-digit-int", "100000-deep", "too-large"])
def test_a_hostile_embedded_dossier_json_is_one_fail_line(
        tmp_path: Path, keys: Keys, payload: Callable[[Keys], bytes], reason: str) -> None:
    path = tmp_path / "dossier-en.pdf"
    path.write_bytes(signed_pdf(keys, payload(keys)))
    report = verify_path(path, trust=keys[1])
    assert [v.name for v in report.verdicts] == ["dossier-en.pdf"] and not report.ok
    assert reason in report.verdicts[0].reason


def test_a_compressed_dossier_json_is_inflated_only_up_to_its_bound(tmp_path: Path,
                                                                    keys: Keys) -> None:
    good = facts_json(keys)
    # A PDF that names an attachment already is saved anew: the next one is deflate-compressed.
    named = embed_dossier_json(unsigned().data, b"{}", created_at=FACTS.created_at, pages=2)
    bomb = good[:-1] + b" " * 20_000_000 + b"}"  # 20 MB of JSON whitespace, some 20 kB deflated
    path = tmp_path / "dossier-en.pdf"
    path.write_bytes(signed_pdf(keys, bomb, base=named))
    assert path.stat().st_size < 1_000_000
    reason = fails(verify_path(path, trust=keys[1]))["dossier-en.pdf"]
    assert reason == "its embedded dossier.json is larger than 1,000,000 bytes"
    path.write_bytes(signed_pdf(keys, good, base=named))  # the same way, within the bound: fine
    assert verify_path(path, trust=keys[1]).ok


# ---------------------------------------------------------------- hostile files and e-mails

def eml(path: Path, attachments: list[tuple[str, bytes]]) -> Path:
    msg = EmailMessage()
    msg["Subject"] = "Petition dossier"
    msg.set_content("Please find the dossier attached.")
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    path.write_bytes(msg.as_bytes())
    return path


def raw_eml(path: Path, part_headers: str, body: bytes) -> Path:
    path.write_bytes(b"MIME-Version: 1.0\r\nSubject: dossier\r\n"
                     b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                     + part_headers.encode() + b"\r\n\r\n" + body + b"\r\n--b--\r\n")
    return path


def test_attachment_names_keep_only_their_last_component(tmp_path: Path, bundle: list[BundleFile],
                                                         keys: Keys) -> None:
    sent = eml(tmp_path / "received.eml", [
        ("../../etc/" + bundle[0].name, bundle[0].data),
        ("..\\..\\Windows\\" + bundle[1].name, bundle[1].data),
        *((f.name, f.data) for f in bundle[2:])])
    report = verify_path(sent, trust=keys[1])
    assert report.ok, report.lines()
    assert [v.name for v in report.verdicts] == [MANIFEST_NAME, SIGNATURE_NAME, *(f.name for f in
                                                                                  bundle[:2])]


def test_a_file_name_cannot_forge_a_line_of_the_report(tmp_path: Path, keys: Keys) -> None:
    forged = "x.pdf\nOK   dossier-en.pdf: signed by the Prime Minister\nVERIFIED: every check holds"
    sent = raw_eml(tmp_path / "forged.eml",
                   "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
                   "Content-Disposition: attachment; filename*=utf-8''"
                   + forged.replace("\n", "%0A").replace(" ", "%20").replace(":", "%3A") + ".pdf",
                   b"JVBERi0xLjcK")
    lines = verify_path(sent, allow_untrusted=True).lines()
    assert len(lines) == 2 and lines[0].startswith("FAIL x.pdf\\nOK   dossier-en.pdf")
    assert lines[-1] == "NOT VERIFIED: see FAIL lines"


def test_damaged_base64_is_named_not_checked_as_a_pdf(tmp_path: Path, bundle: list[BundleFile],
                                                      keys: Keys) -> None:
    folder = write_files(tmp_path / "received", [bundle[0], *bundle[2:]])
    raw_eml(folder / "part2.eml", "Content-Type: application/pdf\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            'Content-Disposition: attachment; filename="dossier-en-2.pdf"', b"JVBERi0x!!!*%%%Cg==")
    assert fails(verify_path(folder, trust=keys[1])) == {
        "dossier-en-2.pdf": "its attachment in part2.eml is damaged (invalid base64)"}


def test_a_deeply_nested_email_is_one_fail_line(tmp_path: Path) -> None:
    levels = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
                      for i in range(20_000))
    path = tmp_path / "nested.eml"
    path.write_bytes(b"MIME-Version: 1.0\r\n" + levels + b"Content-Type: text/plain\r\n\r\nx\r\n")
    report = verify_path(path)
    assert [v.name for v in report.verdicts] == ["nested.eml"] and not report.ok
    assert report.verdicts[0].reason.startswith("not a readable e-mail (")


def test_a_huge_file_is_not_read(tmp_path: Path, bundle: list[BundleFile], keys: Keys) -> None:
    folder = write_files(tmp_path / "received", bundle)
    with (folder / "dossier-en-2.pdf").open("r+b") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    reasons = fails(verify_path(folder, trust=keys[1]))
    assert reasons == {"dossier-en-2.pdf": f"is larger than {MAX_FILE_BYTES:,} bytes: not read"}


def test_more_files_than_a_dossier_has_are_not_read(tmp_path: Path) -> None:
    for i in range(MAX_FILES + 1):
        (tmp_path / f"part-{i:04d}.pdf").write_bytes(b"not a pdf")
    report = verify_path(tmp_path)
    assert len(report.verdicts) == MAX_FILES + 1 and not report.ok
    assert report.verdicts[0].reason == f"not checked: more than {MAX_FILES:,} files are given"


def test_through_the_cli_hostile_input_is_fail_lines_and_exit_1(
        tmp_path: Path, bundle: list[BundleFile], keys: Keys,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_files(tmp_path / "received", bundle)
    (folder / MANIFEST_NAME).write_bytes(b'{"format": ' + b"1" * 5000 + b"}")
    good = bundle[0].data
    (folder / "dossier-en-1.pdf").write_bytes(good[: len(good) // 2])  # truncated
    (folder / "dossier-en-2.pdf").write_bytes(b"%PDF-1.7\n" + b"\0" * 1000)  # garbage
    raw_eml(folder / "bad.eml", 'Content-Type: application/pdf\r\nContent-Transfer-Encoding: '
            'base64\r\nContent-Disposition: attachment; filename="extra.pdf"', b"@@@@")
    assert main(["verify", "--trust", str(keys[1]), str(folder)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["FAIL extra.pdf: its attachment in bad.eml is damaged (invalid base64)",
                         "FAIL manifest.json: holds a number of more than 18 digits"]
    assert lines[2] == "FAIL dossier-en-1.pdf: not a readable PDF (EOF marker not found)"
    assert lines[3].startswith("FAIL dossier-en-2.pdf: not a readable PDF (")
    assert lines[4:] == ["NOT VERIFIED: see FAIL lines"]
    assert main(["verify", "--json", "--trust", str(keys[1]), str(folder)]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["ok"] is False and err == ""
    # a path holding nothing to check stays bad usage: exit 2, one line on stderr
    empty = eml(tmp_path / "empty.eml", [])
    assert main(["verify", str(empty)]) == 2
    assert capsys.readouterr().err == f"petition-delivery: {empty}: holds no PDF and no manifest.json\n"
