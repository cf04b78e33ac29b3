"""The token buckets in DynamoDB: one item per org per tier, reached with the org's credentials.

Admitting a request is one conditional ``UpdateItem``. DynamoDB update expressions cannot take
``max(tat, now)``, so the update is written for one of two cases, guessed from what this
container last saw of the bucket:

- *idle* (the bucket is full: ``tat <= now`` or no item): ``tat = now + T``;
- *busy* (tokens have been spent: ``now < tat <= now + (B-1)T``): ``tat = tat + T``.

When the guess is wrong the condition fails and DynamoDB returns the item as it is
(``ReturnValuesOnConditionCheckFailure``); from it we know whether the bucket is empty (refused:
nothing was written, so a refused request spends nothing) or which update to send instead. So
an admitted request costs one write, two when the bucket changed state since this container last
looked; a refused one costs one. The same update counts the day's admitted requests (one
attribute per UTC day, the one from two days before removed) and moves the item's TTL, so
buckets left idle expire.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from spectra.ratelimits.bucket import MICROS, Admission, admit, level
from spectra.ratelimits.plans import Tier, TierLimit
from spectra.repositories.dynamo import OrgScopedTable, from_item, is_condition_failure, to_values
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext
from spectra.tenancy.sessions import OrgSessions

ATTEMPTS = 3
KEEP_IDLE_BUCKET_SECONDS = 24 * 3600
"""How long after its last use (and the end of that day) a bucket item lingers before its TTL."""
MAX_REMEMBERED_BUCKETS = 10_000


class BucketContention(RuntimeError):
    """Concurrent writers changed the bucket under every attempt (never expected in practice)."""


def day_attribute(day: datetime) -> str:
    """The attribute counting one UTC day's admitted requests, e.g. ``requests20261127``."""
    return f"requests{day:%Y%m%d}"


@dataclass(frozen=True)
class BucketReading:
    """A tier's bucket as ``GET /organization/limits`` shows it."""

    admission: Admission
    requests_today: int


class TokenBuckets(OrgScopedTable):
    """Per-org, per-tier token buckets (see the module docstring for the one-write protocol)."""

    def __init__(self, sessions: OrgSessions, table: str) -> None:
        super().__init__(sessions, table)
        self._last_tat: dict[tuple[str, Tier], int] = {}
        self._lock = threading.Lock()

    def take(self, org: OrgContext, tier: Tier, limit: TierLimit, now_us: int) -> Admission:
        """Admit one request of ``tier`` or refuse it (``Admission.allowed``); writes only when
        admitting."""
        remembered = self._remembered(org, tier)
        busy = remembered is not None and remembered > now_us
        for _attempt in range(ATTEMPTS):
            try:
                attributes = self._client(org).update_item(
                    **self._admit_request(org, tier, limit, now_us, busy=busy), ReturnValues="UPDATED_NEW"
                )["Attributes"]
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
                current = _stored_tat(dict(error.response).get("Item"))
                decision = admit(tier, limit, current, now_us)
                if not decision.allowed:
                    self._remember(org, tier, decision.tat_us)
                    return decision
                busy = current is not None and current > now_us
                continue
            new_tat = int(from_item(attributes)["tat"])
            self._remember(org, tier, new_tat)
            # The decision from the stored state before this write, which the condition pinned.
            before = new_tat - limit.interval_us
            return admit(tier, limit, before if busy else None, now_us)
        raise BucketContention(f"bucket {tier} kept changing")

    def read(self, org: OrgContext, limits: dict[Tier, TierLimit], now_us: int) -> dict[Tier, BucketReading]:
        """Every tier's bucket, without taking a token (one Query of the org's partition)."""
        response = self._client(org).query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_values({":pk": keys.rate_limit_partition(org)}),
            ConsistentRead=True,
        )
        stored = {str(item["sk"]): item for item in (from_item(raw) for raw in response.get("Items", []))}
        today = day_attribute(_utc(now_us))
        readings: dict[Tier, BucketReading] = {}
        for tier, limit in limits.items():
            item = stored.get(keys.rate_limit_bucket_key(org, tier.value)["sk"], {})
            tat = int(item["tat"]) if "tat" in item else None
            readings[tier] = BucketReading(level(tier, limit, tat, now_us), int(item.get(today, 0)))
        return readings

    def _admit_request(
        self, org: OrgContext, tier: Tier, limit: TierLimit, now_us: int, *, busy: bool
    ) -> dict[str, Any]:
        now = _utc(now_us)
        end_of_day = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        latest_tat_us = now_us + limit.burst * limit.interval_us
        expires_at = max(int(end_of_day.timestamp()), -(-latest_tat_us // MICROS)) + KEEP_IDLE_BUCKET_SECONDS
        values: dict[str, Any] = {":one": 1, ":expires": expires_at, ":now": now_us}
        if busy:
            assignment = "tat = tat + :interval"
            condition = "tat > :now AND tat <= :latest"
            values[":interval"] = limit.interval_us
            values[":latest"] = now_us + (limit.burst - 1) * limit.interval_us
        else:
            assignment = "tat = :next"
            condition = "attribute_not_exists(tat) OR tat <= :now"
            values[":next"] = now_us + limit.interval_us
        return {
            "TableName": self._table,
            "Key": to_values(keys.rate_limit_bucket_key(org, tier.value)),
            "UpdateExpression": f"SET {assignment}, expiresAt = :expires ADD #today :one REMOVE #stale",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {
                "#today": day_attribute(now),
                "#stale": day_attribute(now - timedelta(days=2)),
            },
            "ExpressionAttributeValues": to_values(values),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _remembered(self, org: OrgContext, tier: Tier) -> int | None:
        with self._lock:
            return self._last_tat.get((org.org_id, tier))

    def _remember(self, org: OrgContext, tier: Tier, tat_us: int) -> None:
        with self._lock:
            if len(self._last_tat) >= MAX_REMEMBERED_BUCKETS:
                self._last_tat.clear()
            self._last_tat[(org.org_id, tier)] = tat_us


def _stored_tat(item: Any) -> int | None:
    if not item or "tat" not in item:
        return None
    return int(from_item(item)["tat"])


def _utc(now_us: int) -> datetime:
    return datetime.fromtimestamp(now_us / MICROS, UTC)
