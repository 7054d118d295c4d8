"""A real IMAP server for the tests: Debian's Dovecot, in a folder of its own, on free loopback
ports, with one mailbox user, IMAPS and STARTTLS under a certificate of a test CA.

    with Dovecot.start() as server:
        server.append(raw_bytes)
        settings = server.settings(security="tls")

`make setup` installs dovecot-imapd (scripts/system-packages.txt); `start` fails with a clear
message when it is missing, never skips.
"""

from __future__ import annotations

import imaplib
import ipaddress
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from delivery.settings import ImapSettings

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "bounces@petition.test", "imap-test-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write_test_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost: (ca.pem, cert.pem, key.pem)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("IMAP test CA")).issuer_name(_name("IMAP test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@dataclass
class Dovecot:
    folder: Path
    imaps_port: int
    imap_port: int
    ca_file: Path
    process: subprocess.Popen[bytes]

    @classmethod
    @contextmanager
    def start(cls) -> Iterator[Dovecot]:
        if not Path(DOVECOT).exists():
            raise RuntimeError("Dovecot is not installed: run `make setup` (Debian package dovecot-imapd)")
        # Its own folder, readable by Dovecot's unprivileged processes (pytest's are private)
        folder = Path(tempfile.mkdtemp(prefix="dovecot-"))
        folder.chmod(0o755)
        try:
            with cls._started(folder) as server:
                yield server
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @classmethod
    @contextmanager
    def _started(cls, folder: Path) -> Iterator[Dovecot]:
        ca, cert, key = write_test_ca(folder)
        mail_user = pwd.getpwnam("dovecot")  # Dovecot refuses to keep mail as root
        home = folder / "home"
        home.mkdir()
        os.chown(home, mail_user.pw_uid, mail_user.pw_gid)
        (folder / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        imaps_port, imap_port = free_port(), free_port()
        config = folder / "dovecot.conf"
        config.write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:{home}/%u
first_valid_uid = {mail_user.pw_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/users
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={home}/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
""")
        process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        server = cls(folder, imaps_port, imap_port, ca, process)
        try:
            server._wait()
            yield server
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def _wait(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out = self.process.stdout.read().decode() if self.process.stdout else ""
                log_file = self.folder / "dovecot.log"
                log = log_file.read_text() if log_file.exists() else ""
                raise RuntimeError(f"dovecot stopped at start: {out}{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.imaps_port), timeout=1):
                    pass
                with socket.create_connection(("127.0.0.1", self.imap_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot did not open its ports in 20 s")

    def settings(self, *, security: str = "tls", password: str = PASSWORD,
                 mailbox: str = "INBOX") -> ImapSettings:
        return ImapSettings(host="127.0.0.1", port=self.imaps_port if security == "tls" else self.imap_port,
                            security=security, username=USER, password=password, mailbox=mailbox,
                            ca_file=self.ca_file, timeout=10)

    def env(self) -> dict[str, str]:
        """The service's environment variables for this mailbox."""
        return {"DELIVERY_BOUNCE_IMAP_HOST": "127.0.0.1", "DELIVERY_BOUNCE_IMAP_PORT": str(self.imaps_port),
                "DELIVERY_BOUNCE_IMAP_USERNAME": USER, "DELIVERY_BOUNCE_IMAP_PASSWORD": PASSWORD,
                "DELIVERY_BOUNCE_IMAP_CA_FILE": str(self.ca_file)}

    @contextmanager
    def client(self) -> Iterator[imaplib.IMAP4_SSL]:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        client = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=context, timeout=10)
        client.login(USER, PASSWORD)
        try:
            yield client
        finally:
            client.logout()

    def append(self, raw: bytes, *, mailbox: str = "INBOX") -> None:
        """Deliver one mail into a folder, as the mail server would."""
        with self.client() as client:
            if mailbox != "INBOX":
                client.create(mailbox)
            status, data = client.append(mailbox, "", imaplib.Time2Internaldate(time.time()), raw)
            assert status == "OK", data

    def flags(self, mailbox: str = "INBOX") -> list[bytes]:
        """Every mail's flags: reading bounces must leave them as they were."""
        with self.client() as client:
            client.select(mailbox, readonly=True)
            _, data = client.fetch("1:*", "(FLAGS)")
            return [d for d in data if isinstance(d, bytes)]

    def recreate(self, mailbox: str = "INBOX") -> None:
        """Empty the folder so that it gets a new UIDVALIDITY (as a restored backup would)."""
        shutil.rmtree(self.folder / "home" / USER, ignore_errors=True)
