"""bench/dossier.py runs end to end on a small petition and reports what it measured."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^(cold|warm) .*wall +([\d.]+) s +cpu +([\d.]+) s +peak +(\d+) MB +(\d+) pages "
                  r"+([\d.]+) MB$")


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
