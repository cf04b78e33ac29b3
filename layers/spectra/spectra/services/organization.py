"""The caller's organization and the key it is calling with (``GET /organization``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from spectra.errors import Conflict, InternalError, NotFound
from spectra.models.common import to_iso, utc_now
from spectra.models.organization import (
    CallingKey,
    Organization,
    OrganizationLimits,
    OrganizationSettings,
    SettingsChange,
    TierLimits,
    UpdateSettingsRequest,
    retention_days,
)
from spectra.ratelimits.limiter import RateLimiter
from spectra.repositories.api_keys import ApiKeyRepository
from spectra.repositories.organizations import OrganizationRepository
from spectra.tenancy.context import OrgContext

SETTINGS_ATTEMPTS = 3


class OrganizationService:
    def __init__(
        self,
        organizations: OrganizationRepository,
        keys: ApiKeyRepository,
        *,
        limiter: RateLimiter | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._organizations = organizations
        self._keys = keys
        self._limiter = limiter
        self._clock = clock

    def describe(self, org: OrgContext) -> Organization:
        """The org's profile with the calling key's id, type, name and scopes."""
        profile = self._organizations.get(org)
        key = self._keys.get(org, org.key_id)
        if profile is None or key is None:
            raise NotFound("No such organization.")
        return Organization(
            orgId=profile["orgId"],
            name=profile["name"],
            plan=profile.get("plan", "standard"),
            status=profile.get("status", "Active"),
            telemetryRetentionDays=retention_days(profile),
            createdAt=profile["createdAt"],
            key=CallingKey(
                keyId=key["keyId"],
                type=key["type"],
                name=key["name"],
                scopes=key.get("scopes", []),
            ),
        )

    def limits(self, org: OrgContext) -> OrganizationLimits:
        """The limits applied to this org's requests now, and where each tier's bucket stands
        (this request's own token already taken)."""
        if self._limiter is None:
            raise InternalError("Rate limits are not configured in this deployment.")
        reading = self._limiter.read(org)
        return OrganizationLimits(
            plan=org.plan,
            day=reading.day,
            tiers=[
                TierLimits(
                    tier=tier,
                    ratePerMinute=bucket.admission.limit.rate_per_minute,
                    burst=bucket.admission.limit.burst,
                    source="override" if tier in org.limit_overrides else "plan",
                    remaining=bucket.admission.remaining,
                    resetSeconds=bucket.admission.reset_seconds,
                    requestsToday=bucket.requests_today,
                )
                for tier, bucket in reading.tiers.items()
            ],
        )

    def settings(self, org: OrgContext) -> OrganizationSettings:
        profile = self._organizations.get(org)
        if profile is None:
            raise NotFound("No such organization.")
        return OrganizationSettings(telemetryRetentionDays=retention_days(profile))

    def _set_retention(self, org: OrgContext, days: int, at: str) -> dict[str, Any]:
        """Compare-and-set on the current value, so a concurrent change is never lost and a
        lengthening is always marked for re-stamping; returns the profile as it was."""
        for _attempt in range(SETTINGS_ATTEMPTS):
            profile = self._organizations.get(org)
            if profile is None:
                raise NotFound("No such organization.")
            current = profile.get("telemetryRetentionDays")
            expected = int(current) if current is not None else None
            before = self._organizations.set_retention(org, days, at, org.actor, expected=expected)
            if before is not None:
                return before
        raise Conflict("The settings changed while this request ran; send it again.")

    def update_settings(self, org: OrgContext, request: UpdateSettingsRequest) -> SettingsChange:
        """Change the retention window, and say what that means for data already stored.

        Shortening takes effect at once for reads (nothing older than the new window is ever
        returned) and the next retention run removes what fell outside; lengthening keeps
        everything still inside the new window.
        """
        now = self._clock()
        before = self._set_retention(org, request.telemetryRetentionDays, to_iso(now))
        previous = retention_days(before)
        days = request.telemetryRetentionDays
        if days < previous:
            cutoff = now - timedelta(days=days)
            message = (
                f"Telemetry older than {days} days (before {to_iso(cutoff)}) is no longer returned "
                "and will be purged by the next retention run."
            )
            return SettingsChange(
                telemetryRetentionDays=days,
                previousTelemetryRetentionDays=previous,
                effectiveFrom=now,
                purgeCutoff=cutoff,
                message=message,
            )
        message = (
            f"Telemetry is now kept for {days} days; data still inside the new window is kept."
            if days > previous
            else "Nothing changed."
        )
        return SettingsChange(
            telemetryRetentionDays=days, previousTelemetryRetentionDays=previous, effectiveFrom=now, message=message
        )
