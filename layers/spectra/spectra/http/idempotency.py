"""``Idempotency-Key`` on POST routes, with Powertools idempotency and org-scoped keys.

A retry with the same key and body returns the first response, marked
``Idempotent-Replayed: true``, and writes nothing twice. Fields a route declares as shown once
(``reveals``, e.g. a new API key's secret) are removed before the response is stored, so a
replay says what was created without revealing the secret again, and the idempotency table
never holds one. The same key with a different body is a
409. The stored key is derived from the org id, the route and the client's key, so two orgs
using the same ``Idempotency-Key`` never see each other's responses. Only successful responses
are remembered: a failed request can be retried with the same key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from pydantic import BaseModel

from spectra.config import get_settings
from spectra.errors import Conflict, IdempotencyKeyReused, ValidationFailed
from spectra.http.access import route_access
from spectra.platform_secrets import platform_secret
from spectra.tenancy.context import OrgContext

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
EXPIRES_AFTER_SECONDS = 24 * 3600
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


class _NotRemembered(Exception):
    """Carries a non-2xx response out of the idempotent call so it is not stored."""

    def __init__(self, response: Response[Any]) -> None:
        super().__init__("response not remembered")
        self.response = response


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    response.setdefault("headers", {})[REPLAYED_HEADER] = "true"
    return response


@cache
def _persistence_layer() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table)


@cache
def _config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath="scope",
        payload_validation_jmespath="payload",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=EXPIRES_AFTER_SECONDS,
        response_hook=_mark_replayed,
    )


def payload_fingerprint(body: str) -> str:
    """What tells a retry from a different request with the same key: an HMAC of the body keyed
    with a platform secret. A body can carry credentials (integration secrets), and a plain hash
    kept for 24 hours would let anyone who reads the table test guesses against it."""
    key = platform_secret(get_settings().page_token_secret_arn)
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


def idempotency_middleware(
    app: APIGatewayRestResolver, next_middleware: Callable[[APIGatewayRestResolver], Response[Any]]
) -> Response[Any]:
    """Router middleware: run a POST once per (org, route, Idempotency-Key)."""
    event = app.current_event
    client_key = event.headers.get(IDEMPOTENCY_HEADER.lower()) or event.headers.get(IDEMPOTENCY_HEADER)
    if event.http_method.upper() != "POST" or client_key is None:
        return next_middleware(app)
    if not _KEY_PATTERN.fullmatch(client_key):
        raise ValidationFailed.single(IDEMPOTENCY_HEADER, "must be 1-255 visible ASCII characters")

    org: OrgContext = app.context["org"]
    request = {
        # Per org (API.md) and per calling key: another key never receives a response that the
        # service's own checks for it never produced.
        "scope": f"{org.org_id}|{org.key_id}|{event.http_method} {event.path}|{client_key}",
        "payload": payload_fingerprint(event.decoded_body or ""),
    }
    config = _config()
    if app.lambda_context is not None:
        config.register_lambda_context(app.lambda_context)

    route = app.context.get("_route")
    declared = route_access(route.func) if route is not None else None
    shown_once = declared.reveals if declared else ()
    first_response: list[Response[Any]] = []

    def run_once(request: dict[str, str]) -> dict[str, Any]:
        response = next_middleware(app)
        if not 200 <= response.status_code < 300:
            raise _NotRemembered(response)
        first_response.append(response)
        return _to_record(response, without=shown_once)

    remembered = idempotent_function(
        data_keyword_argument="request",
        persistence_store=_persistence_layer(),
        config=config,
        key_prefix="spectra-http",
    )(run_once)
    try:
        record = remembered(request=request)
        # The first caller gets the response as produced, shown-once fields included.
        return first_response[0] if first_response else _from_record(record)
    except _NotRemembered as not_remembered:
        return not_remembered.response
    except IdempotencyValidationError as error:
        raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request body.") from error
    except IdempotencyAlreadyInProgressError as error:
        raise Conflict("A request with this Idempotency-Key is still in progress; retry shortly.") from error


def _to_record(response: Response[Any], *, without: tuple[str, ...]) -> dict[str, Any]:
    body = response.body
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    if without:
        document = json.loads(body) if isinstance(body, str) else body
        if isinstance(document, dict):
            body = {k: v for k, v in document.items() if k not in without}
    if not isinstance(body, str | type(None)):
        body = json.dumps(body, default=str)
    return {
        "status": response.status_code,
        "contentType": response.headers.get("Content-Type"),
        "headers": {k: v for k, v in response.headers.items() if k != "Content-Type" and isinstance(v, str)},
        "body": body,
    }


def _from_record(record: dict[str, Any]) -> Response[Any]:
    return Response(
        status_code=int(record["status"]),
        content_type=record.get("contentType"),
        body=record.get("body"),
        headers=dict(record.get("headers") or {}),
    )
