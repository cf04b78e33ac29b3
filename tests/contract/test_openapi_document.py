"""The committed OpenAPI document is the one the code generates (no drift)."""

from __future__ import annotations

import json

from spectra_local.openapi import DOCUMENT_PATH, build_document, render
from spectra_local.stack import LocalStack


def test_committed_openapi_document_matches_the_code(stack: LocalStack) -> None:
    generated = render(build_document(stack))
    committed = DOCUMENT_PATH.read_text(encoding="utf-8")
    assert committed == generated, "docs/openapi.json is stale: run `make openapi` and commit it"


def test_every_template_route_is_documented(stack: LocalStack) -> None:
    document = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    routes = {(e.method, e.path) for f in stack.template.functions().values() for e in f.api_events}
    assert routes == documented


def test_errors_are_documented_as_problem_json(stack: LocalStack) -> None:
    document = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
    for operations in document["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]
            assert "application/problem+json" in operation["responses"]["400"]["content"]
