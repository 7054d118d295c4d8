"""Rendered documents ↔ a folder on disk, by the hash of what they show (see delivery.pdf.build)."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from delivery.errors import RenderError


def content_key(*parts: str) -> str:
    """The cache key of a document made from exactly these parts."""
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()


class VolumeCache:
    """Rendered volumes on disk, by key; survives restarts, bounded in bytes: the least recently
    used go first (a hit refreshes a file's mtime), but never one used in the last `grace`
    seconds, which a build running beside this one may be about to read."""

    def __init__(self, directory: Path, limit: int, grace: float = 3600.0) -> None:
        self.directory = directory
        self.limit = limit
        self.grace = grace
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RenderError(f"cache folder {directory}: {exc}") from exc

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.pdf"

    def touch(self, key: str) -> bool:
        """Whether the cache holds `key`; if so, marks it used now."""
        try:
            os.utime(self.path(key))
        except OSError:
            return False
        return True

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except OSError:
            return 0

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        try:
            data = path.read_bytes()
            os.utime(path)
        except OSError:
            return None
        return data

    def put(self, key: str, data: bytes) -> bool:
        """Store `data` → whether it was stored (a full disk only costs a later re-render).

        Written under a unique temporary name and renamed into place, so a reader (another
        build, in this process or another) sees the whole file or none.
        """
        try:
            handle, temp = tempfile.mkstemp(dir=self.directory, prefix=f".{key[:16]}-",
                                            suffix=".tmp")
        except OSError:
            return False
        try:
            with os.fdopen(handle, "wb") as f:
                f.write(data)
            os.replace(temp, self.path(key))
        except OSError:
            Path(temp).unlink(missing_ok=True)
            return False
        return True

    def evict(self) -> None:
        entries = []
        for path in self.directory.glob("*.pdf"):
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((stat.st_mtime, path.name, stat.st_size, path))
        used = sum(e[2] for e in entries)
        recent = time.time() - self.grace
        for mtime, _name, size, path in sorted(entries):
            if used <= self.limit or mtime >= recent:
                break
            path.unlink(missing_ok=True)
            used -= size


def drop_all(directory: Path) -> int:
    """Delete every rendered volume in a cache folder (and partial writes) → files deleted.

    For a purge of signers (delivery.services.retention): a cached volume is named by the hash of
    what it shows, which cannot be told from its name, so every file goes; a later build draws
    its volumes again. A build reading the folder meanwhile fails and is built again.
    """
    deleted = 0
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise RenderError(f"cache folder {directory}: {exc}") from exc
    for path in entries:
        if path.is_file() and (path.suffix == ".pdf" or path.name.endswith(".tmp")):
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise RenderError(f"cache folder {directory}: cannot delete {path.name}: {exc}") from exc
            deleted += 1
    return deleted
