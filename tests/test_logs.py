"""delivery.logs: what uvicorn's access lines may not carry, and which libraries' lines the
service log keeps."""

from __future__ import annotations

import logging

import pytest

from delivery.logs import WithoutQueryStrings


@pytest.mark.parametrize(("path", "shown"), [
    ("/api/v1/x/status?token=Sekrit", "/api/v1/x/status?…"),
    ("/d/vTNKE3I2j2ZqPqRrwn4j3kX0Logbfef5rYQoBjG66JM", "/d/…"),
    ("/d/vTNKE3I2j2ZqPqRrwn4j3kX0Logbfef5rYQoBjG66JM/files/dossier.pdf", "/d/…/files/dossier.pdf"),
    ("/d/vTNKE3I2j2ZqPqRrwn4j3kX0Logbfef5rYQoBjG66JM?acknowledged=1", "/d/…?…"),
    ("/c/test/deliveries", "/c/test/deliveries"),
])
def test_access_lines_keep_no_query_and_no_download_token(path: str, shown: str) -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", path, "1.1", 200), None)
    assert WithoutQueryStrings().filter(record)
    assert record.getMessage() == f'127.0.0.1:5000 - "GET {shown} HTTP/1.1" 200'


def test_the_service_log_keeps_library_warnings_but_not_their_step_by_step_info(
        capsys: pytest.CaptureFixture[str]) -> None:
    from delivery.logs import configure_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("text")
        # what alembic says at every schema check, once per plugin
        logging.getLogger("alembic.runtime.plugins").info("setup plugin alembic.autogenerate.schemas")
        logging.getLogger("alembic.runtime.migration").warning("a migration needs a person")
        logging.getLogger("delivery.test").info("our own line")
    finally:
        root.handlers[:], root.level = saved
    err = capsys.readouterr().err
    assert "setup plugin" not in err
    assert "a migration needs a person" in err and "our own line" in err
