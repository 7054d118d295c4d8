"""PDF bytes + new or changed objects → the same PDF with one incremental update appended.

An update section (ISO 32000-1, 7.5.6) holds the objects it adds or redefines and a
cross-reference stream whose /Prev points at the previous one; readers take the newest
definition of each object. Writing one costs the size of the change, not of the document:
delivery.pdf.restamp puts each delivery's footer into a kept part this way, and delivery.bundle.assemble
attaches dossier.json. Objects copied from another PDF are numbered as they are met; the
document's own objects keep their numbers. The bytes depend only on the inputs.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal

import pikepdf

_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")
Refer = Callable[[pikepdf.Object], int]  # an indirect object → the number to refer to it by


class PdfUpdate:
    def __init__(self, data: bytes) -> None:
        found = _STARTXREF.search(data[-64:])
        if found is None:
            raise ValueError("the PDF does not end in a cross-reference offset")
        self.prev = int(found.group(1))
        self.pdf = pikepdf.open(io.BytesIO(data))
        self.next_number = int(self.pdf.trailer.Size)
        self.out = io.BytesIO()
        self.out.write(data if data.endswith(b"\n") else data + b"\n")
        self.start = self.out.tell()
        self.offsets: dict[int, int] = {}
        self.foreign: dict[tuple[int, int], int] = {}  # another PDF's objects → our numbers
        self.pending: deque[pikepdf.Object] = deque()

    def number(self) -> int:
        """A new object number."""
        self.next_number += 1
        return self.next_number - 1

    def copy(self, obj: pikepdf.Object, number: int | None = None) -> int:
        """Write an object of another PDF, and every object it refers to, at `number` (a new
        one by default) → its number."""
        if obj.objgen not in self.foreign:
            self.foreign[obj.objgen] = self.number() if number is None else number
            self.pending.append(obj)
        while self.pending:
            item = self.pending.popleft()
            self.write(self.foreign[item.objgen], self._object(item))
        return self.foreign[obj.objgen]

    def write(self, number: int, body: bytes) -> None:
        """Define object `number` as `body` (PDF syntax: see `own`)."""
        self.offsets[number] = self.out.tell()
        self.out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))

    def own(self, value: object) -> bytes:
        """PDF syntax for a value of this document (its references kept as they are)."""
        return _value(value, lambda ref: ref.objgen[0])

    def finish(self, *, info: int | None = None) -> bytes:
        """The PDF with the update: /Root as before, /Info the given object or as before."""
        trailer = self.pdf.trailer
        root = self.pdf.Root.objgen[0]
        if info is None and "/Info" in trailer:
            info = trailer.Info.objgen[0]
        xref = self.number()
        self.offsets[xref] = self.out.tell()
        listed = sorted(self.offsets)
        rows = b"".join(b"\x01" + self.offsets[n].to_bytes(8, "big") + b"\x00\x00" for n in listed)
        first_id = bytes(trailer.ID[0]) if "/ID" in trailer else b"\x00" * 16
        second_id = hashlib.sha256(self.out.getvalue()[self.start:]).digest()[:16]
        entries = b"/Info %d 0 R " % info if info is not None else b""
        self.out.write(
            b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 8 2] /Index [%s] /Prev %d /Root %d 0 R "
            b"%s/ID [<%s> <%s>] /Length %d >>\nstream\n"
            % (xref, xref + 1, b" ".join(b"%d 1" % n for n in listed), self.prev, root, entries,
               first_id.hex().encode(), second_id.hex().encode(), len(rows)))
        self.out.write(rows + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % self.offsets[xref])
        return self.out.getvalue()

    def _object(self, obj: pikepdf.Object) -> bytes:
        if not isinstance(obj, pikepdf.Stream):
            return _value(obj, self._refer, top=True)
        raw = obj.read_raw_bytes()
        entries = {k: v for k, v in obj.stream_dict.items() if k != "/Length"}
        return (_dictionary(entries, self._refer)[:-2]
                + b" /Length %d >>\nstream\n" % len(raw) + raw + b"\nendstream")

    def _refer(self, obj: pikepdf.Object) -> int:
        if obj.objgen not in self.foreign:
            self.foreign[obj.objgen] = self.number()
            self.pending.append(obj)
        return self.foreign[obj.objgen]


def stream(entries: Mapping[str, object], data: bytes) -> bytes:
    """PDF syntax for a new stream object of direct entries (no filter)."""
    return (_dictionary(entries, _no_references)[:-2] + b" /Length %d >>\nstream\n" % len(data)
            + data + b"\nendstream")


def _no_references(obj: pikepdf.Object) -> int:
    raise ValueError("a reference where only direct values are allowed")


def _value(value: object, refer: Refer, *, top: bool = False) -> bytes:
    """PDF syntax for a value; `refer(indirect object)` gives the number to refer to it by."""
    if isinstance(value, Reference):
        return b"%d 0 R" % value.number
    if isinstance(value, pikepdf.Object):
        if value.is_indirect and not top:
            return b"%d 0 R" % refer(value)
        if isinstance(value, pikepdf.Dictionary):
            return _dictionary(dict(value.items()), refer)
        if isinstance(value, pikepdf.Array):
            return b"[" + b" ".join(_value(v, refer) for v in value) + b"]"
        return bytes(value.unparse())
    if isinstance(value, dict):
        return _dictionary(value, refer)
    if isinstance(value, list):
        return b"[" + b" ".join(_value(v, refer) for v in value) + b"]"
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, Decimal | float):
        return format(Decimal(value), "f").encode()
    if value is None:
        return b"null"
    raise ValueError(f"cannot write {type(value).__name__} into a PDF")


def _dictionary(entries: Mapping[str, object], refer: Refer) -> bytes:
    return b"<< " + b" ".join(
        pikepdf.Name(key).unparse() + b" " + _value(v, refer)
        for key, v in entries.items()) + b" >>"


class Reference:
    """A reference to an object of the update, by number, for values built here."""

    def __init__(self, number: int) -> None:
        self.number = number
