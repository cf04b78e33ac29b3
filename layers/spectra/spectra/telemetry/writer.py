"""Durable writes of telemetry frames: BatchWriteItem in 25s, unprocessed items retried.

A caller is told "written" only when every item was accepted; if DynamoDB keeps items back
past the retry budget the request fails as a whole (503) and, being idempotent per item key
(thing + timestamp), can simply be sent again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from spectra.errors import SpectraError
from spectra.repositories.dynamo import to_item
from spectra.tenancy.context import OrgContext
from spectra.tenancy.sessions import OrgSessions

BATCH_SIZE = 25
WRITE_ATTEMPTS = 8


class WriteIncomplete(SpectraError):
    status = 503
    code = "service_unavailable"
    title = "Service Unavailable"


class TelemetryWriter:
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

    def write(self, org: OrgContext, items: Sequence[dict[str, Any]]) -> int:
        """Write every item (one per frame); returns the number of BatchWriteItem calls."""
        client = self._sessions.client(org, "dynamodb")
        table = self._table_name(org.org_id)
        calls = 0
        for start in range(0, len(items), BATCH_SIZE):
            pending: dict[str, Any] = {
                table: [{"PutRequest": {"Item": to_item(item)}} for item in items[start : start + BATCH_SIZE]]
            }
            for attempt in range(WRITE_ATTEMPTS):
                response = client.batch_write_item(RequestItems=pending)
                calls += 1
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                self._sleep(min(0.05 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
            else:
                raise WriteIncomplete("Not every frame could be written; retry the request, it is safe to repeat.")
        return calls
