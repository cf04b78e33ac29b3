"""``/api-keys``: create, list, read, change, revoke and rotate the org's API keys (action admin)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.auth.scopes import Action
from spectra.deployment import api_key_pepper, api_key_repository, organization_repository, page_tokens
from spectra.http import (
    ContinuationToken,
    CurrentOrg,
    Limit,
    PageLimit,
    PageRequest,
    access,
    create_resolver,
    created,
    documented_created,
)
from spectra.models.api_keys import (
    ApiKeyPage,
    ApiKeyRecord,
    CreateApiKeyRequest,
    CreatedApiKey,
    KeyStatus,
    RotateApiKeyRequest,
    UpdateApiKeyRequest,
)
from spectra.observability import logger, metrics, tracer
from spectra.services.api_keys import ApiKeyService

app = create_resolver()
keys = ApiKeyService(
    api_key_repository(),
    organization_repository(),
    pepper=api_key_pepper,
    page_tokens=page_tokens(),
)

KeyId = Annotated[str, Path(description="The API key's id (a GUID).")]
ORGANIZATION = "ORGANIZATION"


@app.post(
    "/v2/api-keys",
    tags=["API keys"],
    summary="Create an API key (the secret is returned once)",
    responses=documented_created(CreatedApiKey),
)
@access(Action.ADMIN, ORGANIZATION, reveals=("key",), audit="apiKey.create")
def create_api_key(request: CreateApiKeyRequest, org: CurrentOrg) -> Response[CreatedApiKey]:
    key = keys.create(org, request)
    return created(key, f"/v2/api-keys/{key.keyId}")


@app.get("/v2/api-keys", tags=["API keys"], summary="List API keys (expired and revoked included)")
@access(Action.ADMIN, ORGANIZATION)
def list_api_keys(
    org: CurrentOrg,
    status: Annotated[KeyStatus | None, Query()] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=100, description="Name contains")] = None,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> ApiKeyPage:
    return keys.list_keys(org, status=status, name=name, page=PageRequest.of(limit, pageLimit, continuationToken))


@app.get("/v2/api-keys/<keyId>", tags=["API keys"], summary="Get an API key")
@access(Action.ADMIN, ORGANIZATION)
def get_api_key(keyId: KeyId, org: CurrentOrg) -> ApiKeyRecord:
    return keys.get(org, keyId)


@app.patch("/v2/api-keys/<keyId>", tags=["API keys"], summary="Change a key's name, scopes, IPs or expiry")
@access(Action.ADMIN, ORGANIZATION, audit="apiKey.update")
def update_api_key(keyId: KeyId, request: UpdateApiKeyRequest, org: CurrentOrg) -> ApiKeyRecord:
    return keys.update(org, keyId, request)


@app.post("/v2/api-keys/<keyId>/revoke", tags=["API keys"], summary="Revoke a key (permanent)")
@access(Action.ADMIN, ORGANIZATION, audit="apiKey.revoke")
def revoke_api_key(keyId: KeyId, org: CurrentOrg) -> ApiKeyRecord:
    return keys.revoke(org, keyId)


@app.post("/v2/api-keys/<keyId>/rotate", tags=["API keys"], summary="Issue a new secret, with a grace window")
@access(Action.ADMIN, ORGANIZATION, reveals=("key",), audit="apiKey.rotate")
def rotate_api_key(keyId: KeyId, org: CurrentOrg, request: RotateApiKeyRequest | None = None) -> CreatedApiKey:
    return keys.rotate(org, keyId, request or RotateApiKeyRequest())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
