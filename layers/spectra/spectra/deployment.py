"""Process-wide objects built once per container from the deployment's settings.

Functions build their services from these at module scope, so a warm container reuses
credentials, clients and cached secrets across invocations.
"""

from __future__ import annotations

from functools import cache

import boto3

from spectra.audit.store import AuditLog
from spectra.audit.trail import AuditTrail
from spectra.config import get_settings
from spectra.events import ThingEvents
from spectra.observability import logger
from spectra.pagination import PageTokens
from spectra.platform_secrets import platform_secret
from spectra.ratelimits.limiter import RateLimiter
from spectra.ratelimits.store import TokenBuckets
from spectra.repositories.api_keys import ApiKeyRepository
from spectra.repositories.definitions import MetricRepository, TemplateRepository, ThingTypeRepository
from spectra.repositories.integrations import IntegrationRepository
from spectra.repositories.organizations import OrganizationRepository
from spectra.repositories.places import PlaceRepository
from spectra.repositories.things import ThingRepository
from spectra.services.metrics import MetricService
from spectra.services.templates import TemplateService
from spectra.services.thing_types import ThingTypeService
from spectra.telemetry.table import TelemetryTables
from spectra.tenancy.sessions import OrgSessions


@cache
def org_sessions() -> OrgSessions:
    """Org-scoped credentials for this container (one STS session per org, renewed early)."""
    return OrgSessions(get_settings().org_data_role_arn)


def api_key_pepper() -> bytes:
    """The pepper of API key hashes (Secrets Manager, cached a few minutes)."""
    return platform_secret(get_settings().api_key_pepper_secret_arn)


@cache
def page_tokens() -> PageTokens:
    """Continuation tokens signed with the platform's page-token key."""
    return PageTokens(lambda: platform_secret(get_settings().page_token_secret_arn))


@cache
def api_key_repository() -> ApiKeyRepository:
    return ApiKeyRepository(org_sessions(), get_settings().records_table)


@cache
def organization_repository() -> OrganizationRepository:
    return OrganizationRepository(org_sessions(), get_settings().records_table)


@cache
def metric_service() -> MetricService:
    """Metric definitions (used by every capability that resolves metrics)."""
    return MetricService(MetricRepository(org_sessions(), get_settings().records_table), page_tokens=page_tokens())


@cache
def thing_type_service() -> ThingTypeService:
    return ThingTypeService(
        ThingTypeRepository(org_sessions(), get_settings().records_table), metric_service(), page_tokens=page_tokens()
    )


@cache
def template_service() -> TemplateService:
    return TemplateService(
        TemplateRepository(org_sessions(), get_settings().records_table), metric_service(), page_tokens=page_tokens()
    )


@cache
def place_repository() -> PlaceRepository:
    return PlaceRepository(org_sessions(), get_settings().records_table)


@cache
def thing_repository() -> ThingRepository:
    return ThingRepository(org_sessions(), get_settings().records_table)


@cache
def telemetry_tables() -> TelemetryTables:
    """Each org's telemetry table, reached only by assuming that org's own role (which can touch
    that table and nothing else); the function's own role has no rights on telemetry."""
    settings = get_settings()
    sessions = OrgSessions(lambda org: f"{settings.org_role_arn_prefix}{org.org_id}")
    return TelemetryTables(sessions, lambda org_id: f"{settings.telemetry_table_prefix}{org_id}")


@cache
def thing_events() -> ThingEvents:
    """The org outboxes and the queue that announces deleted things to the retention job."""
    settings = get_settings()
    return ThingEvents(org_sessions(), settings.records_table, boto3.client("sqs"), settings.thing_events_queue_url)


@cache
def integration_repository() -> IntegrationRepository:
    return IntegrationRepository(org_sessions(), get_settings().records_table)


@cache
def rate_limiter() -> RateLimiter | None:
    """The org's exact token buckets (``None`` where the deployment gives no bucket table)."""
    table = get_settings().rate_limit_table
    if not table:
        logger.error("RATE_LIMIT_TABLE is not set: requests are not rate-limited in this function")
        return None
    return RateLimiter(TokenBuckets(org_sessions(), table))


@cache
def audit_log() -> AuditLog:
    """Every org's audit chain, appended and read with the org's own credentials."""
    settings = get_settings()
    return AuditLog(org_sessions(), settings.audit_table, retention_days=settings.audit_retention_days)


@cache
def audit_trail() -> AuditTrail:
    """Where the request path and operator tools record what they did (never failing the work)."""
    return AuditTrail(lambda: audit_log() if get_settings().audit_table else None)
