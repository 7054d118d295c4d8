"""Rendered front, stamp and volumes → the dossier's parts: grouped within the size budget, joined.

A dossier goes out in parts of about `part_budget` bytes, split at volume boundaries. The first
part holds the front and is joined in full. Every later part is a run of volumes whose pages do
not change from one delivery to the next, so it is joined once as a body (its stamp slot empty),
kept in the cache by the keys of its volumes, and each delivery restamps it: its footer and
document information appended as an incremental update (delivery.pdf.restamp). A kept body that
cannot be read is joined again and replaced. Room is kept for the
front and the stamp at a fixed share of the budget, and for the output intent and metadata of
PDF/A (delivery.pdf.pdfa), so that their few bytes of difference from one delivery to the next
do not move the part boundaries, which would make every body new.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pikepdf

from delivery.artifacts import LETTER_PART, UnsignedPdf
from delivery.dossier.compose import Dossier
from delivery.dossier.render import Texts, pdf_subject, volume_heading
from delivery.errors import RenderError
from delivery.pdf.cache import VolumeCache, content_key
from delivery.pdf.jobs import RenderedPdf
from delivery.pdf.join import PartInfo, PartJob, document_info
from delivery.pdf.pool import render_many
from delivery.pdf.restamp import restamp

BODY_FORMAT = "3"  # part of a body's key: bump when join_part's output changes
FRONT_SHARE = 20  # of the budget kept for the front: 750 kB of 15 MB
STAMP_SHARE = 100  # and for the stamp's fonts, which every part carries: 150 kB
PDFA_BYTES = 8_000  # and for what makes every part PDF/A: the output intent's profile, the XMP
JOIN_WORKER_BUDGET = 10**9  # a join leaves no garbage behind: a worker joins every part it can


class Rendered:
    """The rendered documents of one build: small ones in memory, the rest in the cache."""

    def __init__(self, kept: dict[str, bytes], cache: VolumeCache) -> None:
        self.kept, self.cache = kept, cache

    def size(self, key: str) -> int:
        return len(self.kept[key]) if key in self.kept else self.cache.size(key)

    def has(self, key: str) -> bool:
        return key in self.kept or self.cache.touch(key)

    def put(self, key: str, data: bytes) -> None:
        if not self.cache.put(key, data):
            self.kept[key] = data

    def locate(self, key: str) -> Path | bytes:
        """A rendered volume's cache file, or its bytes if the cache could not take them."""
        data = self.kept.get(key)
        if data is not None:
            return data
        if not self.cache.touch(key):
            raise self._vanished(key)
        return self.cache.path(key)

    def get(self, key: str) -> bytes:
        data = self.kept.get(key)
        if data is None:
            data = self.cache.get(key)
        if data is None:
            raise self._vanished(key)
        return data

    def _vanished(self, key: str) -> RenderError:
        return RenderError(f"rendered document {key[:12]} vanished from the cache folder "
                           f"{self.cache.directory}")


@dataclass(frozen=True)
class PlannedPart:
    pdf: UnsignedPdf  # name and place; pages and data come with the join
    info: PartInfo
    stamp: bytes
    job: PartJob | None  # None: its body is kept
    body_key: str | None  # None: the first part, joined in full with the front
    body_job: PartJob | None  # how to join the body again, if the kept one is unreadable


def split_parts(sizes: Sequence[int], budget: int) -> list[list[int]]:
    """Indices of consecutive items grouped so each group's size stays within budget where it
    can (an item larger than the budget gets a group of its own); the first item (the front)
    always opens the first group."""
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i, size in enumerate(sizes):
        if current and used + size > budget:
            groups.append(current)
            current, used = [], 0
        current.append(i)
        used += size
    if current:
        groups.append(current)
    return groups


def plan_parts(dossier: Dossier, t: Texts, pieces: Mapping[str, str], volumes: Sequence[str],
               rendered: Rendered, part_budget: int, producer: str,
               letter: bool = False) -> list[PlannedPart]:
    """One language's parts. `pieces`: the keys of its front and stamp; `volumes`: of its
    volumes, in order; `letter`: also the letter and summary alone (part LETTER_PART), first."""
    front, stamp = pieces["front"], pieces["stamp"]
    sizes = [max(rendered.size(front), part_budget // FRONT_SHARE)]
    sizes += [rendered.size(v) for v in volumes]
    groups = split_parts(sizes, part_budget - PDFA_BYTES - max(rendered.size(stamp),
                                                               part_budget // STAMP_SHARE))
    stamp_pdf = rendered.get(stamp)
    own = dossier.text(t.language)
    subject = pdf_subject(t, dossier)
    out = []
    for part, group in enumerate(groups, start=1):
        title = own.title
        name = f"dossier-{dossier.campaign_slug}-{t.language}"
        if len(groups) > 1:
            which = t.gettext("part %(part)s of %(parts)s", part=part, parts=len(groups))
            title += f" ({which})"
            name += f"-part{part}of{len(groups)}"
        info = PartInfo(title=title, author=own.sender_name, subject=subject,
                        producer=producer, language=t.language, created_at=dossier.created_at)
        label = f"part {part} of {len(groups)} ({t.language})"
        keys = [volumes[i - 1] for i in group if i > 0]
        located = tuple(rendered.locate(k) for k in keys)
        headings = tuple(volume_heading(t, dossier.volumes[i - 1]) for i in group if i > 0)
        body_key = body_job = None
        if group[0] == 0:
            job: PartJob | None = PartJob(label, info, stamp_pdf, rendered.get(front), located,
                                          headings)
        else:
            body_key = content_key("part-body", BODY_FORMAT, t.language, *keys)
            body_job = PartJob(label, info, None, None, located, headings)
            job = None if rendered.has(body_key) else body_job
        pdf = UnsignedPdf(name=name + ".pdf", language=t.language, part=part,
                          parts=len(groups), pages=0, data=b"")
        out.append(PlannedPart(pdf, info, stamp_pdf, job, body_key, body_job))
    if letter:
        which = t.gettext("letter and summary")
        info = PartInfo(title=f"{own.title} ({which})", author=own.sender_name, subject=subject,
                        producer=producer, language=t.language, created_at=dossier.created_at)
        job = PartJob(f"letter ({t.language})", info, stamp_pdf, rendered.get(front), (), ())
        pdf = UnsignedPdf(name=f"dossier-{dossier.campaign_slug}-{t.language}-letter.pdf",
                          language=t.language, part=LETTER_PART, parts=len(groups), pages=0, data=b"")
        out.insert(0, PlannedPart(pdf, info, stamp_pdf, job, None, None))
    return out


def join_parts(planned: Sequence[PlannedPart], rendered: Rendered, *, workers: int,
               time_limit: float, memory_limit: int | None,
               inline_budget: int) -> list[UnsignedPdf]:
    """Join the parts that need it (in worker processes when it pays), keep new bodies, and
    restamp every body for this delivery."""
    jobs = [p for p in planned if p.job is not None]
    joined: dict[int, RenderedPdf] = {}

    def done(index: int, pdf: RenderedPdf) -> None:
        joined[index] = pdf

    render_many([p.job for p in jobs if p.job is not None], workers=workers,
                time_limit=time_limit, memory_limit=memory_limit, on_done=done,
                worker_budget=JOIN_WORKER_BUDGET, inline_budget=inline_budget)
    results = {id(p): joined.pop(i) for i, p in enumerate(jobs)}
    out = []
    for part in planned:
        new = results.pop(id(part), None)  # each body is let go once its part is stamped
        if part.body_key is None:
            assert new is not None
            out.append(replace(part.pdf, pages=new.pages, data=new.data))
            continue
        if new is not None:
            rendered.put(part.body_key, new.data)
            stamped = _restamp(part, new.data)
        else:
            try:
                stamped = _restamp(part, rendered.get(part.body_key))
            except RenderError:  # the kept body is damaged: join it again, and keep that
                assert part.body_job is not None
                body = part.body_job.draw().data
                rendered.put(part.body_key, body)
                stamped = _restamp(part, body)
        out.append(replace(part.pdf, pages=stamped[1], data=stamped[0]))
    return out


def _restamp(part: PlannedPart, body: bytes) -> tuple[bytes, int]:
    try:
        return restamp(body, part.stamp, document_info(part.info))
    except (ValueError, pikepdf.PdfError) as exc:
        raise RenderError(f"part {part.pdf.part} of {part.pdf.parts} ({part.pdf.language}): "
                          f"the joined pages could not be stamped: {exc}") from exc
