"""Fixtures of the `serve` tests: a PostgreSQL database of the test's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import PG_ADMIN_URL
from tests.support.serve_harness import fresh_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database(PG_ADMIN_URL) as url:
        yield url
