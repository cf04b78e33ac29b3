"""The token buckets in DynamoDB: one item per org per tier, reached with the org's credentials.

Admitting a request is one conditional ``UpdateItem``. DynamoDB update expressions cannot take
``max(tat, now)``, so the update is written for one of two cases, guessed from what this
container last saw of the bucket:

- *idle* (the bucket is full: ``tat <= now`` or no item): ``tat = now + T``;
- *busy* (tokens have been spent: ``now < tat <= now + (B-1)T``, at this ``T``): ``tat = tat + T``.

When the guess is wrong the condition fails and DynamoDB returns the item as it is
(``ReturnValuesOnConditionCheckFailure``); from it we know whether the bucket is empty (refused:
nothing was written, so a refused request spends nothing) or which update to send instead. So
an admitted request costs one write, two when the bucket changed state since this container last
looked (or after the org's limit changed: the backlog is then converted to the new limit with a
compare-and-set); a refused one costs one. The same update records the limit the bucket is under,
an admission id (a retried write whose first attempt landed is recognised, never counted twice),
counts the day's admitted requests (one attribute per UTC day, the one from two days before
removed) and moves the item's TTL, so buckets left idle expire. Its client gives up within about
a second, so a slow store fails open rather than holding the request.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from spectra.ratelimits.bucket import MICROS, Admission, admit, level, rescaled
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


BUCKET_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=0.5, read_timeout=0.5)
"""A bucket write either answers fast or is given up (fail open): a slow store must never hold a
request until the function times out."""


class TokenBuckets(OrgScopedTable):
    """Per-org, per-tier token buckets (see the module docstring for the one-write protocol)."""

    def __init__(self, sessions: OrgSessions, table: str) -> None:
        super().__init__(sessions, table)
        self._last_tat: dict[tuple[str, Tier], int] = {}
        self._lock = threading.Lock()

    def take(self, org: OrgContext, tier: Tier, limit: TierLimit, now_us: int) -> Admission:
        """Admit one request of ``tier`` or refuse it (``Admission.allowed``); writes only when
        admitting, and at most once per admission even when a write is retried."""
        remembered = self._remembered(org, tier)
        admission_id = uuid.uuid4().hex
        busy = remembered is not None and remembered > now_us
        request = self._admit_request(org, tier, limit, now_us, admission_id, busy=busy)
        for _attempt in range(ATTEMPTS):
            try:
                attributes = self._client(org).update_item(**request, ReturnValues="UPDATED_NEW")["Attributes"]
                new_tat = int(from_item(attributes)["tat"])
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
                raw: Any = dict(error.response).get("Item")
                stored = _StoredBucket.of(from_item(raw) if raw else {})
                if stored.last_admission == admission_id:
                    # A retried write whose first attempt had landed: this request was admitted.
                    new_tat = int(stored.tat or now_us)
                else:
                    decision = admit(tier, limit, rescaled(stored.tat, stored.interval_us, limit, now_us), now_us)
                    if not decision.allowed:
                        self._remember(org, tier, decision.tat_us)
                        return decision
                    request = self._retry_request(org, tier, limit, now_us, admission_id, stored, decision)
                    continue
            self._remember(org, tier, new_tat)
            # The decision this write made: the token before ``new_tat`` was the one taken.
            return admit(tier, limit, new_tat - limit.interval_us, now_us)
        raise BucketContention(f"bucket {tier} kept changing")

    def _client(self, org: OrgContext) -> Any:
        return self._sessions.client(org, "dynamodb", config=BUCKET_CLIENT_CONFIG)

    def read(self, org: OrgContext, limits: dict[Tier, TierLimit], now_us: int) -> dict[Tier, BucketReading]:
        """Every tier's bucket, without taking a token (one Query of the org's partition)."""
        response = self._client(org).query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_values({":pk": keys.rate_limit_partition(org)}),
            ConsistentRead=True,
        )
        items = {str(item["sk"]): item for item in (from_item(raw) for raw in response.get("Items", []))}
        today = day_attribute(_utc(now_us))
        readings: dict[Tier, BucketReading] = {}
        for tier, limit in limits.items():
            item = items.get(keys.rate_limit_bucket_key(org, tier.value)["sk"], {})
            stored = _StoredBucket.of(item)
            tat = rescaled(stored.tat, stored.interval_us, limit, now_us)
            readings[tier] = BucketReading(level(tier, limit, tat, now_us), int(item.get(today, 0)))
        return readings

    def _admit_request(
        self, org: OrgContext, tier: Tier, limit: TierLimit, now_us: int, admission_id: str, *, busy: bool
    ) -> dict[str, Any]:
        """The one-write admission for a bucket guessed idle (full) or busy under this limit."""
        values: dict[str, Any] = {":now": now_us}
        if busy:
            assignment = "tat = tat + :limitInterval"
            condition = "tat > :now AND tat <= :latest AND intervalUs = :limitInterval AND burst = :limitBurst"
            values[":latest"] = now_us + (limit.burst - 1) * limit.interval_us
        else:
            assignment = "tat = :next"
            condition = "attribute_not_exists(tat) OR tat <= :now"
            values[":next"] = now_us + limit.interval_us
        return self._admission_write(org, tier, limit, now_us, admission_id, assignment, condition, values)

    def _retry_request(
        self,
        org: OrgContext,
        tier: Tier,
        limit: TierLimit,
        now_us: int,
        admission_id: str,
        stored: _StoredBucket,
        decision: Admission,
    ) -> dict[str, Any]:
        """The write after a wrong guess, from the bucket as DynamoDB returned it."""
        if stored.tat is None or stored.tat <= now_us:
            return self._admit_request(org, tier, limit, now_us, admission_id, busy=False)
        if stored.built_under(limit):
            return self._admit_request(org, tier, limit, now_us, admission_id, busy=True)
        # Built under another limit: convert and admit in one write, if it is still as read.
        values: dict[str, Any] = {":new": decision.tat_us, ":seen": stored.tat}
        condition = "tat = :seen"
        for attribute, seen in (("intervalUs", stored.interval_us), ("burst", stored.burst)):
            if seen is None:
                condition += f" AND attribute_not_exists({attribute})"
            else:
                condition += f" AND {attribute} = :seen{attribute}"
                values[f":seen{attribute}"] = seen
        return self._admission_write(org, tier, limit, now_us, admission_id, "tat = :new", condition, values)

    def _admission_write(
        self,
        org: OrgContext,
        tier: Tier,
        limit: TierLimit,
        now_us: int,
        admission_id: str,
        assignment: str,
        condition: str,
        values: dict[str, Any],
    ) -> dict[str, Any]:
        """One admission write: the bucket's new state and the limit it is under, the admission
        it records (so a retried write is recognised), today's count and the item's TTL."""
        now = _utc(now_us)
        end_of_day = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        latest_tat_us = now_us + limit.burst * limit.interval_us
        expires_at = max(int(end_of_day.timestamp()), -(-latest_tat_us // MICROS)) + KEEP_IDLE_BUCKET_SECONDS
        return {
            "TableName": self._table,
            "Key": to_values(keys.rate_limit_bucket_key(org, tier.value)),
            "UpdateExpression": (
                f"SET {assignment}, intervalUs = :limitInterval, burst = :limitBurst, "
                "lastAdmission = :admission, expiresAt = :expires ADD #today :one REMOVE #stale"
            ),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {
                "#today": day_attribute(now),
                "#stale": day_attribute(now - timedelta(days=2)),
            },
            "ExpressionAttributeValues": to_values(
                {
                    **values,
                    ":limitInterval": limit.interval_us,
                    ":limitBurst": limit.burst,
                    ":admission": admission_id,
                    ":one": 1,
                    ":expires": expires_at,
                }
            ),
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


@dataclass(frozen=True)
class _StoredBucket:
    """A bucket item as DynamoDB holds it (``None`` fields where absent)."""

    tat: int | None
    interval_us: int | None
    burst: int | None
    last_admission: str | None

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> _StoredBucket:
        def number(name: str) -> int | None:
            return int(item[name]) if item.get(name) is not None else None

        admission = item.get("lastAdmission")
        return cls(number("tat"), number("intervalUs"), number("burst"), str(admission) if admission else None)

    def built_under(self, limit: TierLimit) -> bool:
        return (self.interval_us, self.burst) == (limit.interval_us, limit.burst)


def _utc(now_us: int) -> datetime:
    return datetime.fromtimestamp(now_us / MICROS, UTC)
