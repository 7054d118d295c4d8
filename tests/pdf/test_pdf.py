"""delivery.pdf.weasy: the templates-only URL fetcher, warnings, page checks, the worker pool."""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
from datetime import date
from pathlib import Path

import pypdf
import pytest
from fontTools.ttLib import TTFont

from delivery.dossier import render
from delivery.dossier.compose import Line, Volume
from delivery.errors import RenderError
from delivery.pdf.jobs import PdfJob, RenderedPdf
from delivery.pdf.pool import render_job, render_many
from delivery.pdf.weasy import FetchRefused, TemplateFetcher, stable_font_date

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
ID = b"0123456789abcdef"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "style.css").write_text("p { color: red; }")
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "templates" / "link.css").symlink_to(tmp_path / "secret.txt")
    return tmp_path / "templates"


def test_fetcher_serves_files_under_the_templates_folder(root: Path) -> None:
    fetcher = TemplateFetcher(root)
    response = fetcher.fetch((root / "style.css").as_uri())
    assert response.read() == b"p { color: red; }"
    assert fetcher.requests == 1 and fetcher.refused == 0


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "{root}/../secret.txt",
    "{root}/%2e%2e/secret.txt",
    "{root}/link.css",  # a symlink leading out of the folder
    "{root}/missing.css",
    "http://127.0.0.1/style.css",
    "https://example.org/x.png",
    "data:text/css,p{color:red}",
    "ftp://example.org/x",
    "file://otherhost{path}/style.css",
])
def test_fetcher_refuses_everything_else(root: Path, url: str) -> None:
    fetcher = TemplateFetcher(root)
    with pytest.raises(FetchRefused, match="refused to fetch"):
        fetcher.fetch(url.replace("{root}", root.as_uri()).replace("{path}", str(root)))
    assert fetcher.refused == 1 and fetcher.requests == 1


def test_a_document_asking_for_an_outside_file_fails_to_render(root: Path) -> None:
    job = PdfJob("volume 9 (en)", '<p>x</p><img src="file:///etc/passwd">', str(root), ID)
    with pytest.raises(RenderError, match=r"^volume 9 \(en\): refused to fetch 'file:///etc/passwd'"):
        render_job(job)


def test_hostile_names_cause_no_fetch(caplog: pytest.LogCaptureFixture) -> None:
    volume = Volume.of_lines(1, 1, 1, 2, [
        Line(1, '<img src="file:///etc/passwd">', "<link rel=stylesheet href=http://x/>",
             "<style>@import 'file:///etc/shadow'</style>", _day()),
        Line(2, "<b>Anna</b> {{ 7*7 }}", "Yerevan", "Armenia", _day())])
    env = render.make_environment(TEMPLATES)
    html = render.volume_html(env, volume, render.Layout())
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        pdf = render_job(PdfJob("volume 1", html, str(TEMPLATES), ID, expected_pages=1))
    assert pdf.requests == 1  # the dossier stylesheet, nothing else
    assert pdf.warnings == ()
    assert not caplog.records
    text = pypdf.PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert '<img src="file:///etc/passwd">' in text and "{{ 7*7 }}" in text


def test_weasyprint_warnings_are_collected(root: Path) -> None:
    pdf = render_job(PdfJob("front (en)", "<style>p { unicode-bidi: isolate }</style><p>x</p>",
                            str(root), ID))
    assert any("unicode-bidi" in w for w in pdf.warnings)


def test_missing_glyphs_are_reported_as_warnings(root: Path) -> None:
    pdf = render_job(PdfJob("volume 1 (en)", "<p>\U000f0000 private use</p>", str(root), ID))
    assert any(".notdef" in w for w in pdf.warnings)


def test_page_count_is_checked_against_the_plan(root: Path) -> None:
    with pytest.raises(RenderError, match="2 pages instead of the planned 1"):
        render_job(PdfJob("volume 2 (hy)", '<p>a</p><p style="break-before: page">b</p>',
                          str(root), ID, expected_pages=1))


def test_same_job_same_bytes(root: Path) -> None:
    job = PdfJob("front (en)", "<p>Zoë 王小明 🌍 محمد</p>", str(root), ID)
    assert render_job(job).data == render_job(job).data


def test_render_many_reports_each_job(root: Path) -> None:
    jobs = [PdfJob(f"volume {i} (en)", f"<p>{i}</p>" + '<p style="break-before:page">x</p>' * i,
                   str(root), ID) for i in range(1, 4)]
    done: dict[int, RenderedPdf] = {}
    render_many(jobs, workers=2, time_limit=60, memory_limit=None,
                on_done=lambda i, pdf: done.__setitem__(i, pdf))
    assert {i: p.pages for i, p in done.items()} == {0: 2, 1: 3, 2: 4}


def test_render_many_passes_small_jobs_to_a_reused_worker_and_names_a_failure(
        root: Path) -> None:
    jobs = [PdfJob(f"volume {i} (en)", f"<p>{i}</p>", str(root), ID, cost=3) for i in (1, 2)]
    jobs.append(PdfJob("volume 3 (en)", '<img src="file:///etc/passwd">', str(root), ID, cost=3))
    done: list[int] = []
    with pytest.raises(RenderError, match=r"^volume 3 \(en\): refused"):
        render_many(jobs, workers=1, time_limit=60, memory_limit=None, worker_budget=9,
                    on_done=lambda i, p: done.append(i))
    assert done == [0, 1]


def test_render_many_renders_tiny_batches_in_this_process(root: Path) -> None:
    jobs = [PdfJob(f"volume {i} (en)", f"<p>{i}</p>", str(root), ID, cost=5) for i in (1, 2)]
    done: list[int] = []
    before = multiprocessing.active_children()
    # 1 byte of address space would kill any worker: this can only pass in this process
    render_many(jobs, workers=2, time_limit=60, memory_limit=1, inline_budget=10,
                on_done=lambda i, p: done.append(i))
    assert done == [0, 1] and multiprocessing.active_children() == before
    with pytest.raises(RenderError, match=r"^volume 1 \(en\): took longer than the limit"):
        render_many(jobs, workers=2, time_limit=0.0, memory_limit=None, inline_budget=10,
                    on_done=lambda i, p: None)


def test_render_many_time_limit_names_the_job(root: Path) -> None:
    jobs = [PdfJob("volume 7 (en)", "<p>x</p>" * 20_000, str(root), ID)]
    with pytest.raises(RenderError, match=r"^volume 7 \(en\): took longer than the limit of 0.2 s"):
        render_many(jobs, workers=1, time_limit=0.2, memory_limit=None, on_done=lambda i, p: None)


def test_render_many_dead_worker_names_the_job(root: Path) -> None:
    jobs = [PdfJob("volume 5 (hy)", "<p>x</p>" * 2000, str(root), ID)]
    with pytest.raises(RenderError, match=r"^volume 5 \(hy\): "):
        render_many(jobs, workers=1, time_limit=60, memory_limit=120 * 2**20,
                    on_done=lambda i, p: None)


def test_render_many_failure_stops_the_batch(root: Path) -> None:
    jobs = [PdfJob("volume 1 (en)", '<img src="file:///etc/passwd">', str(root), ID),
            *[PdfJob(f"volume {i} (en)", "<p>x</p>", str(root), ID) for i in range(2, 6)]]
    done: list[int] = []
    with pytest.raises(RenderError, match=r"^volume 1 \(en\): refused"):
        render_many(jobs, workers=1, time_limit=60, memory_limit=None,
                    on_done=lambda i, p: done.append(i))
    assert done == []


def test_stable_font_date_keeps_a_valid_font() -> None:
    path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    original = path.read_bytes()
    font = TTFont(io.BytesIO(original))
    font["head"].modified = font["head"].created + 12345
    buffer = io.BytesIO()
    font.save(buffer, reorderTables=False)
    fixed = stable_font_date(buffer.getvalue())
    again = TTFont(io.BytesIO(fixed), checkChecksums=2)  # raises on a wrong table checksum
    assert again["head"].modified == again["head"].created
    assert len(fixed) == len(buffer.getvalue())
    assert stable_font_date(fixed) == fixed
    assert stable_font_date(b"short") == b"short"


def _day() -> date:
    return date(2024, 1, 29)


def test_only_pdf_module_imports_weasyprint() -> None:
    importers = [p.relative_to(REPO).as_posix() for p in (REPO / "delivery").rglob("*.py")
                 if "import weasyprint" in p.read_text() or "from weasyprint" in p.read_text()]
    assert importers == ["delivery/pdf/weasy.py"]
    assert os.path.exists(TEMPLATES / "dossier" / "dossier.css")


def test_render_many_worker_dead_before_it_takes_its_job_names_the_job(root: Path) -> None:
    # too little memory to even receive the job: the worker dies while the job is being sent
    jobs = [PdfJob("volume 7 (en)", "<p>signer</p>" * 800_000, str(root), ID)]
    with pytest.raises(RenderError, match=r"^volume 7 \(en\): the worker process died"):
        render_many(jobs, workers=1, time_limit=60, memory_limit=1, on_done=lambda i, p: None)
