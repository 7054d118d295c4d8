"""Test helpers: (dossier id, signer count, pages) → a small real PDF whose every page footer carries
f"{dossier_id} · {signer_count:,}", made with WeasyPrint like the real dossier; and test
certificates and key files made with `cryptography`; an RFC 3161 timestamp server on loopback."""

from __future__ import annotations

import contextlib
import functools
import html
import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from delivery.artifacts import UnsignedPdf
from delivery.settings import Settings

_CSS = """
@page { size: A5; margin: 15mm 15mm 20mm 15mm;
        @bottom-center { content: FOOTER; font: 8pt sans-serif; } }
body { font: 10pt sans-serif; }
section { break-after: page; }
section:last-child { break-after: auto; }
"""


@functools.lru_cache(maxsize=32)
def make_pdf(dossier_id: str = "SM-20261127-001", signer_count: int = 1234, pages: int = 2,
             title: str = "Signers") -> bytes:
    """A `pages`-page PDF; cached because WeasyPrint takes a few hundred milliseconds."""
    from weasyprint import HTML

    footer = f"{dossier_id} · {signer_count:,}"
    # CSS string literal: escape backslashes and quotes before putting it in `content`.
    css_footer = '"' + footer.replace("\\", "\\\\").replace('"', '\\"') + '"'
    sections = "".join(
        f"<section><h1>{html.escape(title)} {n}</h1><p>Ani Hakobyan, Yerevan, Armenia</p></section>"
        for n in range(1, pages + 1)
    )
    doc = (f"<html lang='en'><head><style>{_CSS.replace('FOOTER', css_footer)}</style>"
           f"</head><body>{sections}</body></html>")
    data: bytes = HTML(string=doc).write_pdf()
    return data


def unsigned(name: str = "dossier-en.pdf", *, language: str = "en", part: int = 1, parts: int = 1,
             dossier_id: str = "SM-20261127-001", signer_count: int = 1234,
             pages: int = 2) -> UnsignedPdf:
    """An UnsignedPdf as the renderer hands it to the bundle stage."""
    data = make_pdf(dossier_id, signer_count, pages, title=name)
    return UnsignedPdf(name=name, language=language, part=part, parts=parts, pages=pages, data=data)


# ---------------------------------------------------------------- test certificates (fast: EC P-256)

def make_cert(common_name: str, *, key: Any = None, issuer: tuple[Any, x509.Certificate] | None = None,
              not_before: datetime | None = None, not_after: datetime | None = None,
              key_usage: str | None = "signing", ca: bool = False,
              eku: list[x509.ObjectIdentifier] | None = None) -> tuple[Any, x509.Certificate]:
    """(key, cert); self-signed unless `issuer` = (issuer key, issuer cert).
    key_usage: "signing" (digitalSignature+nonRepudiation), "encipher" (keyEncipherment only),
    "ca" (keyCertSign+cRLSign) or None (no extension)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer_key, issuer_name = (issuer[0], issuer[1].subject) if issuer else (key, name)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before or now - timedelta(days=1))
               .not_valid_after(not_after or now + timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[0].public_key()), critical=False)
    flags = {"signing": dict(digital_signature=True, content_commitment=True),
             "encipher": dict(key_encipherment=True),
             "ca": dict(key_cert_sign=True, crl_sign=True)}
    if key_usage:
        usage = {f: False for f in ("digital_signature", "content_commitment", "key_encipherment",
                                    "data_encipherment", "key_agreement", "key_cert_sign",
                                    "crl_sign", "encipher_only", "decipher_only")}
        usage.update(flags[key_usage])
        builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
    return key, builder.sign(signer_key, hashes.SHA256())


def write_pem(folder: Path, stem: str, key: Any, *certs: x509.Certificate,
              passphrase: str | None = None) -> tuple[Path, Path]:
    """Write `stem`-key.pem (encrypted when `passphrase`) and `stem`-cert.pem (all `certs`)."""
    folder.mkdir(parents=True, exist_ok=True)
    enc = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
           else serialization.NoEncryption())
    key_path, cert_path = folder / f"{stem}-key.pem", folder / f"{stem}-cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8, enc))
    cert_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return key_path, cert_path


def settings_for(key: Path | None, cert: Path | None, passphrase: str | None = None,
                 timestamp_url: str | None = None) -> Settings:
    return Settings(home=Path("."), database_url="sqlite://", smtp=None, outbox_dir=Path("."),
                    var_dir=Path("."), signing_key=key, signing_cert=cert,
                    signing_passphrase=passphrase, timestamp_url=timestamp_url)


@contextlib.contextmanager
def tsa_server() -> Iterator[str]:
    """A real RFC 3161 timestamp authority over HTTP on loopback (pyHanko's test TSA signs)."""
    key = rsa.generate_private_key(65537, 2048)
    _, cert = make_cert("Test TSA", key=key, key_usage=None,
                        eku=[ExtendedKeyUsageOID.TIME_STAMPING])
    stamper = DummyTimeStamper(
        tsa_cert=next(iter(load_certs_from_pemder_data(
            cert.public_bytes(serialization.Encoding.DER)))),
        tsa_key=load_private_key_from_pemder_data(key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), passphrase=None))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            req = tsp.TimeStampReq.load(self.rfile.read(int(self.headers["Content-Length"])))
            body = stamper.request_tsa_response(req).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    finally:
        server.shutdown()
        server.server_close()
