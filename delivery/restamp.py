"""Part body + this delivery's stamp and document info → the part, as a PDF incremental update.

A part without the front shows the same pages from one delivery to the next; only the footer
in its volumes' stamp slot (dossier id, signer count) and the document information change. So
its pages are joined once into a body whose slot holds an empty form XObject (delivery.join),
and each delivery appends an update section (ISO 32000-1, 7.5.6) that redefines that one
object as the stamp page, adds the objects the stamp's fonts need and a new /Info, and ends in
a cross-reference stream pointing back at the body's: kilobytes written instead of thousands
of pages joined again. The bytes depend only on the inputs.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import deque
from collections.abc import Mapping
from decimal import Decimal

import pikepdf

from delivery.typeset import STAMP

_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")


def restamp(body: bytes, stamp: bytes, info: pikepdf.Dictionary) -> tuple[bytes, int]:
    """The part's bytes and page count. `info` holds direct values only."""
    found = _STARTXREF.search(body[-64:])
    if found is None:
        raise ValueError("the part body does not end in a cross-reference offset")
    pdf = pikepdf.open(io.BytesIO(body))
    slot = _slot(pdf)
    size, root = int(pdf.trailer.Size), pdf.Root.objgen[0]
    first_id = bytes(pdf.trailer.ID[0])
    pages = int(pdf.Root.Pages.Count)

    stamp_pdf = pikepdf.open(io.BytesIO(stamp))
    form = pikepdf.Page(stamp_pdf.Root.Pages.Kids[0]).as_form_xobject()
    numbers = {form.objgen: slot.objgen[0]}
    pending = deque([form])
    out = io.BytesIO()
    out.write(body if body.endswith(b"\n") else body + b"\n")
    offsets: dict[int, int] = {}
    while pending:
        obj = pending.popleft()
        number = numbers[obj.objgen]
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n" % number)
        out.write(_object(obj, numbers, pending, size))
        out.write(b"\nendobj\n")
    info_number = size + len(numbers) - 1
    offsets[info_number] = out.tell()
    out.write(b"%d 0 obj\n%s\nendobj\n" % (info_number, _value(info, numbers, pending, size)))
    assert not pending, "document information must not refer to other objects"

    xref_number = info_number + 1
    offsets[xref_number] = out.tell()
    listed = sorted(offsets)
    rows = b"".join(b"\x01" + offsets[n].to_bytes(8, "big") + b"\x00\x00" for n in listed)
    second_id = hashlib.sha256(out.getvalue()[len(body):]).digest()[:16]
    index = b" ".join(b"%d 1" % n for n in listed)
    out.write(b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 8 2] /Index [%s] /Prev %s /Root %d 0 R "
              b"/Info %d 0 R /ID [<%s> <%s>] /Length %d >>\nstream\n"
              % (xref_number, xref_number + 1, index, found.group(1), root, info_number,
                 first_id.hex().encode(), second_id.hex().encode(), len(rows)))
    out.write(rows + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % offsets[xref_number])
    return out.getvalue(), pages


def _slot(pdf: pikepdf.Pdf) -> pikepdf.Object:
    """The stamp slot of the body's first page, reached without reading every page."""
    node = pdf.Root.Pages
    while node.get("/Type") == pikepdf.Name.Pages:
        if not node.get("/Kids"):
            raise ValueError("the part body has no pages")
        node = node.Kids[0]
    resources = node.get("/Resources")
    xobjects = resources.get("/XObject") if isinstance(resources, pikepdf.Dictionary) else None
    slot = xobjects.get("/" + STAMP) if isinstance(xobjects, pikepdf.Dictionary) else None
    if not isinstance(slot, pikepdf.Object) or not slot.is_indirect:
        raise ValueError("the part body has no stamp slot")
    return slot


def _object(obj: pikepdf.Object, numbers: dict[tuple[int, int], int],
            pending: deque[pikepdf.Object], size: int) -> bytes:
    if not isinstance(obj, pikepdf.Stream):
        return _value(obj, numbers, pending, size, top=True)
    raw = obj.read_raw_bytes()
    entries = {k: v for k, v in obj.stream_dict.items() if k != "/Length"}
    return (_dictionary(entries, numbers, pending, size)[:-2]
            + b" /Length %d >>\nstream\n" % len(raw) + raw + b"\nendstream")


def _value(value: object, numbers: dict[tuple[int, int], int], pending: deque[pikepdf.Object],
           size: int, *, top: bool = False) -> bytes:
    """PDF syntax for a value; an indirect object not seen yet gets the next free number."""
    if isinstance(value, pikepdf.Object):
        if value.is_indirect and not top:
            key = value.objgen
            if key not in numbers:
                numbers[key] = size + len(numbers) - 1
                pending.append(value)
            return b"%d 0 R" % numbers[key]
        if isinstance(value, pikepdf.Dictionary):
            return _dictionary(dict(value.items()), numbers, pending, size)
        if isinstance(value, pikepdf.Array):
            return b"[" + b" ".join(_value(v, numbers, pending, size) for v in value) + b"]"
        return bytes(value.unparse())
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, Decimal | float):
        return format(Decimal(value), "f").encode()
    if value is None:
        return b"null"
    raise ValueError(f"cannot write {type(value).__name__} into a PDF")


def _dictionary(entries: Mapping[str, object], numbers: dict[tuple[int, int], int],
                pending: deque[pikepdf.Object], size: int) -> bytes:
    return b"<< " + b" ".join(
        pikepdf.Name(key).unparse() + b" " + _value(v, numbers, pending, size)
        for key, v in entries.items()) + b" >>"
