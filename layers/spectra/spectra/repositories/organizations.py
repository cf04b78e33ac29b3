"""Organization profiles (name, plan, status, retention) and the operator's org registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from spectra.errors import Conflict
from spectra.models.organization import DEFAULT_RETENTION_DAYS
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

    def set_retention(
        self, org: OrgContext, days: int, updated_at: str, actor: str, *, expected: int | None
    ) -> dict[str, Any] | None:
        """Set ``telemetryRetentionDays`` if it is still ``expected`` (``None``: never set).

        Lengthening also marks the org's stored telemetry for re-stamping (``telemetryRestampSince``,
        kept if already set), in the same write, so the retention job never misses it. Returns the
        profile as it was, or ``None`` when another change came first.
        """
        lengthening = days > (expected if expected is not None else DEFAULT_RETENTION_DAYS)
        assignments = ["telemetryRetentionDays = :days", "updatedAt = :at", "updatedBy = :by"]
        if lengthening:
            assignments.append("telemetryRestampSince = if_not_exists(telemetryRestampSince, :at)")
        values: dict[str, Any] = {":days": days, ":at": updated_at, ":by": actor}
        if expected is None:
            guard = "attribute_exists(pk) AND attribute_not_exists(telemetryRetentionDays)"
        else:
            guard = "attribute_exists(pk) AND telemetryRetentionDays = :expected"
            values[":expected"] = expected
        try:
            response = self._client(org).update_item(
                TableName=self._table,
                Key=to_item(keys.org_profile_key(org)),
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression=guard,
                ExpressionAttributeValues=to_values(values),
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise
        return from_item(response["Attributes"])

    def restamp_done(self, org: OrgContext, since: str, days: int) -> bool:
        """Clear the re-stamp mark after a pass that re-stamped to ``days``; left in place when
        the retention changed meanwhile (the next pass re-stamps again)."""
        try:
            self._client(org).update_item(
                TableName=self._table,
                Key=to_item(keys.org_profile_key(org)),
                UpdateExpression="REMOVE telemetryRestampSince",
                ConditionExpression="telemetryRestampSince = :since AND telemetryRetentionDays = :days",
                ExpressionAttributeValues=to_values({":since": since, ":days": days}),
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def change_facts(
        self, org: OrgContext, changes: Mapping[str, Any], updated_at: str, *, expected_version: int
    ) -> dict[str, Any] | None:
        """Change facts every key copies (plan, limit overrides, usage identifier) if the profile
        is still at ``expected_version`` of them; bumps the version. ``None`` when another change
        came first; the profile after the change otherwise. A ``None`` value removes the field."""
        guard = "orgFactsVersion = :expected" if expected_version else "attribute_not_exists(orgFactsVersion)"
        operation = update_operation(
            self._table,
            keys.org_profile_key(org),
            set_fields={
                **{name: value for name, value in changes.items() if value is not None},
                "orgFactsVersion": expected_version + 1,
                "updatedAt": updated_at,
            },
            remove_fields=tuple(name for name, value in changes.items() if value is None),
            condition=f"attribute_exists(pk) AND {guard}",
            condition_values={":expected": expected_version} if expected_version else None,
        )
        try:
            response = self._client(org).update_item(**operation, ReturnValues="ALL_NEW")
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise
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
