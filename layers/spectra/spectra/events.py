"""Domain events other capabilities react to (SQS, encrypted with the platform key).

``ThingDeleted`` carries the org and the thing, nothing else: telemetry consumes it to purge the
thing's data. It is sent after the delete has committed, so a message never announces a delete
that did not happen; a failed send is logged and counted for the operator to replay.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from spectra.observability import logger, metrics
from spectra.tenancy.context import OrgContext

THING_DELETED = "ThingDeleted"


class ThingEvents:
    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    def thing_deleted(self, org: OrgContext, thing_id: str) -> bool:
        """Announce a deleted thing; ``False`` when the message could not be sent."""
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url,
                MessageBody=json.dumps({"type": THING_DELETED, "orgId": org.org_id, "thingId": thing_id}),
                MessageAttributes={"eventType": {"DataType": "String", "StringValue": THING_DELETED}},
            )
        except (ClientError, BotoCoreError):
            logger.exception("ThingDeleted could not be published", thing_id=thing_id)
            metrics.add_metric(name="ThingDeletedPublishFailures", unit="Count", value=1)
            return False
        return True
