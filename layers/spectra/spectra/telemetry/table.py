"""One org's telemetry table, reached only with that org's own credentials.

Items are keyed ``thingId`` (partition) and ``timestamp`` (epoch ms, sort). Frames have
timestamps ≥ 0; each thing also has one *latest values* item at ``timestamp = -1`` that keeps,
per metric, the newest value and its time (``GET …/summary`` reads it instead of walking back
through a year of frames). Every read uses key conditions only; every range read of frames
starts at 0 so the latest-values item is never mistaken for a frame.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from spectra.errors import SpectraError
from spectra.repositories.dynamo import from_item, is_condition_failure, to_item, to_values
from spectra.tenancy.context import OrgContext
from spectra.tenancy.sessions import OrgSessions

BATCH_SIZE = 25
WRITE_ATTEMPTS = 8
LATEST_VALUES_TIMESTAMP = -1
LATEST_VALUES_ATTEMPTS = 5
FALLBACK_SEARCH_FRAMES = 2_000
FALLBACK_PAGE = 500
FRAME_KEY = ("thingId", "timestamp")


class WriteIncomplete(SpectraError):
    """DynamoDB kept items back past the retry budget: 503, and the request is safe to repeat."""

    status = 503
    code = "service_unavailable"
    title = "Service Unavailable"


def _backoff(attempt: int) -> float:
    return float(min(0.05 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto


@dataclass
class OrgTelemetryTable:
    """The table of one org, with a client that acts as that org's telemetry role."""

    client: Any
    name: str
    sleep: Callable[[float], None] = time.sleep

    # -- frames -----------------------------------------------------------------------------

    def frames(
        self,
        thing_id: str,
        start_ms: int,
        end_ms: int,
        *,
        newest_first: bool = False,
        page_size: int | None = None,
        keys_only: bool = False,
        projection: Sequence[str] = (),
    ) -> Iterator[dict[str, Any]]:
        """Frames of ``thing_id`` with ``start_ms <= timestamp < end_ms``, read lazily page by page
        (``keys_only`` or ``projection``: only those attributes)."""
        start_ms = max(start_ms, 0)
        if end_ms <= start_ms:
            return
        arguments: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "thingId = :thing AND #ts BETWEEN :start AND :last",
            "ExpressionAttributeNames": {"#ts": "timestamp"},
            "ExpressionAttributeValues": to_values({":thing": thing_id, ":start": start_ms, ":last": end_ms - 1}),
            "ScanIndexForward": not newest_first,
        }
        wanted = FRAME_KEY if keys_only else tuple(projection)
        if wanted:
            names = {f"#p{index}": name for index, name in enumerate(wanted)}
            arguments["ExpressionAttributeNames"].update(names)
            arguments["ProjectionExpression"] = ", ".join(names)
        if page_size:
            arguments["Limit"] = page_size
        yield from self._query(arguments)

    def all_keys(self, thing_id: str) -> Iterator[dict[str, Any]]:
        """Every item key of ``thing_id``, frames and the latest-values item (to purge a thing)."""
        arguments: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "thingId = :thing",
            "ExpressionAttributeNames": {"#ts": "timestamp"},
            "ExpressionAttributeValues": to_values({":thing": thing_id}),
            "ProjectionExpression": "thingId, #ts",
        }
        yield from self._query(arguments)

    def put_frames(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Write every frame, or raise ``WriteIncomplete`` (then nothing is promised)."""
        self._batch_write([{"PutRequest": {"Item": to_item(item)}} for item in items])

    def delete_frames(self, keys: Sequence[Mapping[str, Any]]) -> None:
        """Delete items by key (a missing one is not an error: deleting is idempotent)."""
        requests = [{"DeleteRequest": {"Key": to_item({k: key[k] for k in FRAME_KEY})}} for key in keys]
        self._batch_write(requests)

    def restamp(self, thing_id: str, timestamp: int, expires_at: int) -> bool:
        """Move a frame's TTL later (never earlier); ``False`` when it needed no change or is gone."""
        try:
            self.client.update_item(
                TableName=self.name,
                Key=to_item({"thingId": thing_id, "timestamp": timestamp}),
                UpdateExpression="SET expiresAt = :expires",
                ConditionExpression=(
                    "attribute_exists(thingId) AND (attribute_not_exists(expiresAt) OR expiresAt < :expires)"
                ),
                ExpressionAttributeValues=to_values({":expires": expires_at}),
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    # -- latest values ----------------------------------------------------------------------

    def latest_values(self, thing_id: str) -> dict[str, dict[str, Any]]:
        """``{metricId: {"value": …, "timestamp": ms}}`` for the newest value of each metric."""
        response = self.client.get_item(
            TableName=self.name,
            Key=to_item({"thingId": thing_id, "timestamp": LATEST_VALUES_TIMESTAMP}),
        )
        item = from_item(response["Item"]) if "Item" in response else {}
        latest = item.get("latest")
        return dict(latest) if isinstance(latest, dict) else {}

    def merge_latest_values(
        self, thing_id: str, frames: Mapping[int, Mapping[str, Any]], stamp: str, *, floor_ms: int
    ) -> None:
        """Fold ``frames`` (values by metric id, by timestamp) into the latest-values item.

        A newer or equal timestamp replaces a metric's entry (the same timestamp again is an
        overwrite: last write wins). A metric whose entry came from a frame now overwritten
        without it falls back to its newest earlier value inside the window (from ``floor_ms``),
        looked for within a bounded read. Concurrent ingests are serialised by a revision number.
        """
        newest: dict[str, dict[str, Any]] = {}
        for timestamp, values in sorted(frames.items()):
            for metric_id, value in values.items():
                newest[metric_id] = {"value": value, "timestamp": timestamp}
        if not newest:
            return
        key = {"thingId": thing_id, "timestamp": LATEST_VALUES_TIMESTAMP}
        for attempt in range(LATEST_VALUES_ATTEMPTS):
            response = self.client.get_item(TableName=self.name, Key=to_item(key), ConsistentRead=True)
            current = from_item(response["Item"]) if "Item" in response else {}
            latest = dict(current.get("latest") or {})
            changed = False
            for metric_id, entry in newest.items():
                known = latest.get(metric_id)
                if known is None or int(known["timestamp"]) <= entry["timestamp"]:
                    latest[metric_id] = entry
                    changed = True
            for metric_id, known in list(latest.items()):
                overwritten = frames.get(int(known["timestamp"]))
                if overwritten is not None and metric_id not in overwritten:
                    earlier = self._newest_value_before(thing_id, metric_id, floor_ms, int(known["timestamp"]))
                    if earlier is None:
                        del latest[metric_id]
                    else:
                        latest[metric_id] = earlier
                    changed = True
            if not changed:
                return
            revision = int(current.get("revision", 0))
            try:
                self.client.put_item(
                    TableName=self.name,
                    Item=to_item({**key, "latest": latest, "revision": revision + 1, "updatedAt": stamp}),
                    ConditionExpression="attribute_not_exists(thingId) OR revision = :seen",
                    ExpressionAttributeValues=to_values({":seen": revision}),
                )
                return
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
                self.sleep(_backoff(attempt))
        raise WriteIncomplete("The frames were written; the latest values could not be updated. Retry the request.")

    def _newest_value_before(self, thing_id: str, metric_id: str, floor_ms: int, before: int) -> dict[str, Any] | None:
        """The newest value of a metric in the thing's frames in ``[floor_ms, before)`` (a rare
        path: a frame was overwritten without a metric it held). The search reads at most
        ``FALLBACK_SEARCH_FRAMES`` frames; past that the summary shows no value for the metric
        rather than make one ingest read a thing's whole history."""
        frames = self.frames(thing_id, floor_ms, before, newest_first=True, page_size=FALLBACK_PAGE)
        for frame in itertools.islice(frames, FALLBACK_SEARCH_FRAMES):
            values = frame.get("values") or {}
            if metric_id in values:
                return {"value": values[metric_id], "timestamp": int(frame["timestamp"])}
        return None

    def prune_latest_values(self, thing_id: str, cutoff: int) -> int:
        """Drop latest values older than ``cutoff`` (retention applies to them too); the item
        goes when nothing is left. Returns how many values were dropped."""
        key = {"thingId": thing_id, "timestamp": LATEST_VALUES_TIMESTAMP}
        for attempt in range(LATEST_VALUES_ATTEMPTS):
            response = self.client.get_item(TableName=self.name, Key=to_item(key), ConsistentRead=True)
            if "Item" not in response:
                return 0
            current = from_item(response["Item"])
            latest = dict(current.get("latest") or {})
            kept = {metric_id: entry for metric_id, entry in latest.items() if int(entry["timestamp"]) >= cutoff}
            if len(kept) == len(latest):
                return 0
            guard = {
                "ConditionExpression": "revision = :seen",
                "ExpressionAttributeValues": to_values({":seen": int(current.get("revision", 0))}),
            }
            try:
                if kept:
                    item = {**current, "latest": kept, "revision": int(current.get("revision", 0)) + 1}
                    self.client.put_item(TableName=self.name, Item=to_item(item), **guard)
                else:
                    self.client.delete_item(TableName=self.name, Key=to_item(key), **guard)
                return len(latest) - len(kept)
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
                self.sleep(_backoff(attempt))
        raise WriteIncomplete("The latest values could not be pruned; the next run tries again.")

    # -- plumbing ---------------------------------------------------------------------------

    def _query(self, arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a Query, page by page, read only as far as the caller iterates."""
        while True:
            response = self.client.query(**arguments)
            for item in response.get("Items", []):
                yield from_item(item)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            arguments["ExclusiveStartKey"] = last

    def _batch_write(self, requests: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH_SIZE):
            pending: dict[str, Any] = {self.name: list(requests[start : start + BATCH_SIZE])}
            for attempt in range(WRITE_ATTEMPTS):
                response = self.client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                self.sleep(_backoff(attempt))
            else:
                raise WriteIncomplete("Not every item could be written; retry the request, it is safe to repeat.")


class TelemetryTables:
    """Hands out each org's table with a client acting as that org's own telemetry role."""

    def __init__(
        self,
        sessions: OrgSessions,
        table_name: Callable[[str], str],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sessions = sessions
        self._table_name = table_name
        self._sleep = sleep

    def of(self, org: OrgContext) -> OrgTelemetryTable:
        return OrgTelemetryTable(
            client=self._sessions.client(org, "dynamodb"), name=self._table_name(org.org_id), sleep=self._sleep
        )
