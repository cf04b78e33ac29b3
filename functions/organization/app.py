"""``/organization``: the caller's org and the key it calls with."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.deployment import api_key_repository, organization_repository
from spectra.http import CurrentOrg, access, create_resolver
from spectra.models.organization import Organization
from spectra.observability import logger, metrics, tracer
from spectra.services.organization import OrganizationService

app = create_resolver()
organizations = OrganizationService(organization_repository(), api_key_repository())


@app.get("/v2/organization", tags=["Organization"], summary="The caller's organization and key")
@access(None)
def get_organization(org: CurrentOrg) -> Organization:
    return organizations.describe(org)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
