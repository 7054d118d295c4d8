"""Dossier + templates → one UnsignedPdf per language (or several parts): plan, cache, render, join.

Each language's PDF is the front (letter and summary, laid out by WeasyPrint), then its volumes
(signer lines, withheld signers' lines in the language, "Volume v · page p of n"), drawn by
delivery.pdf.typeset, with the delivery's stamp (the dossier footer) laid over every volume page.
Fronts, stamps and volumes are rendered in parallel worker processes; volumes are cached on disk
by the hash of what they show, so a later delivery re-renders only the volumes whose lines
changed. A volume given without its lines (see delivery.dossier.stored) has them read only when
it must be drawn. Then each part is joined (delivery.pdf.join), in parallel too, as a PDF/A-3b
file (delivery.pdf.pdfa).

Page numbering: the front counts its own pages ("page X of Y"); each volume counts its own
("Volume 3 · page 2 of 41"). A full volume's pages then never change when the dossier grows, which
is what makes the cache useful; the signer count sits in the per-delivery stamp, one page that
costs the same for a hundred signers as for a million.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from delivery.artifacts import PART_BYTES, UnsignedPdf
from delivery.campaigns.templates import letter_overrides
from delivery.dossier import charts, render
from delivery.dossier.compose import Dossier, Line, Volume, line_digest
from delivery.dossier.render import Layout, Texts
from delivery.errors import RenderError
from delivery.pdf.cache import VolumeCache, content_key
from delivery.pdf.jobs import PdfJob, Renderable, RenderedPdf
from delivery.pdf.parts import Rendered, join_parts, plan_parts
from delivery.pdf.pool import render_many
from delivery.pdf.text.fonts import chain
from delivery.pdf.text.shape import text_width
from delivery.pdf.typeset import ENGINE as TYPESET
from delivery.pdf.typeset import VolumeJob
from delivery.pdf.weasy import ENGINE, PDF_VARIANT

DEFAULT_TIME_LIMIT = 600.0  # seconds per document
DEFAULT_MEMORY_LIMIT = 3 * 1024**3  # address space per worker; fonts are mapped, not resident
# Job costs, in signer lines' worth of WeasyPrint rendering (measured: a line ~0.6 ms of CPU).
FRONT_COST = 600  # the letter, the summary and its charts: ~0.35 s
PAGE_COST = 12  # the stamp page (margin boxes, a few text lines)
WORKER_BUDGET = 2000  # then a worker process exits: ~20 drawn volumes, or a front and more
TYPESET_SPEEDUP = 20  # a body line drawn by delivery.pdf.typeset against one laid out by WeasyPrint
INLINE_BUDGET = 1500  # below this, process start-up costs more than a second core gains

LineReader = Callable[[Volume], Sequence[Line]]


@dataclass(frozen=True)
class _Piece:
    kind: str  # front | stamp | volume
    language: str
    volume: int  # index into dossier.volumes; -1 for front and stamp
    key: str
    plan: Renderable | None  # None when the cache has it


def build_dossier_pdfs(dossier: Dossier, templates_dir: Path, *, languages: Sequence[str],
                       cache_dir: Path | None = None, workers: int | None = None,
                       part_budget: int = PART_BYTES,
                       progress: Callable[[int, int], None] | None = None,
                       layout: Layout | None = None, strict: bool = False,
                       time_limit: float = DEFAULT_TIME_LIMIT,
                       memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
                       cache_limit: int = 2 * 1024**3,
                       inline_budget: int = INLINE_BUDGET,
                       read_lines: LineReader | None = None,
                       letters: Sequence[str] = ()) -> list[UnsignedPdf]:
    """Build every language's dossier PDF; RenderError (and nothing returned) on any failure.

    letters: the languages whose letter and summary are also wanted alone (part 0, first), for
    the e-mails of download links.

    strict: warnings (a missing glyph, an ignored CSS rule) fail the build too.
    progress(done, total) counts volumes, a volume being done when it is in every language.
    inline_budget: work (in signer lines) rendered in this process instead of worker
    processes; 0 always uses workers. Rendered volumes go to the cache folder as they finish
    (to a temporary one without `cache_dir`) and are read back one at a time when joined, so
    memory does not grow with the dossier.
    read_lines(volume): the lines of a volume given without them (`lines` None), called only
    for those that must be drawn.
    """
    with ExitStack() as stack:
        if cache_dir is None:
            cache_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="volumes-")))
        cache = VolumeCache(cache_dir, cache_limit)
        fronts = VolumeCache(cache_dir / FRONTS_DIR, FRONTS_LIMIT)
        pdfs = _build(dossier, templates_dir.resolve(), cache, fronts, languages=languages,
                      workers=workers or os.cpu_count() or 1, part_budget=part_budget,
                      progress=progress, layout=layout or Layout(), strict=strict,
                      time_limit=time_limit, memory_limit=memory_limit,
                      inline_budget=inline_budget, read_lines=read_lines, letters=letters)
        cache.evict()
        fronts.evict()
        return pdfs


def _build(dossier: Dossier, templates_dir: Path, cache: VolumeCache, fronts: VolumeCache, *,
           languages: Sequence[str], workers: int, part_budget: int,
           progress: Callable[[int, int], None] | None, layout: Layout, strict: bool,
           time_limit: float, memory_limit: int | None,
           inline_budget: int, read_lines: LineReader | None,
           letters: Sequence[str] = ()) -> list[UnsignedPdf]:
    planner = _Planner(dossier, templates_dir, layout, cache, fronts, read_lines)
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
    kept = dict(planner.cached_fronts)  # fronts, stamps, and whatever the cache could not take

    def finished(index: int, pdf: RenderedPdf) -> None:
        nonlocal done
        if strict and pdf.warnings:
            raise RenderError(f"{pdf.label}: {pdf.warnings[0]}")
        item = todo[index]
        if item.volume < 0:  # wanted again at once, for the join: kept, and cached for later builds
            kept[item.key] = pdf.data
            fronts.put(item.key, pdf.data)
        elif not cache.put(item.key, pdf.data):
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
    store = Rendered(kept, cache)
    producer = f"{ENGINE}, {TYPESET}, pikepdf"
    planned = [part for lang, t in texts.items() for part in plan_parts(
        dossier, t, {p.kind: p.key for p in pieces if p.language == lang and p.volume < 0},
        [p.key for p in pieces if p.language == lang and p.volume >= 0], store, part_budget,
        producer, letter=lang in letters)]
    return join_parts(planned, store, workers=workers, time_limit=time_limit,
                      memory_limit=memory_limit, inline_budget=inline_budget)


def bar_label_width(label: str) -> float:
    """A bar label's drawn width in px, shaped (HarfBuzz) in the fonts fontconfig gives the
    chart's family list, as the summary page draws it."""
    return text_width(label, chain(charts.FONT), charts.LABEL_SIZE)


class _Planner:
    """Which documents a dossier needs, their cache keys, and plans for those not cached."""

    def __init__(self, dossier: Dossier, templates_dir: Path, layout: Layout,
                 cache: VolumeCache, fronts: VolumeCache, read_lines: LineReader | None) -> None:
        self.dossier, self.layout, self.cache, self.fronts = dossier, layout, cache, fronts
        self.cached_fronts: dict[str, bytes] = {}  # front and stamp documents the cache had
        self.read_lines = read_lines
        self.templates_dir = templates_dir
        self.base = str(templates_dir)
        self.version = render.template_version(templates_dir, dossier.letter)

    def language(self, t: render.Texts) -> list[_Piece]:
        d, lang, layout = self.dossier, t.language, self.layout
        env = render.make_environment(self.templates_dir, t,
                                      overrides=letter_overrides(self.dossier.letter, self.dossier.letters))
        volume_pages = sum(layout.pages_for(v.facts.lines) for v in d.volumes)
        # the front and the stamp are cached by the hash of their HTML, which holds all they
        # show: a build of the same delivery again (a retry once the timestamp service answers)
        # renders neither; any change of a count, the letter, a recipient or the language does
        front_html = render.front_html(env, t, d, volume_pages=volume_pages, measure=bar_label_width)
        stamp_html = render.stamp_html(env, t, d)
        front_key = content_key("front", ENGINE, PDF_VARIANT, self.version, _digest(front_html))
        stamp_key = content_key("stamp", ENGINE, PDF_VARIANT, self.version, _digest(stamp_html))
        pieces = [
            _Piece("front", lang, -1, front_key, self._unless_cached(front_key, PdfJob(
                f"front ({lang})", front_html, self.base, bytes.fromhex(front_key[:32]),
                cost=FRONT_COST, tagged=True))),
            _Piece("stamp", lang, -1, stamp_key, self._unless_cached(stamp_key, PdfJob(
                f"stamp ({lang})", stamp_html, self.base, bytes.fromhex(stamp_key[:32]),
                expected_pages=1, cost=PAGE_COST))),
        ]
        for i, volume in enumerate(d.volumes):
            key = volume_key(volume, lang, self.version, layout)
            plan = None
            if not self.cache.touch(key):
                if volume.lines is None and self.read_lines is None:
                    raise RenderError(f"volume {volume.number} must be drawn but its lines were "
                                      "not read, and there is no way to read them")
                plan = _VolumePlan(f"volume {volume.number} ({lang})", t, volume, layout,
                                   bytes.fromhex(key[:32]), _volume_cost(volume),
                                   self.read_lines)
            pieces.append(_Piece("volume", lang, i, key, plan))
        return pieces


    def _unless_cached(self, key: str, job: PdfJob) -> PdfJob | None:
        """None when the cache has the document (then read now: a few hundred kB at most)."""
        data = self.fronts.get(key)
        if data is None:
            return job
        self.cached_fronts[key] = data
        return None


@dataclass(frozen=True)
class _VolumePlan:
    """A volume to draw; its lines, if the dossier left them unread, are read only when a
    worker is ready for it, so they are never all in memory at once."""

    label: str
    texts: Texts
    volume: Volume
    layout: Layout
    identifier: bytes
    cost: int
    read_lines: LineReader | None

    def job(self) -> VolumeJob:
        volume = self.volume
        if volume.lines is None:
            assert self.read_lines is not None  # checked when planned
            lines = self.read_lines(volume)
            if line_digest(lines) != volume.facts.digest:
                raise RenderError(f"volume {volume.number}: its signers read now are not the "
                                  "ones the dossier was composed from")
            volume = replace(volume, lines=lines)
        return VolumeJob(self.label, self.texts, volume, self.layout, self.identifier, self.cost)


FRONTS_DIR = "fronts"  # under the cache folder: fronts and stamps apart from the volumes
FRONTS_LIMIT = 256 * 1024**2


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _volume_cost(volume: Volume) -> int:
    return max(1, volume.facts.lines // TYPESET_SPEEDUP)


def volume_key(volume: Volume, language: str, template_version: str, layout: Layout) -> str:
    """The hash of exactly what a volume's pages show in `language` and how they are drawn."""
    return content_key("volume", TYPESET, template_version, language, layout.key(), str(volume.number),
                 str(volume.first), str(volume.last), volume.facts.digest)


