"""The import contracts of pyproject.toml hold: stages in the data's order, entry points over
services only, WeasyPrint and aiosmtplib each behind one module (import-linter, as `make lint`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_import_contracts_are_kept() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is a dev dependency: run `make setup`"
    result = subprocess.run([lint_imports, "--no-cache"], cwd=REPO, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "6 kept, 0 broken" in result.stdout
