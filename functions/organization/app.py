"""``/organization`` and ``/audit-events``: the caller's org, its key, settings, rate limits and audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.auth.scopes import Action
from spectra.deployment import api_key_repository, audit_log, organization_repository, page_tokens, rate_limiter
from spectra.http import ContinuationToken, CurrentOrg, Limit, PageLimit, PageRequest, access, create_resolver
from spectra.models.audit import AuditEventPage, AuditVerification
from spectra.models.common import as_utc
from spectra.models.organization import (
    Organization,
    OrganizationLimits,
    OrganizationSettings,
    SettingsChange,
    UpdateSettingsRequest,
)
from spectra.observability import logger, metrics, tracer
from spectra.services.audit import AuditService
from spectra.services.organization import OrganizationService

app = create_resolver()
audit = AuditService(audit_log(), page_tokens=page_tokens())
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
@access(Action.ADMIN, "ORGANIZATION", audit="settings.update")
def update_organization_settings(request: UpdateSettingsRequest, org: CurrentOrg) -> SettingsChange:
    return organizations.update_settings(org, request)


AuditFrom = Annotated[
    datetime | None, Query(alias="from", description="Events at or after, ISO-8601 (UTC when no offset)")
]
AuditTo = Annotated[
    datetime | None, Query(alias="to", description="Events at or before, ISO-8601 (UTC when no offset)")
]
AuditFilter = Annotated[str | None, Query(min_length=1, max_length=200)]


@app.get("/v2/audit-events", tags=["Audit"], summary="The org's audit events, newest first")
@access(Action.ADMIN, "ORGANIZATION")
def list_audit_events(
    org: CurrentOrg,
    start: AuditFrom = None,
    end: AuditTo = None,
    action: AuditFilter = None,
    resourceType: AuditFilter = None,
    resourceId: AuditFilter = None,
    actorKeyId: AuditFilter = None,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> AuditEventPage:
    return audit.list_events(
        org,
        start=as_utc(start),
        end=as_utc(end),
        filters={"action": action, "resourceType": resourceType, "resourceId": resourceId, "actorKeyId": actorKeyId},
        page=PageRequest.of(limit, pageLimit, continuationToken),
    )


@app.get("/v2/audit-events/verify", tags=["Audit"], summary="Recompute the org's audit chain over a range")
@access(Action.ADMIN, "ORGANIZATION")
def verify_audit_events(org: CurrentOrg, start: AuditFrom = None, end: AuditTo = None) -> AuditVerification:
    return audit.verify(org, start=as_utc(start), end=as_utc(end))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
