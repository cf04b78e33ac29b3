"""Per-organization rate limits: plans and tiers, token buckets, and the limiter."""

from spectra.ratelimits.plans import DEFAULT_PLAN, PLANS, Plan, Tier, TierLimit, effective_limits

__all__ = ["DEFAULT_PLAN", "PLANS", "Plan", "Tier", "TierLimit", "effective_limits"]
