"""The exact per-org limit the middleware applies to every request.

The org's limits come from the authorizer context (its plan and any per-org overrides), so
admitting a request needs no read: one conditional write to the tier's bucket. When the bucket
store cannot be reached the request is served anyway and ``RateLimiterUnavailable`` is counted:
a limiter outage must never become an API outage (the edge usage plans still bound a flood).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from spectra.errors import RateLimited
from spectra.observability import logger, metrics
from spectra.ratelimits.bucket import Admission
from spectra.ratelimits.plans import Tier, TierLimit, effective_limits
from spectra.ratelimits.store import BucketReading, TokenBuckets
from spectra.tenancy.context import OrgContext

UNAVAILABLE_METRIC = "RateLimiterUnavailable"


def now_micros() -> int:
    """Wall-clock time in microseconds: buckets are shared by every container, so they run on
    the clock all containers share."""
    return time.time_ns() // 1_000


def org_limits(org: OrgContext) -> dict[Tier, TierLimit]:
    """The calling org's limit in each tier (plan, then the org's overrides)."""
    return effective_limits(org.plan, org.limit_overrides)


@dataclass(frozen=True)
class LimitsReading:
    """Every tier's bucket of an org at one moment, and the UTC day its counts belong to."""

    day: str
    tiers: dict[Tier, BucketReading]


class RateLimiter:
    """Applies the calling org's limits (from its authorizer context) to each request."""

    def __init__(self, buckets: TokenBuckets, *, clock: Callable[[], int] = now_micros) -> None:
        self._buckets = buckets
        self._clock = clock

    def admit(self, org: OrgContext, tier: Tier) -> Admission | None:
        """Take a token from the org's ``tier`` bucket; ``None`` when the store failed (served)."""
        try:
            return self._buckets.take(org, tier, org_limits(org)[tier], self._clock())
        except Exception:  # any failure of the limiter must leave the request served
            logger.exception("Rate limiter unavailable; serving the request", tier=tier.value)
            metrics.add_metric(name=UNAVAILABLE_METRIC, unit=MetricUnit.Count, value=1)
            return None

    def read(self, org: OrgContext) -> LimitsReading:
        """Every tier's bucket as it stands now (no token taken)."""
        now_us = self._clock()
        day = datetime.fromtimestamp(now_us / 1_000_000, UTC).strftime("%Y-%m-%d")
        return LimitsReading(day=day, tiers=self._buckets.read(org, org_limits(org), now_us))


def refusal(admission: Admission) -> RateLimited:
    """The 429 for a refused request: which tier, its limit, and when to come back."""
    limit = admission.limit
    return RateLimited(
        f"The organization's {admission.tier.value} rate limit ({limit.rate_per_minute} requests/min, "
        f"burst {limit.burst}) is used up; retry in {admission.retry_after_seconds} s.",
        extra={
            "tier": admission.tier.value,
            "limit": limit.as_dict(),
            "retryAfterSeconds": admission.retry_after_seconds,
        },
        headers=admission.headers(),
    )
