"""The organization as the API shows it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from spectra.models.api_keys import ScopeView
from spectra.models.common import RequestModel, ResponseModel, Timestamp

DEFAULT_RETENTION_DAYS = 365
ORG_ACTIVE = "Active"
ORG_SUSPENDED = "Suspended"
ORG_DELETED = "Deleted"


def retention_days(profile: Mapping[str, Any]) -> int:
    """The org's telemetry retention as its profile holds it (the default until it is set)."""
    return int(profile.get("telemetryRetentionDays", DEFAULT_RETENTION_DAYS))


class CallingKey(ResponseModel):
    keyId: str
    type: str
    name: str
    scopes: list[ScopeView]


class Organization(ResponseModel):
    orgId: str
    name: str
    plan: str
    status: str
    telemetryRetentionDays: int = Field(default=DEFAULT_RETENTION_DAYS, ge=1, le=3650)
    createdAt: Timestamp
    key: CallingKey


RetentionDays = Annotated[int, Field(ge=1, le=3650, description="Days of telemetry kept (1-3650)")]


class OrganizationSettings(ResponseModel):
    telemetryRetentionDays: int


class UpdateSettingsRequest(RequestModel):
    telemetryRetentionDays: RetentionDays


class SettingsChange(OrganizationSettings):
    """What a settings change means for the org's data."""

    previousTelemetryRetentionDays: int
    effectiveFrom: Timestamp
    purgeCutoff: Timestamp | None = Field(
        default=None,
        description="When shortening: telemetry older than this is no longer returned, and is purged "
        "by the next retention run",
    )
    message: str
