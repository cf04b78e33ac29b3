"""The organization as the API shows it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from spectra.models.api_keys import ScopeView
from spectra.models.common import RequestModel, ResponseModel, Timestamp
from spectra.ratelimits.plans import Tier

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


class TierLimits(ResponseModel):
    """One tier's limit and where the org's bucket stands now."""

    tier: Tier
    ratePerMinute: int = Field(description="Sustained rate")
    burst: int = Field(description="Bucket size: requests allowed at once")
    source: Literal["plan", "override"] = Field(description="Whether the org's plan or an override sets it")
    remaining: int = Field(description="Requests that would be admitted right now")
    resetSeconds: int = Field(description="Seconds until the bucket is full again")
    requestsToday: int = Field(description="Requests admitted in this tier since 00:00 UTC")


class OrganizationLimits(ResponseModel):
    """The org's plan and, per tier, its limit and where its bucket stands."""

    plan: str
    day: str = Field(description="The UTC day requestsToday counts (YYYY-MM-DD)")
    tiers: list[TierLimits]
