"""Dossier + templates → one UnsignedPdf per language (or several parts): plan, cache, render, join.

Each language's PDF is the front (letter and summary), then every volume body with the stamp
laid over its pages (volume heading on its first page, dossier footer on all). Volume bodies are
rendered in parallel worker processes, each its own WeasyPrint job, and cached on disk by the
hash of what they show: a later delivery re-renders only the volumes whose lines changed.

Page numbering: the front counts its own pages ("page X of Y"); each volume counts its own
("Volume 3 · page 2 of 41"). A full volume's pages then never change when the dossier grows, which
is what makes the cache useful; the totals (volumes, signers) sit in the per-delivery stamp.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pikepdf
from jinja2 import Environment

from delivery import render
from delivery.artifacts import UnsignedPdf
from delivery.compose import Dossier, Volume
from delivery.errors import RenderError
from delivery.pdf import ENGINE, PdfJob, RenderedPdf, render_many
from delivery.render import Layout, Texts

DEFAULT_TIME_LIMIT = 600.0  # seconds per document
DEFAULT_MEMORY_LIMIT = 3 * 1024**3  # address space per worker; fonts are mapped, not resident


@dataclass(frozen=True)
class _Planned:
    language: str
    kind: str  # front | stamp | volume
    volume: Volume | None
    key: str
    job: PdfJob | None  # None when the cache had it


def build_dossier_pdfs(dossier: Dossier, templates_dir: Path, *, languages: Sequence[str],
                       cache_dir: Path | None = None, workers: int | None = None,
                       part_budget: int = 15_000_000,
                       progress: Callable[[int, int], None] | None = None,
                       layout: Layout | None = None, strict: bool = False,
                       time_limit: float = DEFAULT_TIME_LIMIT,
                       memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
                       cache_limit: int = 2 * 1024**3) -> list[UnsignedPdf]:
    """Build every language's dossier PDF; RenderError (and nothing returned) on any failure.

    strict: WeasyPrint warnings (a missing glyph, an ignored CSS rule) fail the build too.
    """
    layout = layout or Layout()
    templates_dir = templates_dir.resolve()
    env = render.make_environment(templates_dir)
    version = render.template_version(templates_dir, dossier.letter)
    cache = VolumeCache(cache_dir, cache_limit) if cache_dir is not None else None
    texts = {lang: render.load_texts(templates_dir, lang) for lang in dict.fromkeys(languages)}
    volume_pages = sum(layout.pages_for(len(v.lines)) for v in dossier.volumes)

    planned: list[_Planned] = []
    for t in texts.values():
        planned += _plan_language(dossier, env, t, templates_dir, version, layout, cache,
                                  volume_pages)
    total = sum(1 for p in planned if p.kind == "volume")
    done = sum(1 for p in planned if p.kind == "volume" and p.job is None)
    if progress:
        progress(done, total)

    todo = [p for p in planned if p.job is not None]
    results: dict[str, bytes] = {}

    def finished(index: int, pdf: RenderedPdf) -> None:
        nonlocal done
        if strict and pdf.warnings:
            raise RenderError(f"{pdf.label}: WeasyPrint warned: {pdf.warnings[0]}")
        item = todo[index]
        results[item.key] = pdf.data
        if item.kind == "volume":
            if cache is not None:
                cache.put(item.key, pdf.data)
            done += 1
            if progress:
                progress(done, total)

    render_many([p.job for p in todo if p.job is not None],
                workers=workers or os.cpu_count() or 1, time_limit=time_limit,
                memory_limit=memory_limit, on_done=finished)
    for p in planned:
        if p.key not in results:
            data = cache.get(p.key) if cache is not None else None
            if data is None:
                raise RenderError(f"{p.kind} {p.key[:12]}: vanished from the cache")
            results[p.key] = data
    if cache is not None:
        cache.evict()

    out: list[UnsignedPdf] = []
    for lang, t in texts.items():
        mine = [p for p in planned if p.language == lang]
        out += _join_language(dossier, t, mine, results, part_budget)
    return out


def _plan_language(dossier: Dossier, env: Environment, t: Texts, templates_dir: Path,
                   version: str, layout: Layout, cache: VolumeCache | None,
                   volume_pages: int) -> list[_Planned]:
    lang = t.language
    base = str(templates_dir)
    ident = f"{dossier.campaign_slug}/{dossier.dossier_id}/{lang}/{version}/{dossier.signer_count}"
    front_key = _hash("front", ident)
    stamp_key = _hash("stamp", ident)
    planned = [
        _Planned(lang, "front", None, front_key, PdfJob(
            f"front ({lang})", render.front_html(env, t, dossier, volume_pages=volume_pages),
            base, bytes.fromhex(front_key[:32]))),
        _Planned(lang, "stamp", None, stamp_key, PdfJob(
            f"stamp ({lang})", render.stamp_html(env, t, dossier), base,
            bytes.fromhex(stamp_key[:32]), expected_pages=len(dossier.volumes) + 1)),
    ]
    for volume in dossier.volumes:
        key = volume_key(volume, lang, version, layout)
        job = None
        if cache is None or not cache.has(key):
            job = PdfJob(f"volume {volume.number} ({lang})",
                         render.volume_html(env, t, volume, layout), base,
                         bytes.fromhex(key[:32]), expected_pages=layout.pages_for(len(volume.lines)))
        planned.append(_Planned(lang, "volume", volume, key, job))
    return planned


def volume_key(volume: Volume, language: str, template_version: str, layout: Layout) -> str:
    """The hash of exactly what a volume body shows and how it is drawn."""
    digest = hashlib.sha256()
    digest.update(f"{ENGINE}\x1e{template_version}\x1e{language}\x1e{layout.key()}\x1e"
                  f"{volume.number}\x1e".encode())
    for line in volume.lines:
        name = "\x00" if line.name is None else line.name
        digest.update(f"{line.number}\x1f{name}\x1f{line.city}\x1f{line.country}\x1f"
                      f"{line.signed_on.isoformat()}\x1e".encode())
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


def _join_language(dossier: Dossier, t: Texts, planned: Sequence[_Planned],
                   results: dict[str, bytes], part_budget: int) -> list[UnsignedPdf]:
    front = next(p for p in planned if p.kind == "front")
    stamp = next(p for p in planned if p.kind == "stamp")
    volumes = [p for p in planned if p.kind == "volume"]
    sizes = [len(results[front.key])] + [len(results[v.key]) for v in volumes]
    # every part carries the stamp's fonts once: keep room for them
    groups = split_parts(sizes, part_budget - len(results[stamp.key]))
    stamp_pdf = pikepdf.open(io.BytesIO(results[stamp.key]))
    out: list[UnsignedPdf] = []
    for part, group in enumerate(groups, start=1):
        pdf = pikepdf.new()
        overlay = _Overlay(pdf)
        footer: pikepdf.Object | None = None
        for i in group:
            if i == 0:
                _append(pdf, results[front.key])
                continue
            if footer is None:
                footer = pdf.copy_foreign(stamp_pdf.pages[0].as_form_xobject())
            item = volumes[i - 1]
            assert item.volume is not None
            heading = pdf.copy_foreign(stamp_pdf.pages[i].as_form_xobject())
            first = len(pdf.pages)
            _append(pdf, results[item.key])
            for n in range(first, len(pdf.pages)):
                overlay.apply(pdf.pages[n], heading if n == first else footer)
        _set_metadata(pdf, dossier, t, part, len(groups))
        buffer = io.BytesIO()
        pdf.save(buffer, deterministic_id=True, compress_streams=True,
                 object_stream_mode=pikepdf.ObjectStreamMode.generate)
        name = f"dossier-{dossier.campaign_slug}-{t.language}"
        if len(groups) > 1:
            name += f"-part{part}of{len(groups)}"
        out.append(UnsignedPdf(name=name + ".pdf", language=t.language, part=part,
                               parts=len(groups), pages=len(pdf.pages), data=buffer.getvalue()))
    return out


class VolumeCache:
    """Rendered volume bodies on disk, by key; survives restarts, bounded in bytes (the least
    recently used go first: a hit refreshes a file's mtime)."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RenderError(f"cache folder {directory}: {exc}") from exc

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.pdf"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        try:
            data = path.read_bytes()
            os.utime(path)
        except OSError:
            return None
        return data

    def put(self, key: str, data: bytes) -> None:
        path = self.path(key)
        temp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            temp.write_bytes(data)
            os.replace(temp, path)
        except OSError:
            temp.unlink(missing_ok=True)  # a cache that cannot be written only costs time

    def evict(self) -> None:
        entries = []
        for path in self.directory.glob("*.pdf"):
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((stat.st_mtime, path.name, stat.st_size, path))
        used = sum(e[2] for e in entries)
        for _mtime, _name, size, path in sorted(entries):
            if used <= self.limit:
                break
            path.unlink(missing_ok=True)
            used -= size


class _Overlay:
    """Lays a form XObject over a page under a fixed resource name, with shared content streams:
    pikepdf's add_overlay picks random names, which would make the bytes differ per build."""

    NAME = pikepdf.Name("/DossierStamp")

    def __init__(self, pdf: pikepdf.Pdf) -> None:
        self.before = pdf.make_indirect(pikepdf.Stream(pdf, b"q\n"))
        self.after = pdf.make_indirect(pikepdf.Stream(pdf, b"\nQ\nq /DossierStamp Do Q\n"))

    def apply(self, page: pikepdf.Page, xobject: pikepdf.Object) -> None:
        # Copies: WeasyPrint may share one resource dictionary between pages.
        old: Any = page.obj.get("/Resources")
        resources = pikepdf.Dictionary(dict(old.items()) if old else {})
        old = resources.get("/XObject")
        xobjects = pikepdf.Dictionary(dict(old.items()) if old else {})
        xobjects[self.NAME] = xobject
        resources.XObject = xobjects
        page.obj.Resources = resources
        page.contents_add(self.before, prepend=True)
        page.contents_add(self.after, prepend=False)


def _append(pdf: pikepdf.Pdf, data: bytes) -> None:
    source = pikepdf.open(io.BytesIO(data))
    pdf.pages.extend(source.pages)


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
        Producer=pikepdf.String(f"{ENGINE}, pikepdf"),
        CreationDate=pikepdf.String(stamp),
        ModDate=pikepdf.String(stamp),
    ))
    pdf.Root.Lang = pikepdf.String(t.language)


def _pdf_date(moment: datetime) -> str:
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("D:%Y%m%d%H%M%S+00'00'")


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()
