"""Organization profiles (name, plan, status, retention) and the operator's org registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from spectra.errors import Conflict
from spectra.repositories.dynamo import (
    OrgScopedTable,
    QueryPage,
    from_item,
    is_condition_failure,
    query_page,
    to_item,
    to_values,
    update_operation,
)
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext


class OrganizationRepository(OrgScopedTable):
    """An org's own profile, read and written with the org's credentials."""

    def get(self, org: OrgContext) -> dict[str, Any] | None:
        return self._get(org, keys.org_profile_key(org))

    def create(self, org: OrgContext, profile: Mapping[str, Any], first_key: Mapping[str, Any]) -> None:
        """Write the profile, the key set and the first admin key together, or nothing."""
        key_id = str(first_key["keyId"])
        profile_item = {**profile, **keys.org_profile_key(org), **keys.org_registry_entry(org)}
        key_item = {
            **first_key,
            **keys.api_key_key(org, key_id),
            "credentialId": keys.credential_index_value(key_id),
        }
        try:
            self._client(org).transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item(profile_item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"TableName": self._table, "Item": to_item({**keys.api_key_set_key(org), "version": 1})}},
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item(key_item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            if is_condition_failure(error):
                raise Conflict("The organization already exists.") from error
            raise

    def set_retention(self, org: OrgContext, days: int, updated_at: str, actor: str) -> dict[str, Any]:
        """Set ``telemetryRetentionDays``; returns the profile as it was before."""
        response = self._client(org).update_item(
            **update_operation(
                self._table,
                keys.org_profile_key(org),
                set_fields={"telemetryRetentionDays": days, "updatedAt": updated_at, "updatedBy": actor},
                condition="attribute_exists(pk)",
            ),
            ReturnValues="ALL_OLD",
        )
        return from_item(response["Attributes"])

    def set_status(self, org: OrgContext, status: str, updated_at: str) -> dict[str, Any]:
        response = self._client(org).update_item(
            TableName=self._table,
            Key=to_item(keys.org_profile_key(org)),
            UpdateExpression="SET #status = :status, updatedAt = :at",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_values({":status": status, ":at": updated_at}),
            ReturnValues="ALL_NEW",
        )
        return from_item(response["Attributes"])


class OrganizationRegistry:
    """The operator's list of orgs: a Query on ``gsi1`` under ``ORGS#`` with the platform role."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def page(self, *, limit: int, start_after: Mapping[str, str] | None) -> QueryPage:
        return query_page(
            self._client,
            table=self._table,
            index="gsi1",
            key_condition="gsi1pk = :registry",
            values={":registry": keys.ORG_REGISTRY_PARTITION},
            key_attributes=("pk", "sk", "gsi1pk", "gsi1sk"),
            limit=limit,
            start_after=start_after,
        )
