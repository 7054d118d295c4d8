"""Test helper: a folder → a test PKI made with certomancer (root → intermediate → signer, a revoked
signer, a TSA, an OCSP responder, CRLs), served over HTTP on loopback by certomancer's Animator.

The certificates carry the URLs of the running server (OCSP in the signer's AIA, CRL distribution
points, the intermediate's caIssuers), so pyHanko fetches their revocation data over real HTTP.
Keys are EC P-256, made with `cryptography` for each PKI; validity periods are around now.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certomancer.integrations.animator import Animator, AnimatorArchStore
from certomancer.registry import ArchLabel, CertLabel, CertomancerConfig
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.serving import WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

ARCH = "petition-test-ca"
KEYS = ("root", "interm", "signer", "signer-revoked", "tsa", "ocsp")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _config(now: datetime) -> dict[str, Any]:
    def valid(before: timedelta, after: timedelta) -> dict[str, str]:
        return {"valid-from": _iso(now - before), "valid-to": _iso(now + after)}

    day, year = timedelta(days=1), timedelta(days=365)
    signer = {"issuer": "interm", "validity": valid(day, year), "profiles": ["digsig-commitment"],
              "extensions": [{"id": "authority_information_access", "smart-value": {
                  "schema": "aia-urls", "params": {
                      "ocsp-responder-names": ["interm"],
                      "ca-issuer-links": [{"repo": "interm"}]}}}]}
    return {
        "keysets": {ARCH: {"keys": {k: {"path": f"{k}.key.pem"} for k in KEYS}}},
        "pki-architectures": {ARCH: {
            "keyset": ARCH,
            "entity-defaults": {"country-name": "AM", "organization-name": "Petition Test PKI"},
            "entities": {"root": {"common-name": "Test Root CA"},
                         "interm": {"common-name": "Test Intermediate CA"},
                         "signer": {"common-name": "Campaign Signer"},
                         "signer-revoked": {"common-name": "Revoked Campaign Signer"},
                         "tsa": {"common-name": "Test Time Stamping Authority"},
                         "ocsp": {"common-name": "Test OCSP Responder"}},
            "certs": {
                "root": {"subject": "root", "issuer": "root", "validity": valid(30 * day, 10 * year),
                         "profiles": [{"id": "simple-ca", "params": {"crl-repo": "root"}}]},
                "interm": {"issuer": "root", "validity": valid(30 * day, 5 * year),
                           "profiles": [{"id": "simple-ca", "params": {
                               "max-path-len": 0, "crl-repo": "interm", "ocsp-service": "interm"}}]},
                "ocsp": {"issuer": "interm", "validity": valid(30 * day, 5 * year),
                         "profiles": ["ocsp-responder"]},
                "signer": signer,
                "signer-revoked": {**signer, "revocation": {
                    "revoked-since": _iso(now - timedelta(hours=1)), "reason": "key_compromise"}},
                "tsa": {"issuer": "root", "validity": valid(30 * day, 5 * year), "extensions": [
                    {"id": "key_usage", "critical": True,
                     "smart-value": {"schema": "key-usage", "params": ["digital_signature"]}},
                    {"id": "extended_key_usage", "critical": True, "value": ["time_stamping"]},
                    {"id": "crl_distribution_points",
                     "smart-value": {"schema": "crl-dist-url", "params": {"crl-repo-names": ["root"]}}}]},
            },
            "services": {
                "ocsp": {"interm": {"for-issuer": "interm", "responder-cert": "ocsp",
                                    "signing-key": "ocsp"}},
                "crl-repo": {"root": {"for-issuer": "root", "signing-key": "root",
                                      "simulated-update-schedule": "P30D"},
                             "interm": {"for-issuer": "interm", "signing-key": "interm",
                                        "simulated-update-schedule": "P30D"}},
                "cert-repo": {"root": {"for-issuer": "root", "publish-issued-certs": True},
                              "interm": {"for-issuer": "interm", "publish-issued-certs": False}},
                "time-stamping": {"tsa": {"signing-key": "tsa", "signing-cert": "tsa"}},
            },
        }},
    }


class _Quiet(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        pass  # one line per OCSP and timestamp request would drown the test output


class _Deferred:
    """The WSGI app the server starts with: the Animator is made once the port is known."""

    def __init__(self) -> None:
        self.app: Animator | None = None
        self.requests = 0

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert self.app is not None
        self.requests += 1
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


@dataclass
class Pki:
    """A running test PKI: its files and service URLs."""

    folder: Path
    url: str
    config: CertomancerConfig
    stop: Callable[[], None]  # shuts the HTTP server down; a second call does nothing
    server: _Deferred

    @property
    def requests(self) -> int:
        """How many HTTP requests the services have answered so far."""
        return self.server.requests

    @property
    def tsa_url(self) -> str:
        return f"{self.url}/{ARCH}/tsa/tsa"

    @property
    def ocsp_url(self) -> str:
        return f"{self.url}/{ARCH}/ocsp/interm"

    def cert(self, label: str) -> x509.Certificate:
        arch = self.config.get_pki_arch(ArchLabel(ARCH))
        return x509.load_der_x509_certificate(arch.get_cert(CertLabel(label)).dump())

    @property
    def root_pem(self) -> Path:
        """The root certificate alone: what DELIVERY_TRUST_ROOTS and `verify --trust` are given."""
        path = self.folder / "root.cert.pem"
        if not path.exists():
            path.write_bytes(self.cert("root").public_bytes(serialization.Encoding.PEM))
        return path

    def signing_files(self, label: str = "signer") -> tuple[Path, Path]:
        """(key, certificate chain) PEM files for DELIVERY_SIGNING_KEY / DELIVERY_SIGNING_CERT:
        the signer's certificate followed by the intermediate's."""
        cert_path = self.folder / f"{label}.chain.pem"
        cert_path.write_bytes(b"".join(self.cert(c).public_bytes(serialization.Encoding.PEM)
                                       for c in (label, "interm")))
        return self.folder / f"{label}.key.pem", cert_path


@contextlib.contextmanager
def running_pki(folder: Path) -> Iterator[Pki]:
    """A test PKI in `folder`, served on 127.0.0.1 on a free port until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    for label in KEYS:
        key = ec.generate_private_key(ec.SECP256R1())
        (folder / f"{label}.key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    deferred = _Deferred()
    server = make_server("127.0.0.1", 0, deferred, threaded=True, request_handler=_Quiet)
    url = f"http://127.0.0.1:{server.server_port}"
    config = CertomancerConfig(_config(datetime.now(UTC)), key_search_dir=str(folder),
                               external_url_prefix=url)
    # no web UI: only the services; no time override header: answers are about now
    deferred.app = Animator(AnimatorArchStore(config.pki_archs), with_web_ui=False,
                            allow_time_override=False)
    thread = threading.Thread(target=server.serve_forever, name="test-pki", daemon=True)
    thread.start()
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            server.shutdown()
            server.server_close()
            thread.join()

    try:
        yield Pki(folder=folder, url=url, config=config, stop=stop, server=deferred)
    finally:
        stop()
