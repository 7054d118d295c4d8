"""Schemathesis against the API's own OpenAPI document (through ASGI): generated valid and invalid
requests, with a real token, get no 5xx and only documented statuses, content types and bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok
from sqlalchemy import Engine

from delivery.services import deliveries
from delivery.web import create_web_app
from tests.web.test_api import make_token
from tests.web.test_web import NOW, SLUG, _gc_after, add_signers, make_app, web_config

__all__ = ["_gc_after"]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 40


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(engine: Engine, tmp_path: Path, mode: GenerationMode) -> None:
    app = make_app(engine, tmp_path)
    add_signers(app)
    deliveries.detect_milestones(app, app.campaigns[SLUG], now=NOW)  # a delivery to list
    token = make_token(app)
    web = create_web_app(app, config=web_config())
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", web)
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    tested = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operation = result.ok()
        # Generated slugs almost never name a campaign: run once more with the real one, so the
        # requests reach the handlers and not only the 404.
        for slug in (None, {"slug": SLUG}):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=slug)

            @given(case=strategy)
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=checks)

            check()
            tested.append((operation.label, slug is not None))
    assert len(tested) == 8
