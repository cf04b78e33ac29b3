"""API Gateway usage plans, enforced locally as API Gateway enforces them.

With ``ApiKeyRequired`` and ``ApiKeySourceType: AUTHORIZER`` API Gateway takes the
``usageIdentifierKey`` the authorizer returned, and refuses the request (403,
``INVALID_API_KEY``) unless it is the value of an enabled API key in a usage plan of the stage.
That key's plan then applies per key: its throttle, a token bucket of ``burstLimit`` refilled at
``rateLimit`` a second (429 ``THROTTLED``), and its quota of requests per UTC day (429
``QUOTA_EXCEEDED``). The keys and plans are read from the (moto) API Gateway, where the template's
usage plans and the usage identifier worker put them, and re-read when an identifier is new to
the emulator or the last reading is over a second old.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class _PlanLimits:
    plan_id: str
    rate_per_second: float
    burst: int
    daily_quota: int | None


@dataclass
class _Bucket:
    tokens: float
    updated_at: float


class UsagePlanEmulator:
    def __init__(
        self,
        client: Callable[[], Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._make_client = client
        self._client: Any = None
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[str, bool, _PlanLimits | None]] = {}
        self._read_at = float("-inf")
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._quota_used: dict[tuple[str, str, str], int] = {}

    def refused(self, identifier: str | None) -> str | None:
        """The gateway response type refusing this request, or ``None`` to let it through."""
        if not identifier:
            return "INVALID_API_KEY"
        found = self._key(identifier)
        if found is None:
            return "INVALID_API_KEY"
        key_id, enabled, plan = found
        if not enabled or plan is None:
            return "INVALID_API_KEY"
        with self._lock:
            if plan.daily_quota is not None:
                day = datetime.fromtimestamp(self._wall_clock(), UTC).strftime("%Y-%m-%d")
                used = self._quota_used.get((key_id, plan.plan_id, day), 0)
                if used >= plan.daily_quota:
                    return "QUOTA_EXCEEDED"
            now = self._clock()
            bucket = self._buckets.setdefault((key_id, plan.plan_id), _Bucket(float(plan.burst), now))
            bucket.tokens = min(float(plan.burst), bucket.tokens + (now - bucket.updated_at) * plan.rate_per_second)
            bucket.updated_at = now
            if bucket.tokens < 1:
                return "THROTTLED"
            bucket.tokens -= 1
            if plan.daily_quota is not None:
                self._quota_used[(key_id, plan.plan_id, day)] = used + 1
        return None

    def _key(self, identifier: str) -> tuple[str, bool, _PlanLimits | None] | None:
        with self._lock:
            if identifier in self._keys and self._clock() - self._read_at < REFRESH_SECONDS:
                return self._keys[identifier]
        keys = self._read_keys()
        with self._lock:
            self._keys = keys
            self._read_at = self._clock()
            return self._keys.get(identifier)

    def _read_keys(self) -> dict[str, tuple[str, bool, _PlanLimits | None]]:
        if self._client is None:
            self._client = self._make_client()
        client = self._client
        plans: dict[str, _PlanLimits] = {}
        members: dict[str, str] = {}
        for plan in _all_items(client.get_usage_plans):
            throttle, quota = plan.get("throttle") or {}, plan.get("quota")
            plans[plan["id"]] = _PlanLimits(
                plan_id=plan["id"],
                rate_per_second=float(throttle.get("rateLimit", 10_000)),
                burst=int(throttle.get("burstLimit", 5_000)),
                daily_quota=int(quota["limit"]) if quota and quota.get("period") == "DAY" else None,
            )
            for key in _all_items(client.get_usage_plan_keys, usagePlanId=plan["id"]):
                members[key["id"]] = plan["id"]
        return {
            str(key["value"]): (key["id"], bool(key.get("enabled")), plans.get(members.get(key["id"], "")))
            for key in _all_items(client.get_api_keys, includeValues=True)
            if key.get("value")
        }


def _all_items(operation: Callable[..., Any], **arguments: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    position: str | None = None
    while True:
        page = operation(limit=500, **arguments, **({"position": position} if position else {}))
        items.extend(page.get("items", []))
        position = page.get("position")
        if not position:
            return items
