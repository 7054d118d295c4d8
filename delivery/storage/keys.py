"""The installation's signer secret (a key file, never in the database) → the keys signers are
stored and found under; files that only the service's own user may read.

In memory a signer's key is the SHA-256 hex digest of the normalised e-mail (or of name and place;
see delivery.signers.normalize). The database stores HMAC-SHA-256(secret, that hex digest), in hex:
whoever holds a copy of the database but not the secret cannot tell whether an address signed,
since hashing a guessed address gives nothing to compare with. The secret is 32 random bytes made
once per installation (by `init`, so by `demo` too) in a key file: mode 0600, a comment line, then
64 hex digits. It must be backed up with the database (and copied to every host that runs the
service on the same database): without it no stored signer is recognised again, neither as a
duplicate nor for a withdrawal. A missing key is never replaced silently (delivery.services.app).

The fingerprint (the HMAC of a fixed text, 16 hex digits) names a key in messages, so that an
operator can tell whether a backed-up file is the one in use; it reveals nothing of the secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from delivery.errors import ConfigError

log = logging.getLogger("delivery.storage.keys")

KEY_BYTES = 32
# The first migration whose signer keys are keyed hashes.
KEYED_REVISION = "0005"
SETTING = "DELIVERY_SIGNER_KEY_FILE"
_FINGERPRINT_TEXT = b"petition-delivery signer key fingerprint"
_HEX_KEY = re.compile(r"[0-9a-f]{64}")
_HEADER = ("# petition-delivery signer key: back it up with the database; without it no stored "
           "signer is recognised again\n")


class SignerKeys:
    """One installation's secret → stored signer keys. The secret is in no repr or attribute."""

    __slots__ = ("_mac", "fingerprint")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < KEY_BYTES:
            raise ValueError(f"a signer secret has at least {KEY_BYTES} bytes")
        # Keyed once: each signer then costs a copy of this state, one update and one digest.
        self._mac = hmac.new(secret, digestmod=hashlib.sha256)
        mark = self._mac.copy()
        mark.update(_FINGERPRINT_TEXT)
        self.fingerprint = mark.hexdigest()[:16]

    def stored_key(self, digest: str) -> str:
        """An in-memory signer key (a SHA-256 hex digest) → the key the database holds."""
        mac = self._mac.copy()
        mac.update(digest.encode("utf-8"))
        return mac.hexdigest()

    def stored_keys(self, digests: Iterable[str]) -> list[str]:
        copy = self._mac.copy
        out = []
        for digest in digests:
            mac = copy()
            mac.update(digest.encode("utf-8"))
            out.append(mac.hexdigest())
        return out

    def __repr__(self) -> str:
        return f"SignerKeys(fingerprint={self.fingerprint})"


def read_key_file(path: Path) -> SignerKeys | None:
    """The key in this file; None when there is no file; ConfigError when it is not a key file."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), SETTING, f"the signer key file cannot be read ({exc.__class__.__name__})"
                          ) from None
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if len(lines) != 1 or not _HEX_KEY.fullmatch(lines[0]):
        raise ConfigError(str(path), SETTING, "is not a signer key file (one line of 64 hex digits expected)")
    if path.stat().st_mode & 0o077:
        log.warning("the signer key file %s can be read by other users: `chmod 600` it", path)
    return SignerKeys(bytes.fromhex(lines[0]))


def create_key_file(path: Path) -> SignerKeys:
    """A new random key written to `path` (0600, complete or not at all); when another process made
    the file first, the key in it."""
    _make_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    content = (_HEADER + secrets.token_bytes(KEY_BYTES).hex() + "\n").encode("ascii")
    try:
        _write_new(tmp, content)
        try:
            os.link(tmp, path)  # never replaces a key file: the first one made stays
        except FileExistsError:
            pass  # another process made it first: its key is the one
        except OSError:  # a file system without hard links: made in place, still never replaced
            with contextlib.suppress(FileExistsError):
                _write_new(path, content)
    finally:
        tmp.unlink(missing_ok=True)
    _sync_folder(path.parent)
    keys = read_key_file(path)
    if keys is None:
        raise ConfigError(str(path), SETTING, "the signer key file vanished while it was made")
    return keys


def _write_new(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())


def create_private_file(path: Path) -> None:
    """An empty file only its owner may read and write, unless the file exists already."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def restrict_to_owner(path: Path) -> bool:
    """Take group and other permissions off an existing file → whether any were taken."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if not mode & 0o077:
        return False
    os.chmod(path, mode & 0o700)
    return True


def _make_folder(folder: Path) -> None:
    # The folder itself, not a whole mistyped path.
    if not folder.parent.is_dir():
        raise ConfigError("environment", SETTING, f"the folder {folder.parent} does not exist")
    folder.mkdir(mode=0o700, exist_ok=True)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
