"""One OpenAPI 3.1 document for the whole API, merged from every function's resolver.

Each function declares its routes with Powertools (validation on), which generates its part of
the document from the pydantic models; this module merges the parts with Powertools'
``OpenAPIMerge``. ``python -m spectra_local.openapi --write`` refreshes ``docs/openapi.json``;
``--check`` fails when the committed document and the code disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server

from spectra_local.stack import LocalStack
from spectra_local.template import REPO_ROOT

DOCUMENT_PATH = REPO_ROOT / "docs" / "openapi.json"
TITLE = "Spectra Enterprise API"
VERSION = "2.0.0"
DESCRIPTION = (
    "Multi-tenant IoT telemetry API. Every request carries an API key in `X-Api-Key`; the key "
    "binds the request to one organization and its scopes decide what it may do. Errors are "
    "RFC 9457 `application/problem+json`."
)


def build_document(stack: LocalStack) -> dict[str, Any]:
    """The merged document of every function in ``stack`` that serves HTTP routes."""
    merger = OpenAPIMerge(
        title=TITLE,
        version=VERSION,
        openapi_version="3.1.0",
        description=DESCRIPTION,
        servers=[Server(url="/")],
        security_schemes={"ApiKey": APIKey(name="X-Api-Key", in_=APIKeyIn.header)},
        security=[{"ApiKey": []}],
        on_conflict="error",
    )
    for function in stack.functions.values():
        if not function.spec.api_events:
            continue
        resolver = getattr(function.load(), "app", None)
        if resolver is not None and hasattr(resolver, "get_openapi_schema"):
            merger.add_schema(resolver.get_openapi_schema())
    document: dict[str, Any] = json.loads(merger.get_openapi_json_schema())
    _document_problems(document)
    document["paths"] = dict(sorted(document.get("paths", {}).items()))
    return document


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details, with a stable machine code and the request id.",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "code": {"type": "string", "examples": ["validation_failed", "not_found", "forbidden_scope"]},
        "requestId": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
PROBLEM_STATUSES = {
    "400": "Invalid request (validation_failed, malformed_body, invalid_continuation_token)",
    "401": "Missing, malformed, unknown, revoked or expired API key",
    "403": "The key's scopes or allowed networks do not cover this request",
    "404": "No such resource in the caller's organization",
    "409": "Conflict with the resource's current state",
    "413": "Request body too large",
    "415": "Request body is not application/json",
    "429": "The organization's rate limit was exceeded",
    "500": "Internal error (quote the requestId)",
}


def _document_problems(document: dict[str, Any]) -> None:
    """Replace Powertools' default 422 with the problem+json responses the API really sends."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if "201" in responses:
                responses.pop("200", None)
            for status, description in PROBLEM_STATUSES.items():
                responses.setdefault(status, {"description": description, "content": problem})


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _generate() -> str:
    from moto import mock_aws

    with mock_aws():
        return render(build_document(LocalStack.create()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write docs/openapi.json")
    mode.add_argument("--check", action="store_true", help="fail if docs/openapi.json is stale")
    args = parser.parse_args(argv)
    generated = _generate()
    if args.write:
        DOCUMENT_PATH.parent.mkdir(parents=True, exist_ok=True)
        DOCUMENT_PATH.write_text(generated, encoding="utf-8")
        print(f"wrote {DOCUMENT_PATH.relative_to(REPO_ROOT)}")
        return 0
    committed = DOCUMENT_PATH.read_text(encoding="utf-8") if DOCUMENT_PATH.exists() else ""
    if committed != generated:
        print("docs/openapi.json is out of date: run `make openapi` and commit it", file=sys.stderr)
        return 1
    print("docs/openapi.json matches the code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
