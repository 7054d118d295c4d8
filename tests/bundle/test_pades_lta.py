"""delivery.bundle.ltv, sign and verify against a real test PKI (certomancer's Animator on loopback:
OCSP, CRLs, RFC 3161 timestamps over HTTP): a B-LTA signature that pyHanko's AdES validation
accepts at that level from the file alone, and in its simulation of a validation after the signing
certificate has expired; `verify` naming the level and the timestamp's time; a revoked certificate
refused before signing; a timestamp authority or OCSP responder that does not answer failing
retryably, with nothing signed or sent, through the service too."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import DocumentSecurityStore, EmbeddedPdfSignature
from pyhanko.sign.validation.ades import ades_lta_validation, simulate_future_ades_lta_validation
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager
from sqlalchemy import select

from delivery.bundle.assemble import BundleFacts, assemble_bundle
from delivery.bundle.ltv import signature_policy
from delivery.bundle.sign import SigningIdentity, check_signing_services, load_identity, sign_pdf
from delivery.bundle.verify import verify_path
from delivery.cli.main import main as cli_main
from delivery.errors import ConfigError, SigningError, SigningUnavailable
from delivery.services import deliveries
from delivery.services.app import App
from delivery.settings import Settings, load_settings
from delivery.signers.intake import validate_signer
from delivery.signers.store import add_signers
from delivery.storage.db import transaction
from delivery.storage.models import DeliveryFileRow, DeliveryRow, MessageRow
from tests.support.campaigns import campaign_file
from tests.support.pdfs import make_cert, make_pdf, settings_for, unsigned, write_pem
from tests.support.pki import Pki, running_pki

FACTS = BundleFacts(
    campaign_slug="salman-mukaev", campaign_title="Armenia: Save Salman Mukaev's life!",
    dossier_id="SM-20261204-LTA", trigger="milestone", milestone=1000, signer_count=1234,
    listed_count=1200, last_signer_number=1234, last_signer_signed_on=date(2026, 12, 3),
    template_version="t1", created_at=datetime(2026, 12, 4, 9, 30, tzinfo=UTC))
AppFactory = Callable[..., App]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    with running_pki(tmp_path_factory.mktemp("pki")) as running:
        yield running


def _settings(pki: Pki, level: str = "B-LTA", label: str = "signer", *,
              timestamp_url: str | None = None, roots: Path | None = None) -> Settings:
    return replace(settings_for(*pki.signing_files(label)), signature_level=level,
                   timestamp_url=timestamp_url or pki.tsa_url, trust_roots=roots or pki.root_pem)


def _identity(settings: Settings) -> SigningIdentity:
    return load_identity(settings, now=datetime.now(UTC))


def _closed_port_url() -> str:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/tsa"


def _spec(pki: Pki) -> PdfSignatureValidationSpec:
    """Validation against the test root with revocation information required for every
    certificate below it, taken from the file alone: nothing is fetched."""
    return PdfSignatureValidationSpec(SignatureValidationSpec(
        cert_validation_policy=CertValidationPolicySpec(
            trust_manager=SimpleTrustManager.build(
                trust_roots=list(signature_policy(_settings(pki)).trust_roots)),
            revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO)),
        revinfo_gathering_policy=RevocationInfoGatheringSpec(
            online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY)))


def _signature(data: bytes) -> EmbeddedPdfSignature:
    sig: EmbeddedPdfSignature = PdfFileReader(BytesIO(data)).embedded_regular_signatures[0]
    return sig


@pytest.fixture(scope="module")
def lta_pdf(pki: Pki) -> bytes:
    settings = _settings(pki)
    return sign_pdf(make_pdf(), _identity(settings), reason="Petition dossier", location="Yerevan",
                    policy=signature_policy(settings))


# ---------------------------------------------------------------- settings

def test_the_level_defaults_to_b_lta_with_a_timestamp_service_and_needs_its_parts() -> None:
    assert load_settings({}).signature_level == "B-B"
    env = {"DELIVERY_TIMESTAMP_URL": "http://tsa.test/", "DELIVERY_TRUST_ROOTS": "roots.pem"}
    assert load_settings(env).signature_level == "B-LTA"
    assert load_settings({**env, "DELIVERY_SIGNATURE_LEVEL": "b-t"}).signature_level == "B-T"
    with pytest.raises(ConfigError, match="DELIVERY_TRUST_ROOTS: signature level B-LTA needs"):
        load_settings({"DELIVERY_TIMESTAMP_URL": "http://tsa.test/"})
    with pytest.raises(ConfigError, match="B-LT needs a timestamp service: set DELIVERY_TIMESTAMP_URL"):
        load_settings({"DELIVERY_SIGNATURE_LEVEL": "B-LT", "DELIVERY_TRUST_ROOTS": "roots.pem"})
    with pytest.raises(ConfigError, match="'B-X' is not one of: B-B, B-T, B-LT, B-LTA"):
        load_settings({"DELIVERY_SIGNATURE_LEVEL": "B-X"})


def test_unreadable_trust_roots_fail_closed(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="cannot read DELIVERY_TRUST_ROOTS"):
        signature_policy(_settings(pki, roots=tmp_path / "missing.pem"))
    (tmp_path / "empty.pem").write_text("no certificate here\n")
    with pytest.raises(SigningError, match="is not a PEM or DER certificate file"):
        signature_policy(_settings(pki, roots=tmp_path / "empty.pem"))


# ---------------------------------------------------------------- B-LTA

def test_a_b_lta_signature_validates_at_that_level_in_pyhanko(pki: Pki, lta_pdf: bytes) -> None:
    reader = PdfFileReader(BytesIO(lta_pdf))
    assert len(reader.embedded_regular_signatures) == 1
    [doc_stamp] = reader.embedded_timestamp_signatures
    assert doc_stamp.sig_object["/Type"] == "/DocTimeStamp"
    sig = reader.embedded_regular_signatures[0]
    unsigned_attrs = {a["type"].native for a in sig.signer_info["unsigned_attrs"]}
    assert "signature_time_stamp_token" in unsigned_attrs
    dss = DocumentSecurityStore.read_dss(reader)
    assert dss.ocsps and dss.crls  # the signer's OCSP response; the root's CRL (intermediate, TSA)
    result = asyncio.run(ades_lta_validation(_signature(lta_pdf), _spec(pki)))
    assert result.ades_subindic == AdESPassed.OK
    status = result.api_status
    assert status is not None and status.bottom_line and status.trusted
    assert status.modification_level == ModificationLevel.LTA_UPDATES


def test_a_b_lta_signature_holds_what_validates_it_after_its_certificate_expired(
        pki: Pki, lta_pdf: bytes) -> None:
    """pyHanko's check that a signature stays valid while its archive timestamps are kept up:
    the file alone, a month after the signing certificate expired. A B-T signature fails it."""
    later = pki.cert("signer").not_valid_after_utc + timedelta(days=30)
    spec = _spec(pki)
    kept = asyncio.run(simulate_future_ades_lta_validation(_signature(lta_pdf), spec, later))
    assert kept.ades_subindic == AdESPassed.OK
    settings = _settings(pki, "B-T")
    bare = sign_pdf(make_pdf(), _identity(settings), reason="r", location="l",
                    policy=signature_policy(settings))
    lost = asyncio.run(simulate_future_ades_lta_validation(_signature(bare), spec, later))
    assert lost.ades_subindic != AdESPassed.OK


def test_pdfsig_still_finds_the_signature_valid(lta_pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "lta.pdf"
    path.write_bytes(lta_pdf)
    out = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=False).stdout
    assert "Signature Validation: Signature is Valid." in out


def test_verify_reports_b_lta_and_the_time_of_the_timestamp(pki: Pki, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    settings = _settings(pki)
    before = datetime.now(UTC).replace(microsecond=0)
    files = assemble_bundle([unsigned("dossier-en-1.pdf", part=1, parts=2, pages=2,
                                      dossier_id=FACTS.dossier_id),
                             unsigned("dossier-en-2.pdf", part=2, parts=2, pages=1,
                                      dossier_id=FACTS.dossier_id)],
                            FACTS, _identity(settings), reason="Petition dossier",
                            location="Yerevan", policy=signature_policy(settings))
    after = datetime.now(UTC)
    for f in files:
        (tmp_path / f.name).write_bytes(f.data)

    asked = pki.requests
    report = verify_path(tmp_path, trust=pki.root_pem)
    assert pki.requests == asked  # verify follows none of the URLs in the files
    assert report.ok, report.lines()
    assert report.level == "B-LTA" and report.lines()[-1] == "VERIFIED: every check holds (PAdES B-LTA)"
    pdfs = [v for v in report.verdicts if v.name.endswith(".pdf")]
    for verdict in pdfs:
        assert verdict.level == "B-LTA" and verdict.time_source == "timestamp token"
        assert verdict.signing_time is not None and before <= verdict.signing_time <= after
        assert (f"signing time {verdict.signing_time:%Y-%m-%d %H:%M:%S} UTC, from the timestamp token"
                in verdict.reason)
        assert "PAdES B-LTA" in verdict.reason
    [cms] = [v for v in report.verdicts if v.name == "manifest.json.p7s"]
    assert cms.ok and cms.time_source == "timestamp token" and "from the timestamp token" in cms.reason

    assert cli_main(["verify", "--json", "--trust", str(pki.root_pem), str(tmp_path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["level"] == "B-LTA"
    first = next(f for f in shown["files"] if f["name"] == "dossier-en-1.pdf")
    assert first["level"] == "B-LTA" and first["time_source"] == "timestamp token"
    assert datetime.fromisoformat(first["signing_time"]) == pdfs[0].signing_time

    # without a trust root nothing above B-T can be established
    untrusted = verify_path(tmp_path / "dossier-en-1.pdf", allow_untrusted=True)
    assert untrusted.ok and untrusted.verdicts[0].level == "B-T"
    assert "PAdES B-T: its long-term validation data is checked only with --trust" in (
        untrusted.verdicts[0].reason)


def test_verify_establishes_b_lta_from_the_file_alone(tmp_path: Path) -> None:
    with running_pki(tmp_path / "pki") as gone:
        settings = _settings(gone)
        signed = sign_pdf(make_pdf(), _identity(settings), reason="r", location="l",
                          policy=signature_policy(settings))
    path = tmp_path / "dossier-en.pdf"
    path.write_bytes(signed)
    [verdict] = verify_path(path, trust=gone.root_pem).verdicts  # its services are all down now
    assert verdict.level == "B-LTA", verdict.reason


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT"])
def test_verify_names_each_lower_level(pki: Pki, tmp_path: Path, level: str) -> None:
    settings = _settings(pki, level)
    files = assemble_bundle([unsigned(dossier_id=FACTS.dossier_id)], FACTS, _identity(settings),
                            reason="r", location="l",
                            policy=signature_policy(settings))
    for f in files:
        (tmp_path / f.name).write_bytes(f.data)
    report = verify_path(tmp_path, trust=pki.root_pem)
    assert report.ok, report.lines()
    assert report.level == level and f"PAdES {level}" in report.verdicts[-1].reason
    assert report.verdicts[-1].time_source == ("signer's clock" if level == "B-B"
                                               else "timestamp token")


def test_an_update_after_the_document_timestamp_fails(pki: Pki, lta_pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "dossier-en.pdf"
    path.write_bytes(lta_pdf + b"\n% appended after the last timestamp\n")
    [verdict] = verify_path(path, trust=pki.root_pem).verdicts
    assert not verdict.ok and "bytes follow the end of the file's last revision" in verdict.reason


# ---------------------------------------------------------------- refusals and outages

def test_a_revoked_signing_certificate_is_refused_before_anything_is_signed(pki: Pki) -> None:
    settings = _settings(pki, label="signer-revoked")
    identity, policy = _identity(settings), signature_policy(settings)
    with pytest.raises(SigningError) as err:
        check_signing_services(identity, policy)
    reason = str(err.value)
    assert reason.startswith("signing certificate CN=Revoked Campaign Signer")
    assert "was revoked on" in reason and "a compromised key" in reason and "\n" not in reason
    assert not isinstance(err.value, SigningUnavailable) and not err.value.retryable
    with pytest.raises(SigningError, match="was revoked on"):
        sign_pdf(make_pdf(), identity, reason="r", location="l", policy=policy)


@pytest.mark.parametrize("level", ["B-T", "B-LTA"])
def test_a_timestamp_service_that_does_not_answer_is_a_retryable_failure(pki: Pki, level: str) -> None:
    url = _closed_port_url()
    settings = _settings(pki, level, timestamp_url=url)
    identity, policy = _identity(settings), signature_policy(settings)
    with pytest.raises(SigningUnavailable) as before:
        check_signing_services(identity, policy)
    with pytest.raises(SigningUnavailable) as signing:
        sign_pdf(make_pdf(), identity, reason="r", location="l", policy=policy)
    for err in (before, signing):
        assert err.value.retryable
        assert str(err.value).startswith(f"timestamp service {url} did not answer")
        assert str(err.value).endswith("nothing was signed; retry once it answers")


def test_an_ocsp_responder_that_does_not_answer_is_a_retryable_failure(pki: Pki, tmp_path: Path) -> None:
    with running_pki(tmp_path / "down") as down:
        key, chain = down.signing_files()
        roots = tmp_path / "roots.pem"
        roots.write_bytes(down.root_pem.read_bytes() + pki.root_pem.read_bytes())
        down.stop()  # its OCSP responder and CRLs no longer answer; the other PKI's TSA does
        settings = replace(settings_for(key, chain), signature_level="B-LTA",
                           timestamp_url=pki.tsa_url, trust_roots=roots)
        with pytest.raises(SigningUnavailable) as err:
            check_signing_services(_identity(settings), signature_policy(settings))
    reason = str(err.value)
    assert reason.startswith("the revocation status of signing certificate CN=Campaign Signer")
    assert "its OCSP responder or CRL server did not answer" in reason and "\n" not in reason


def test_a_certificate_whose_revocation_cannot_be_established_is_refused(pki: Pki,
                                                                         tmp_path: Path) -> None:
    interm_key = serialization.load_pem_private_key((pki.folder / "interm.key.pem").read_bytes(), None)
    key, cert = make_cert("Signer Without Revocation Sources", issuer=(interm_key, pki.cert("interm")))
    key_path, cert_path = write_pem(tmp_path, "bare", key, cert, pki.cert("interm"))
    settings = replace(_settings(pki), signing_key=key_path, signing_cert=cert_path)
    with pytest.raises(SigningError) as err:
        check_signing_services(_identity(settings), signature_policy(settings))
    assert not err.value.retryable
    assert str(err.value).startswith("the revocation status of signing certificate "
                                     "CN=Signer Without Revocation Sources cannot be established: a "
                                     "certificate of its chain names no OCSP responder or CRL")


def test_a_certificate_outside_the_trust_roots_is_refused(pki: Pki, tmp_path: Path) -> None:
    with running_pki(tmp_path / "other") as other:
        settings = _settings(pki, roots=other.root_pem)
        with pytest.raises(SigningError, match="does not chain to a root in DELIVERY_TRUST_ROOTS"):
            check_signing_services(_identity(settings), signature_policy(settings))


# ---------------------------------------------------------------- through the service

def _app(make_app: AppFactory, pki: Pki, timestamp_url: str) -> App:
    key, chain = pki.signing_files()
    return make_app({
        "DELIVERY_SIGNING_KEY": str(key), "DELIVERY_SIGNING_CERT": str(chain),
        "DELIVERY_TIMESTAMP_URL": timestamp_url, "DELIVERY_TRUST_ROOTS": str(pki.root_pem)},
        campaign_file(slug="small", title="Small test petition", goal=50, signing="required",
                      hold="0s", thresholds="[5, 10]", check_every="1m"))


def test_a_timestamp_outage_sends_nothing_and_the_delivery_builds_on_retry(
        make_app: AppFactory, pki: Pki, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    app = _app(make_app, pki, _closed_port_url())
    assert app.settings.signature_level == "B-LTA"
    campaign = app.campaign(None)
    with transaction(app.engine) as session:
        rows = [validate_signer({"name": f"Signer {i}", "email": f"s{i}@example.net", "city": "Yerevan",
                                 "country": "AM", "signed_at": now - timedelta(hours=1)},
                                now=now, source="test") for i in range(3)]
        add_signers(session, app.campaign_id(session, campaign), rows, now=now, keys=app.signer_keys)

    ref = deliveries.create_manual(app, campaign, now=now, actor="test")
    assert not deliveries.build_and_send(app, ref.id, now=now)
    with transaction(app.engine) as session:
        delivery = session.get(DeliveryRow, ref.id)
        assert delivery is not None and delivery.status == "failed" and delivery.built_at is None
        assert "did not answer" in (delivery.error or "")
        assert "retry once it answers" in (delivery.error or "")
        kinds = set(session.scalars(select(MessageRow.kind).where(MessageRow.delivery_id == ref.id)))
        files = session.scalars(select(DeliveryFileRow).where(DeliveryFileRow.delivery_id == ref.id))
        assert kinds == {"alert"} and not list(files)  # the organizers are told; nothing else goes
    assert not list((tmp_path / "outbox").glob("*dossier*"))

    working = _app(make_app, pki, pki.tsa_url)
    deliveries.change(working, campaign, "retry", ref.public_id, now=now, actor="organizer")
    report = deliveries.tick(working, campaign, now=now + timedelta(minutes=1))
    assert report.built == [ref.public_id]
    with transaction(working.engine) as session:
        delivery = session.get(DeliveryRow, ref.id)
        assert delivery is not None and delivery.status in ("sending", "done")
        pdf = next(f for f in session.scalars(select(DeliveryFileRow).where(
            DeliveryFileRow.delivery_id == ref.id)) if f.kind == "pdf")
        sent = set(session.scalars(select(MessageRow.kind).where(MessageRow.delivery_id == ref.id)))
        assert "dossier" in sent
        (tmp_path / pdf.name).write_bytes(pdf.content)
    assert verify_path(tmp_path / pdf.name, trust=pki.root_pem).verdicts[0].level == "B-LTA"
