"""Plans and tiers: the one definition of every rate limit Spectra enforces.

An org's requests fall into two independent tiers (``standard`` and ``data-read``), each a token
bucket with a sustained rate and a burst. A plan fixes both tiers; an org may carry per-tier
overrides on top of its plan. Everything else is derived from these definitions: the exact
buckets of the middleware, the template's API Gateway usage plans (the edge backstop), the local
runtime's emulation of those usage plans and the README's table (``spectra-plans`` renders and
checks the last two).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from spectra.errors import FieldError, ValidationFailed

MINUTES_PER_DAY = 24 * 60
ACCOUNT_BURST = 5_000
"""API Gateway's burst per account and region: no usage plan can usefully allow more."""
MAX_RATE_PER_MINUTE = 600_000
MAX_BURST = 100_000


class Tier(StrEnum):
    """A budget of its own: data reads never use up the budget of everything else."""

    STANDARD = "standard"
    DATA_READ = "data-read"


@dataclass(frozen=True)
class TierLimit:
    """A token bucket: ``burst`` tokens at most, refilled at ``rate_per_minute``."""

    rate_per_minute: int
    burst: int

    def __post_init__(self) -> None:
        if not 1 <= self.rate_per_minute <= MAX_RATE_PER_MINUTE:
            raise ValueError(f"rate_per_minute must be 1-{MAX_RATE_PER_MINUTE}")
        if not 1 <= self.burst <= MAX_BURST:
            raise ValueError(f"burst must be 1-{MAX_BURST}")

    @property
    def interval_us(self) -> int:
        """Microseconds between two tokens of the sustained rate."""
        return max(1, round(60_000_000 / self.rate_per_minute))

    def as_dict(self) -> dict[str, int]:
        """The limit as the API and the stored overrides spell it."""
        return {"ratePerMinute": self.rate_per_minute, "burst": self.burst}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TierLimit:
        """The inverse of ``as_dict`` (``KeyError``/``ValueError`` when malformed)."""
        return cls(rate_per_minute=int(raw["ratePerMinute"]), burst=int(raw["burst"]))


@dataclass(frozen=True)
class EdgeLimits:
    """What an API Gateway usage plan enforces for one org's usage identifier.

    The edge cannot tell tiers apart (an org has one identifier), so its throttle is both tiers
    together: it never fires while every tier stays within its own limit, and it stops a flood
    (also while the exact buckets fail open) before it reaches a function.
    """

    rate_per_second: float
    burst: int
    daily_quota: int


@dataclass(frozen=True)
class Plan:
    """A level of service: the limit of each tier (the edge limits follow from them)."""

    name: str
    description: str
    limits: Mapping[Tier, TierLimit]

    def __post_init__(self) -> None:
        if set(self.limits) != set(Tier):
            raise ValueError(f"plan {self.name} must limit every tier")
        if self.edge.burst > ACCOUNT_BURST:
            raise ValueError(f"plan {self.name}: its bursts together exceed API Gateway's {ACCOUNT_BURST}")

    def limit(self, tier: Tier) -> TierLimit:
        return self.limits[tier]

    @property
    def edge(self) -> EdgeLimits:
        """The usage plan's throttle and quota for this plan (see ``EdgeLimits``)."""
        per_minute = sum(limit.rate_per_minute for limit in self.limits.values())
        return EdgeLimits(
            rate_per_second=round(per_minute / 60, 3),
            burst=sum(limit.burst for limit in self.limits.values()),
            # Every tier at its sustained rate all day long: only a flood ever reaches it.
            daily_quota=per_minute * MINUTES_PER_DAY,
        )


PLANS: dict[str, Plan] = {
    plan.name: plan
    for plan in (
        Plan(
            name="standard",
            description="Default plan",
            limits={
                Tier.STANDARD: TierLimit(rate_per_minute=60, burst=100),
                Tier.DATA_READ: TierLimit(rate_per_minute=600, burst=1_000),
            },
        ),
        Plan(
            name="professional",
            description="Ten times the standard rates",
            limits={
                Tier.STANDARD: TierLimit(rate_per_minute=600, burst=1_000),
                Tier.DATA_READ: TierLimit(rate_per_minute=6_000, burst=4_000),
            },
        ),
        Plan(
            name="enterprise",
            description="Twenty times the standard rates",
            limits={
                Tier.STANDARD: TierLimit(rate_per_minute=1_200, burst=2_000),
                Tier.DATA_READ: TierLimit(rate_per_minute=12_000, burst=3_000),
            },
        ),
    )
}
DEFAULT_PLAN = "standard"


class UnknownPlan(ValidationFailed):
    """A plan name that is not in ``PLANS`` (a 400 naming the field and the known plans)."""

    def __init__(self, name: str) -> None:
        super().__init__([FieldError("plan", f"must be one of {', '.join(PLANS)}")], detail=f"No plan named {name!r}.")


def plan_named(name: str) -> Plan:
    """The plan called ``name`` (``UnknownPlan``, a 400, otherwise)."""
    try:
        return PLANS[name]
    except KeyError:
        raise UnknownPlan(name) from None


LimitOverrides = Mapping[Tier, TierLimit]


def parse_overrides(raw: str | Mapping[str, Any] | None) -> dict[Tier, TierLimit]:
    """Per-tier overrides as stored (``{"data-read": {"ratePerMinute": .., "burst": ..}}``),
    given as a mapping or its JSON text; anything malformed raises ``ValueError``."""
    if not raw:
        return {}
    document = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(document, Mapping):
        raise ValueError("limit overrides must be an object")
    return {Tier(tier): TierLimit.from_dict(limit) for tier, limit in document.items()}


def overrides_document(overrides: LimitOverrides) -> dict[str, dict[str, int]]:
    """The stored (and authorizer-context) form of per-tier overrides."""
    return {tier.value: limit.as_dict() for tier, limit in sorted(overrides.items())}


def effective_limits(plan_name: str, overrides: LimitOverrides | None = None) -> dict[Tier, TierLimit]:
    """Each tier's limit for an org: its plan's, unless the org has an override for the tier."""
    plan = PLANS.get(plan_name) or PLANS[DEFAULT_PLAN]
    return {tier: (overrides or {}).get(tier, plan.limit(tier)) for tier in Tier}


def check_overrides_fit(plan: Plan, overrides: LimitOverrides) -> None:
    """Refuse overrides the plan's edge would cut short: the usage plan throttles the org's
    tiers together, so their combined rate and burst must stay within it."""
    limits = {tier: overrides.get(tier, plan.limit(tier)) for tier in Tier}
    per_second = sum(limit.rate_per_minute for limit in limits.values()) / 60
    burst = sum(limit.burst for limit in limits.values())
    if per_second > plan.edge.rate_per_second + 1e-9 or burst > plan.edge.burst:
        raise ValidationFailed.single(
            "limits",
            f"the tiers together may not exceed the {plan.name} plan's edge limit "
            f"({math.floor(plan.edge.rate_per_second * 60)}/min, burst {plan.edge.burst}); choose a higher plan",
        )
