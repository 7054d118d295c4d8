"""Fault-injecting SMTP servers on loopback for the delivery tests, built on tests/smtpd.py.

FaultyHandler answers each DATA (and RCPT) from a script: a reply line ("451 4.3.0 busy"),
"drop" (take the message, then close the connection before answering), or "stall" (take the
message and answer too late). It counts every DATA it sees, so a test can prove that nothing
was sent. SilentPort never greets; tls_files makes a self-signed certificate for 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.smtpd import Received, RecordingHandler, SmtpServer


@dataclass
class FaultyHandler(RecordingHandler):
    data_script: list[str] = field(default_factory=list)
    rcpt_script: list[str] = field(default_factory=list)
    stall_seconds: float = 1.0
    password: str = "right"  # the one password the AUTH check accepts
    data_seen: int = 0
    logins: list[tuple[str, bool]] = field(default_factory=list)

    def _next(self, script: list[str]) -> str:
        with self.lock:
            return script.pop(0) if script else "ok"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        fault = self._next(self.rcpt_script)
        if fault != "ok":
            return fault
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.data_seen += 1
        fault = self._next(self.data_script)
        if fault == "ok":
            return await super().handle_DATA(server, session, envelope)
        if fault == "drop":
            await super().handle_DATA(server, session, envelope)
            assert server.transport is not None
            server.transport.close()
            return "250 2.0.0 nobody hears this"
        if fault == "stall":
            await super().handle_DATA(server, session, envelope)
            await asyncio.sleep(self.stall_seconds)
            return "250 2.0.0 too late"
        return fault

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password.decode() == self.password
        with self.lock:
            self.logins.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)


class FaultyServer(SmtpServer):
    """A real aiosmtpd server whose handler follows a fault script; AUTH offered in clear when
    `auth=True` (loopback tests only)."""

    handler: FaultyHandler

    def __init__(self, handler: FaultyHandler | None = None, *, auth: bool = False,
                 **controller_kwargs: Any) -> None:
        handler = handler or FaultyHandler()
        if auth:
            controller_kwargs.update(authenticator=handler.authenticate, auth_require_tls=False)
        super().__init__(handler, **controller_kwargs)

    @property
    def received(self) -> list[Received]:
        return list(self.handler.received)

    def message_ids(self) -> list[str]:
        return [str(r.message["Message-ID"]) for r in self.received]


@contextmanager
def faulty_server(handler: FaultyHandler | None = None, **kwargs: Any) -> Iterator[FaultyServer]:
    server = FaultyServer(handler, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def closed_port() -> int:
    """A port nobody listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def tls_files(folder: Path) -> TlsFiles:
    """A self-signed certificate valid for 127.0.0.1 (and localhost): also its own CA file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(folder / "server.crt", folder / "server.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files
