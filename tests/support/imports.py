"""Import options for tests about reading files (quotes, encodings, keys), not about dates or
consent: an organizer who decided that rows without a date are dated at import and that a file
without a consent column names everyone."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from delivery.signers.options import ConsentMissing, ImportOptions, SignedAtMissing

DECIDED = ImportOptions(signed_at_missing=SignedAtMissing.IMPORT_TIME,
                        consent_missing=ConsentMissing.NAME)


def decided(**changes: Any) -> ImportOptions:
    """DECIDED with some options changed (encoding, column_map, dry_run, …)."""
    return replace(DECIDED, **changes)
