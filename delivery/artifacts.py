"""The files a delivery is made of, between the stages that produce them.

pdf/build → UnsignedPdf → bundle (embed manifest, sign) → BundleFile → message/outbox.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

# The attachment bytes one e-mail carries: the PDF is cut into parts of about this size, and the
# parts are packed into e-mails by it. One figure for both, so a part always fits its e-mail.
PART_BYTES = 15_000_000
# The part number of the letter and summary alone, and its kind: a download link's e-mail
# carries it, signed.
LETTER_PART = 0
LETTER = "letter"
MANIFEST_KINDS = ("manifest", "manifest-signature")  # the files every e-mail of a dossier carries


@dataclass(frozen=True)
class UnsignedPdf:
    """One rendered dossier PDF for one language; `part` of `parts` when split for e-mail size."""

    name: str
    language: str
    part: int
    parts: int
    pages: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class BundleFile:
    """A finished file of the bundle: stored once, sent byte for byte on every attempt."""

    name: str
    kind: str  # pdf | manifest | manifest-signature
    language: str  # "" for files shared by every language
    part: int
    pages: int | None
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def sha256(self) -> str:
        # once per file: the manifest lists it, then the delivery's stored row and the preview's
        # report (3 ms a 6 MB part each)
        return hashlib.sha256(self.data).hexdigest()

    @property
    def content_type(self) -> str:
        return {"pdf": "application/pdf", LETTER: "application/pdf", "manifest": "application/json",
                "manifest-signature": "application/pkcs7-signature"}[self.kind]
