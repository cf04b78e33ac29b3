"""The retention job's checkpoints: how far each org's pass got, and who is working on it.

One item per org under the ``RETENTION#`` partition, read and written with the retention
function's own role (never an org's): it holds positions and counts, no customer data. A lease
keeps two overlapping runs (EventBridge delivers at least once; an operator may run the job by
hand) from working on the same org at the same time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from spectra.repositories.dynamo import from_item, is_condition_failure, query_page, to_item, to_values
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext

PAGE_SIZE = 100


class RetentionCheckpoints:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def all(self) -> dict[str, dict[str, Any]]:
        """Every org's checkpoint, by org id (a Query of one partition, page by page)."""
        found: dict[str, dict[str, Any]] = {}
        start: Mapping[str, str] | None = None
        while True:
            page = query_page(
                self._client,
                table=self._table,
                key_condition="pk = :pk",
                values={":pk": keys.RETENTION_PARTITION},
                key_attributes=("pk", "sk"),
                limit=PAGE_SIZE,
                start_after=start,
            )
            found.update({str(item["orgId"]): item for item in page.items if item.get("orgId")})
            if page.resume_after is None:
                return found
            start = page.resume_after

    def claim(self, org: OrgContext, owner: str, now: int, lease_seconds: int) -> dict[str, Any] | None:
        """Take the org's lease (free or expired); the checkpoint as stored, or ``None`` when
        another run holds it."""
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=to_item(keys.retention_checkpoint_key(org)),
                UpdateExpression="SET leaseOwner = :owner, leaseUntil = :until, orgId = :org",
                ConditionExpression="attribute_not_exists(leaseUntil) OR leaseUntil < :now OR leaseOwner = :owner",
                ExpressionAttributeValues=to_values(
                    {":owner": owner, ":until": now + lease_seconds, ":now": now, ":org": org.org_id}
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise
        return from_item(response["Attributes"])

    def save(self, org: OrgContext, owner: str, checkpoint: Mapping[str, Any], *, lease_until: int) -> bool:
        """Record progress while holding the lease, and extend it to ``lease_until`` (0 gives it
        up); ``False`` when the lease was lost to another run, which then owns the org's pass."""
        item: dict[str, Any] = {
            **{k: v for k, v in checkpoint.items() if k not in ("pk", "sk")},
            **keys.retention_checkpoint_key(org),
            "orgId": org.org_id,
            "leaseOwner": owner,
            "leaseUntil": lease_until,
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_item(item),
                ConditionExpression="leaseOwner = :owner",
                ExpressionAttributeValues=to_values({":owner": owner}),
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True
