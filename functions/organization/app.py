"""``/organization``: the caller's org, the key it calls with, its settings and its rate limits."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.auth.scopes import Action
from spectra.deployment import api_key_repository, organization_repository, rate_limiter
from spectra.http import CurrentOrg, access, create_resolver
from spectra.models.organization import (
    Organization,
    OrganizationLimits,
    OrganizationSettings,
    SettingsChange,
    UpdateSettingsRequest,
)
from spectra.observability import logger, metrics, tracer
from spectra.services.organization import OrganizationService

app = create_resolver()
organizations = OrganizationService(organization_repository(), api_key_repository(), limiter=rate_limiter())


@app.get("/v2/organization", tags=["Organization"], summary="The caller's organization and key")
@access(None)
def get_organization(org: CurrentOrg) -> Organization:
    return organizations.describe(org)


@app.get("/v2/organization/limits", tags=["Organization"], summary="The org's rate limits and today's usage")
@access(None)
def get_organization_limits(org: CurrentOrg) -> OrganizationLimits:
    return organizations.limits(org)


@app.get("/v2/organization/settings", tags=["Organization"], summary="The organization's settings")
@access(Action.ADMIN, "ORGANIZATION")
def get_organization_settings(org: CurrentOrg) -> OrganizationSettings:
    return organizations.settings(org)


@app.patch("/v2/organization/settings", tags=["Organization"], summary="Change settings (telemetry retention)")
@access(Action.ADMIN, "ORGANIZATION")
def update_organization_settings(request: UpdateSettingsRequest, org: CurrentOrg) -> SettingsChange:
    return organizations.update_settings(org, request)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
