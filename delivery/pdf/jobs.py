"""What a render is asked for and what it gives back: PdfJob (HTML for WeasyPrint), Drawable (a
job drawn by the typesetter), Renderable (either, or a plan that makes one late) → RenderedPdf.

Plain picklable data, so worker processes can take jobs and return results; importing it loads no
PDF engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class PdfJob:
    """One document to render; picklable, so a worker process can take it."""

    label: str  # e.g. "volume 3 (hy)": names the job in errors
    html: str = field(repr=False)
    base_dir: str  # the templates folder: relative links resolve here, nothing else is served
    identifier: bytes  # the PDF /ID: stable, so the same input gives the same bytes
    expected_pages: int | None = None
    cost: int = 1  # relative work (about one per signer line): schedules and batches jobs
    tagged: bool = False  # a tagged PDF (structure tree: headings, paragraphs, tables)

    def job(self) -> PdfJob:
        return self


class Drawable(Protocol):
    """A job drawn without WeasyPrint (see delivery.pdf.typeset); picklable, like PdfJob."""

    @property
    def label(self) -> str: ...

    def draw(self) -> RenderedPdf: ...


class Renderable(Protocol):
    """A job, or a plan that makes its job (and its HTML) only when a worker is ready for it:
    the HTML of a million-signer dossier need never be in memory all at once."""

    @property
    def label(self) -> str: ...

    @property
    def cost(self) -> int: ...

    def job(self) -> PdfJob | Drawable: ...


@dataclass(frozen=True)
class RenderedPdf:
    label: str
    data: bytes = field(repr=False)
    pages: int
    warnings: tuple[str, ...]
    requests: int
