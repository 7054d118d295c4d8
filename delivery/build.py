"""Dossier + templates → one UnsignedPdf per language (or several parts): plan, cache, render, join.

Each language's PDF is the front (letter and summary, laid out by WeasyPrint), then its volumes
(signer lines, withheld signers' lines in the language, "Volume v · page p of n"), drawn by
delivery.typeset, with the delivery's stamp (the dossier footer) laid over every volume page.
Fronts, stamps and volumes are rendered in parallel worker processes; volumes are cached on disk
by the hash of what they show, so a later delivery re-renders only the volumes whose lines
changed, and the join fills each volume's stamp slot once for all its pages.

Page numbering: the front counts its own pages ("page X of Y"); each volume counts its own
("Volume 3 · page 2 of 41"). A full volume's pages then never change when the dossier grows, which
is what makes the cache useful; the signer count sits in the per-delivery stamp, one page that
costs the same for a hundred signers as for a million.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pikepdf

from delivery import render
from delivery.artifacts import UnsignedPdf
from delivery.cache import VolumeCache
from delivery.compose import Dossier, Volume
from delivery.errors import RenderError
from delivery.pdf import ENGINE, PdfJob, Renderable, RenderedPdf, render_many
from delivery.render import Layout, Texts
from delivery.typeset import ENGINE as TYPESET
from delivery.typeset import STAMP, VolumeJob

DEFAULT_TIME_LIMIT = 600.0  # seconds per document
DEFAULT_MEMORY_LIMIT = 3 * 1024**3  # address space per worker; fonts are mapped, not resident
# Job costs, in signer lines' worth of WeasyPrint rendering (measured: a line ~0.6 ms of CPU).
FRONT_COST = 600  # the letter, the summary and its charts: ~0.35 s
PAGE_COST = 12  # the stamp page (margin boxes, a few text lines)
WORKER_BUDGET = 2000  # then a worker process exits: ~20 drawn volumes, or a front and more
TYPESET_SPEEDUP = 20  # a body line drawn by delivery.typeset against one laid out by WeasyPrint
INLINE_BUDGET = 1500  # below this, process start-up costs more than a second core gains


@dataclass(frozen=True)
class _Piece:
    kind: str  # front | stamp | volume
    language: str
    volume: int  # index into dossier.volumes; -1 for front and stamp
    key: str
    plan: Renderable | None  # None when the cache has it


def build_dossier_pdfs(dossier: Dossier, templates_dir: Path, *, languages: Sequence[str],
                       cache_dir: Path | None = None, workers: int | None = None,
                       part_budget: int = 15_000_000,
                       progress: Callable[[int, int], None] | None = None,
                       layout: Layout | None = None, strict: bool = False,
                       time_limit: float = DEFAULT_TIME_LIMIT,
                       memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
                       cache_limit: int = 2 * 1024**3,
                       inline_budget: int = INLINE_BUDGET) -> list[UnsignedPdf]:
    """Build every language's dossier PDF; RenderError (and nothing returned) on any failure.

    strict: warnings (a missing glyph, an ignored CSS rule) fail the build too.
    progress(done, total) counts volumes, a volume being done when it is in every language.
    inline_budget: work (in signer lines) rendered in this process instead of worker
    processes; 0 always uses workers. Rendered volumes go to the cache folder as they finish
    (to a temporary one without `cache_dir`) and are read back one at a time when joined, so
    memory does not grow with the dossier.
    """
    with ExitStack() as stack:
        if cache_dir is None:
            cache_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="volumes-")))
        cache = VolumeCache(cache_dir, cache_limit)
        pdfs = _build(dossier, templates_dir.resolve(), cache, languages=languages,
                      workers=workers or os.cpu_count() or 1, part_budget=part_budget,
                      progress=progress, layout=layout or Layout(), strict=strict,
                      time_limit=time_limit, memory_limit=memory_limit,
                      inline_budget=inline_budget)
        cache.evict()
        return pdfs


def _build(dossier: Dossier, templates_dir: Path, cache: VolumeCache, *,
           languages: Sequence[str], workers: int, part_budget: int,
           progress: Callable[[int, int], None] | None, layout: Layout, strict: bool,
           time_limit: float, memory_limit: int | None,
           inline_budget: int) -> list[UnsignedPdf]:
    planner = _Planner(dossier, templates_dir, layout, cache)
    texts = {lang: render.load_texts(templates_dir, lang) for lang in dict.fromkeys(languages)}
    pieces = [piece for t in texts.values() for piece in planner.language(t)]

    missing = [0] * len(dossier.volumes)
    for p in pieces:
        if p.volume >= 0 and p.plan is not None:
            missing[p.volume] += 1
    total = len(dossier.volumes)
    done = missing.count(0)
    if progress:
        progress(done, total)

    todo = [p for p in pieces if p.plan is not None]
    kept: dict[str, bytes] = {}  # front, stamp, and whatever the cache could not take

    def finished(index: int, pdf: RenderedPdf) -> None:
        nonlocal done
        if strict and pdf.warnings:
            raise RenderError(f"{pdf.label}: {pdf.warnings[0]}")
        item = todo[index]
        if item.volume < 0 or not cache.put(item.key, pdf.data):
            kept[item.key] = pdf.data
        if item.volume >= 0:
            missing[item.volume] -= 1
            if missing[item.volume] == 0:
                done += 1
                if progress:
                    progress(done, total)

    render_many([p.plan for p in todo if p.plan is not None], workers=workers,
                time_limit=time_limit, memory_limit=memory_limit, on_done=finished,
                worker_budget=WORKER_BUDGET, inline_budget=inline_budget)
    parts = _Parts(kept, cache)
    out: list[UnsignedPdf] = []
    for lang, t in texts.items():
        out += _join_language(dossier, t, [p for p in pieces if p.language == lang], parts,
                              part_budget)
    return out


class _Planner:
    """Which documents a dossier needs, their cache keys, and plans for those not cached."""

    def __init__(self, dossier: Dossier, templates_dir: Path, layout: Layout,
                 cache: VolumeCache) -> None:
        self.dossier, self.layout, self.cache = dossier, layout, cache
        self.env = render.make_environment(templates_dir)
        self.base = str(templates_dir)
        self.version = render.template_version(templates_dir, dossier.letter)

    def language(self, t: render.Texts) -> list[_Piece]:
        d, lang, layout = self.dossier, t.language, self.layout
        ident = f"{d.campaign_slug}/{d.dossier_id}/{lang}/{self.version}/{d.signer_count}"
        front_key, stamp_key = _hash("front", ident), _hash("stamp", ident)
        volume_pages = sum(layout.pages_for(len(v.lines)) for v in d.volumes)
        pieces = [
            _Piece("front", lang, -1, front_key, PdfJob(
                f"front ({lang})", render.front_html(self.env, t, d, volume_pages=volume_pages),
                self.base, bytes.fromhex(front_key[:32]), cost=FRONT_COST)),
            _Piece("stamp", lang, -1, stamp_key, PdfJob(
                f"stamp ({lang})", render.stamp_html(self.env, t, d), self.base,
                bytes.fromhex(stamp_key[:32]), expected_pages=1, cost=PAGE_COST)),
        ]
        for i, volume in enumerate(d.volumes):
            key = volume_key(volume, lang, self.version, layout)
            plan = None
            if not self.cache.touch(key):
                plan = VolumeJob(f"volume {volume.number} ({lang})", t, volume, layout,
                                 bytes.fromhex(key[:32]), _volume_cost(volume))
            pieces.append(_Piece("volume", lang, i, key, plan))
        return pieces


def _volume_cost(volume: Volume) -> int:
    return max(1, len(volume.lines) // TYPESET_SPEEDUP)


class _Parts:
    """The rendered documents of one build: small ones in memory, volumes read from the cache."""

    def __init__(self, kept: dict[str, bytes], cache: VolumeCache) -> None:
        self.kept, self.cache = kept, cache

    def size(self, key: str) -> int:
        return len(self.kept[key]) if key in self.kept else self.cache.size(key)

    def get(self, key: str) -> bytes:
        data = self.kept.get(key)
        if data is None:
            data = self.cache.get(key)
        if data is None:
            raise RenderError(f"rendered document {key[:12]} vanished from the cache folder "
                              f"{self.cache.directory}")
        return data


def volume_key(volume: Volume, language: str, template_version: str, layout: Layout) -> str:
    """The hash of exactly what a volume's pages show in `language` and how they are drawn."""
    digest = hashlib.sha256(f"volume\x1e{TYPESET}\x1e{template_version}\x1e{language}\x1e"
                            f"{layout.key()}\x1e{volume.number}\x1e{volume.first}\x1e"
                            f"{volume.last}\x1e".encode())
    withheld = "\x00"
    digest.update("".join([
        f"{line.number}\x1f{withheld if line.name is None else line.name}\x1f{line.city}\x1f"
        f"{line.country}\x1f{line.signed_on.isoformat()}\x1e" for line in volume.lines]).encode())
    return digest.hexdigest()


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


def _join_language(dossier: Dossier, t: Texts, planned: Sequence[_Piece], parts: _Parts,
                   part_budget: int) -> list[UnsignedPdf]:
    front = next(p for p in planned if p.kind == "front")
    stamp = next(p for p in planned if p.kind == "stamp")
    volumes = [p for p in planned if p.kind == "volume"]
    sizes = [parts.size(front.key)] + [parts.size(v.key) for v in volumes]
    # every part carries the stamp's fonts once: keep room for them
    groups = split_parts(sizes, part_budget - parts.size(stamp.key))
    stamp_pdf = pikepdf.open(io.BytesIO(parts.get(stamp.key)))
    out: list[UnsignedPdf] = []
    for part, group in enumerate(groups, start=1):
        pdf = pikepdf.new()
        if group[0] == 0:
            pdf.pages.extend(pikepdf.open(io.BytesIO(parts.get(front.key))).pages)
        footer = pdf.copy_foreign(stamp_pdf.pages[0].as_form_xobject())
        for i in group:
            if i > 0:
                _append_volume(pdf, parts.get(volumes[i - 1].key), footer)
        _set_metadata(pdf, dossier, t, part, len(groups))
        buffer = io.BytesIO()
        pdf.save(buffer, deterministic_id=True, compress_streams=True,
                 object_stream_mode=pikepdf.ObjectStreamMode.generate)
        name = f"dossier-{dossier.campaign_slug}-{t.language}"
        if len(groups) > 1:
            name += f"-part{part}of{len(groups)}"
        out.append(UnsignedPdf(name=name + ".pdf", language=t.language, part=part,
                               parts=len(groups), pages=int(pdf.Root.Pages.Count),
                               data=buffer.getvalue()))
    return out


def _append_volume(pdf: pikepdf.Pdf, data: bytes, footer: pikepdf.Object) -> None:
    """Add a volume's pages under a page tree node of their own, and put the footer in its
    stamp slot. (pikepdf's pages.extend looks through every page already there for each one
    it adds: a million-signer dossier took seconds joining. A node per volume is linear.)"""
    source = pikepdf.open(io.BytesIO(data))
    root = pdf.Root.Pages
    pages = [pdf.copy_foreign(page) for page in source.Root.Pages.Kids]
    node = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Pages, Parent=root, Kids=pikepdf.Array(pages), Count=len(pages)))
    for page in pages:
        page.Parent = node
    root.Kids.append(node)
    root.Count = int(root.Count) + len(pages)
    # the volume's pages share one resource dictionary: one slot to fill for all of them
    pages[0].Resources.XObject[pikepdf.Name("/" + STAMP)] = footer


def _set_metadata(pdf: pikepdf.Pdf, dossier: Dossier, t: Texts, part: int, parts: int) -> None:
    title = dossier.campaign_title
    if parts > 1:
        title += f" ({t('part', part=part, parts=parts)})"
    addressees = ", ".join(a.name for a in dossier.addressees)
    stamp = _pdf_date(dossier.created_at)
    pdf.docinfo = pdf.make_indirect(pikepdf.Dictionary(
        Title=pikepdf.String(title),
        Author=pikepdf.String(dossier.sender_name),
        Subject=pikepdf.String(t("pdf_subject", count=dossier.signer_count,
                                 addressees=addressees)),
        Creator=pikepdf.String("petition-delivery"),
        Producer=pikepdf.String(f"{ENGINE}, {TYPESET}, pikepdf"),
        CreationDate=pikepdf.String(stamp),
        ModDate=pikepdf.String(stamp),
    ))
    pdf.Root.Lang = pikepdf.String(t.language)


def _pdf_date(moment: datetime) -> str:
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("D:%Y%m%d%H%M%S+00'00'")


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()
