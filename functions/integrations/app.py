"""``/integrations``: third-party systems an org connects, with write-only secrets.

Scopes: ``INTEGRATION/{INGRESS|EGRESS}/{type}/{integrationId}``. Secret values go to Secrets
Manager through the org's own secrets session and are never read back: no response model has a
field for them, and this function's roles cannot read a secret value at all.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.auth.scopes import Action
from spectra.config import get_settings
from spectra.deployment import integration_repository, page_tokens, place_repository, thing_repository
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
    no_content,
)
from spectra.integrations.catalog import Direction
from spectra.integrations.secrets import IntegrationSecrets
from spectra.models.integrations import (
    CreateIntegrationRequest,
    CreateResourceMappingRequest,
    Integration,
    IntegrationCatalog,
    IntegrationPage,
    ResourceMapping,
    ResourceMappingPage,
    SecretPropertiesRequest,
    UpdateIntegrationRequest,
)
from spectra.observability import logger, metrics, tracer
from spectra.services.integrations import IntegrationService, catalog, to_integration
from spectra.tenancy.sessions import OrgSessions

app = create_resolver()
settings = get_settings()
integrations = IntegrationService(
    integration_repository(),
    IntegrationSecrets(
        # The org's own secrets session: it can write under that org's path and read nothing.
        OrgSessions(settings.integration_secrets_role_arn),
        stage=settings.stage,
        kms_key_id=settings.platform_key_arn,
        vpc_endpoint_id=settings.secrets_vpc_endpoint_id,
        operator_role_arn=settings.operator_role_arn,
        writer_role_arn=settings.integration_secrets_role_arn,
    ),
    thing_repository(),
    place_repository(),
    page_tokens=page_tokens(),
)

IntegrationId = Annotated[str, Path(description="An integration id (GUID)")]
MappingId = Annotated[str, Path(description="A mapping id (GUID)")]
ANY_INTEGRATION = "INTEGRATION/*/*/*"
INTEGRATION = "INTEGRATION/*/*/{integrationId}"


@app.get("/v2/integrations/mapping", tags=["Integrations"], summary="Supported types and their properties")
@access(None)
def integration_types() -> IntegrationCatalog:
    return catalog()


@app.post(
    "/v2/integrations/resource-mappings",
    tags=["Integrations"],
    summary="Map a remote id to a thing or place",
    responses=documented_created(ResourceMapping),
)
@access(Action.WRITE, ANY_INTEGRATION, audit="resourceMapping.create")
def create_resource_mapping(request: CreateResourceMappingRequest, org: CurrentOrg) -> Response[ResourceMapping]:
    mapping = integrations.create_mapping(org, request)
    return created(mapping, f"/v2/integrations/resource-mappings/{mapping.mappingId}")


@app.get("/v2/integrations/resource-mappings", tags=["Integrations"])
@access(Action.READ, ANY_INTEGRATION)
def list_resource_mappings(
    org: CurrentOrg,
    integrationId: Annotated[str | None, Query(max_length=64, description="Only this integration's")] = None,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> ResourceMappingPage:
    return integrations.list_mappings(org, integrationId, PageRequest.of(limit, pageLimit, continuationToken))


@app.get("/v2/integrations/resource-mappings/<mappingId>", tags=["Integrations"])
@access(Action.READ, ANY_INTEGRATION)
def get_resource_mapping(mappingId: MappingId, org: CurrentOrg) -> ResourceMapping:
    return ResourceMapping.model_validate(integrations.get_mapping(org, mappingId))


@app.delete("/v2/integrations/resource-mappings/<mappingId>", tags=["Integrations"])
@access(Action.WRITE, ANY_INTEGRATION, audit="resourceMapping.delete")
def delete_resource_mapping(mappingId: MappingId, org: CurrentOrg) -> Response[None]:
    integrations.delete_mapping(org, mappingId)
    return no_content()


@app.post("/v2/integrations", tags=["Integrations"], responses=documented_created(Integration))
@access(Action.WRITE, ANY_INTEGRATION, audit="integration.create")
def create_integration(request: CreateIntegrationRequest, org: CurrentOrg) -> Response[Integration]:
    integration = integrations.create(org, request)
    return created(integration, f"/v2/integrations/{integration.integrationId}")


@app.get("/v2/integrations", tags=["Integrations"])
@access(Action.READ, ANY_INTEGRATION)
def list_integrations(
    org: CurrentOrg,
    integrationDirection: Annotated[Direction | None, Query(description="Only this direction")] = None,
    integrationType: Annotated[str | None, Query(max_length=64, description="Only this type")] = None,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> IntegrationPage:
    page = PageRequest.of(limit, pageLimit, continuationToken)
    direction = integrationDirection.value if integrationDirection else None
    return integrations.list_integrations(org, page, direction=direction, type_name=integrationType)


@app.get("/v2/integrations/<integrationId>", tags=["Integrations"])
@access(Action.READ, INTEGRATION)
def get_integration(integrationId: IntegrationId, org: CurrentOrg) -> Integration:
    return to_integration(integrations.get(org, integrationId))


@app.patch("/v2/integrations/<integrationId>", tags=["Integrations"], summary="Update (never secrets)")
@access(Action.WRITE, INTEGRATION, audit="integration.update")
def update_integration(integrationId: IntegrationId, request: UpdateIntegrationRequest, org: CurrentOrg) -> Integration:
    return integrations.update(org, integrationId, request)


@app.put(
    "/v2/integrations/<integrationId>/secret-properties",
    tags=["Integrations"],
    summary="Replace the secret values (write-only)",
)
@access(Action.WRITE, INTEGRATION, audit="integration.replaceSecrets")
def replace_secret_properties(
    integrationId: IntegrationId, request: SecretPropertiesRequest, org: CurrentOrg
) -> Integration:
    return integrations.replace_secrets(org, integrationId, request)


@app.delete("/v2/integrations/<integrationId>", tags=["Integrations"], summary="Delete (the secret is scheduled)")
@access(Action.WRITE, INTEGRATION, audit="integration.delete")
def delete_integration(integrationId: IntegrationId, org: CurrentOrg) -> Response[None]:
    integrations.delete(org, integrationId)
    return no_content()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
