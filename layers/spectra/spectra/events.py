"""Domain events other capabilities react to (SQS, encrypted with the platform key).

``ThingDeleted`` carries the org and the thing, nothing else: telemetry consumes it to purge the
thing's data. The event is first written to the org's outbox in the same transaction as the
delete, so it can never be lost or announce a delete that did not happen; it is then sent, and
the outbox entry removed once SQS has it. An entry left behind (a failed send) stays in the
outbox for the retention job to send again.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from spectra.observability import logger, metrics
from spectra.repositories.dynamo import OrgScopedTable, to_item
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext

THING_DELETED = "ThingDeleted"


class ThingEvents(OrgScopedTable):
    """The outbox (org-scoped, in the records table) and the SQS queue behind it."""

    def __init__(self, sessions: Any, table: str, sqs_client: Any, queue_url: str) -> None:
        super().__init__(sessions, table)
        self._sqs = sqs_client
        self._queue_url = queue_url

    def thing_deleted_outbox_entry(self, org: OrgContext, thing_id: str) -> dict[str, Any]:
        """The transaction item that records the event together with the delete."""
        entry = {**keys.outbox_key(org, THING_DELETED, thing_id), **self._message(org, thing_id)}
        return {"Put": {"TableName": self._table, "Item": to_item(entry)}}

    def publish_thing_deleted(self, org: OrgContext, thing_id: str) -> bool:
        """Send the event and clear its outbox entry; ``False`` leaves the entry for a retry."""
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url,
                MessageBody=json.dumps(self._message(org, thing_id)),
                MessageAttributes={"eventType": {"DataType": "String", "StringValue": THING_DELETED}},
            )
            self._client(org).delete_item(
                TableName=self._table, Key=to_item(keys.outbox_key(org, THING_DELETED, thing_id))
            )
        except (ClientError, BotoCoreError):
            logger.exception("ThingDeleted stays in the outbox for a later send", thing_id=thing_id)
            metrics.add_metric(name="ThingDeletedPublishFailures", unit="Count", value=1)
            return False
        return True

    def pending_thing_deletions(self, org: OrgContext, *, limit: int = 100) -> list[str]:
        """Thing ids whose ``ThingDeleted`` is still in the outbox (its send failed)."""
        page = self._page(
            org,
            keys.outbox_partition(org),
            f"{THING_DELETED}#",
            limit=limit,
            start_after=None,
            keep=lambda _entry: True,
        )
        return [str(entry["thingId"]) for entry in page.items]

    @staticmethod
    def _message(org: OrgContext, thing_id: str) -> dict[str, str]:
        return {"type": THING_DELETED, "orgId": org.org_id, "thingId": thing_id}
