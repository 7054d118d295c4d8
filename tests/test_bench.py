"""bench/dossier.py, bench/delivery.py and bench/signing.py run end to end on a small petition and report
what they measured."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^(cold|warm) .*wall +([\d.]+) s +cpu +([\d.]+) s +peak +(\d+) MB +(\d+) pages "
                  r"+([\d.]+) MB$")
MEASURED = re.compile(r"^(tick|preview|send --dry-run|status|--help) (.+?) +wall +([\d.]+) s "
                      r"+cpu +([\d.]+) s +peak +(\d+) MB +(\d+) pages +([\d.]+) MB$")
SIGNED = re.compile(r"^(sequential|threads ×2|processes ×2 cold|processes ×2 warm) +wall +([\d.]+) s "
                    r"\(best +([\d.]+)\) +cpu +([\d.]+) s +peak +(\d+) MB +(\d+) pages +([\d.]+) MB"
                    r"(?:   ×([\d.]+) wall, ×([\d.]+) cpu)?$")
PHASES = ("compose", "plan", "render", "join", "sign", "manifest", "messages", "send", "other")


@pytest.mark.slow
def test_the_dossier_benchmark_stores_builds_and_rebuilds() -> None:
    run = subprocess.run([sys.executable, "bench/dossier.py", "--signers", "2500", "--more", "600",
                          "--no-reference"], cwd=REPO, capture_output=True, text=True,
                         timeout=600, check=True)
    rows = [LINE.match(line) for line in run.stdout.splitlines()]
    assert len(rows) == 2 and all(rows), run.stdout
    cold, warm = (m.groups() for m in rows if m)
    assert cold[0] == "cold" and warm[0] == "warm"
    assert 0 < int(cold[4]) < int(warm[4])  # 600 more signers, more pages
    assert all(float(v) > 0 for v in (*cold[1:4], *warm[1:4]))


def _seconds(line: str, prefix: str) -> dict[str, float]:
    assert line.startswith(prefix), line
    items = [re.fullmatch(r"(.+) (-?[\d.]+) s", item) for item in line[len(prefix):].split(" · ")]
    assert all(items), line
    return {m.group(1): float(m.group(2)) for m in items if m}


@pytest.mark.slow
def test_the_delivery_benchmark_runs_the_tick_preview_and_dry_run_cold_then_warm() -> None:
    run = subprocess.run([sys.executable, "bench/delivery.py", "--signers", "2000", "--more", "200",
                          "--no-reference"], cwd=REPO, capture_output=True, text=True,
                         timeout=900, check=True)
    lines = run.stdout.splitlines()
    # per step: tick, its phases and drawn documents, preview, dry run; after the cold one,
    # status and --help
    assert len(lines) == 12, run.stdout
    status, usage = (MEASURED.match(line) for line in lines[5:7])
    assert status and usage, run.stdout
    assert status.group(1) == "status" and status.group(2) == "2,000 (median of 7)", lines[5]
    assert usage.group(1) == "--help" and usage.group(2) == "(median of 7)", lines[6]
    for m in (status, usage):
        wall, cpu, peak = m.groups()[2:5]
        assert float(wall) > 0 and float(cpu) > 0 and int(peak) > 0, run.stdout
    steps = {"cold 2,000": lines[:5], "+200 → 2,200": lines[7:]}
    tick_pages = []
    for step, (tick, phases, drawn, preview, dry_run) in steps.items():
        measured = [MEASURED.match(line) for line in (tick, preview, dry_run)]
        assert all(measured), run.stdout
        (kind, label, *tick_row), (_, _, *preview_row), (_, dry_label, *dry_row) = (
            m.groups() for m in measured if m)
        assert kind == "tick" and label.startswith(step), tick
        assert preview.startswith(f"preview {step}") and dry_label == step.split()[-1], run.stdout
        for wall, cpu, peak in (tick_row[:3], preview_row[:3], dry_row[:3]):
            assert float(wall) > 0 and float(cpu) > 0 and int(peak) > 0, run.stdout
        # the preview is the dossier the tick built, from the same signers
        assert int(tick_row[3]) == int(preview_row[3]) > 0 and float(tick_row[4]) > 0, run.stdout
        assert int(dry_row[3]) == 0
        tick_pages.append(int(tick_row[3]))

        split = _seconds(phases, "  phases  ")
        assert tuple(split) == PHASES and all(v >= 0 for v in split.values()), phases
        assert split["render"] > 0 and split["sign"] > 0 and split["messages"] > 0, phases
        assert sum(split.values()) <= float(tick_row[0]) + 0.05, (phases, tick)
        documents = _seconds(drawn, "  drawn   ")
        volumes = "1/1" if step.startswith("cold") else "1/2"  # 2,000 signers a volume; the full one is kept
        assert {f"volumes {lang} {volumes}" for lang in ("en", "hy")} <= set(documents), drawn
        assert {"front en", "front hy", "stamp en", "stamp hy"} <= set(documents), drawn
        assert all(v > 0 for v in documents.values()), drawn
    assert tick_pages[0] < tick_pages[1]  # 200 more signers, more pages


@pytest.mark.slow
def test_the_signing_benchmark_signs_two_editions_in_every_mode(tmp_path: Path) -> None:
    def signed(*options: str) -> list[tuple[str, ...]]:
        run = subprocess.run([sys.executable, "bench/signing.py", "--signers", "1500", "--rounds", "1",
                              "--cache", str(tmp_path), *options], cwd=REPO, capture_output=True,
                             text=True, timeout=600, check=True)
        rows = [SIGNED.match(line) for line in run.stdout.splitlines()]
        assert len(rows) == 4 and all(rows), run.stdout + run.stderr
        return [m.groups() for m in rows if m]

    for rows in (signed(), signed("--level", "B-T", "--tsa-delay", "0.05")):
        assert [r[0] for r in rows] == ["sequential", "threads ×2", "processes ×2 cold",
                                        "processes ×2 warm"]
        assert len({r[5:7] for r in rows}) == 1 and int(rows[0][5]) > 0  # the same PDFs signed
        assert all(float(r[1]) > 0 and float(r[3]) > 0 for r in rows)
        assert rows[0][7] is None and all(r[7] and r[8] for r in rows[1:])
    assert [p.name for p in tmp_path.iterdir()] == ["1500-en-hy"]  # built once, for both runs
