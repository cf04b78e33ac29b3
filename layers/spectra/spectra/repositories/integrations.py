"""Integration records and their resource mappings (org-scoped keys, org credentials).

An integration record keeps the names of its secret properties, when they last changed and
the secret's ARN and version, never a value. A mapping links a remote id to a thing or place;
a guard item keeps each remote id mapped once per integration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from spectra.identifiers import MalformedId
from spectra.repositories.dynamo import OrgScopedTable, QueryPage, query_page, to_item, update_operation
from spectra.repositories.places import counter_change, delete_when_empty, put_new
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext

Keep = Callable[[dict[str, Any]], bool]
MAX_MAPPINGS_PER_INTEGRATION = 1000
MAPPINGS_PER_TRANSACTION = 32
"""Mapping, guard and the mapped resource's counter each, plus the integration's: at most 97 of
DynamoDB's 100 items in one transaction."""


def mapped_resource_key(org: OrgContext, resource_type: str, resource_id: str) -> keys.Key:
    """The thing, site or fleet a mapping points at (it counts the mappings that do)."""
    if resource_type == "Thing":
        return keys.thing_key(org, resource_id)
    return keys.place_key(org, resource_type, resource_id)


class IntegrationRepository(OrgScopedTable):
    def get(self, org: OrgContext, integration_id: str) -> dict[str, Any] | None:
        try:
            return self._get(org, keys.integration_key(org, integration_id))
        except MalformedId:
            return None

    def page(self, org: OrgContext, *, limit: int, start_after: Mapping[str, str] | None, keep: Keep) -> QueryPage:
        return self._page(
            org,
            keys.integrations_partition(org),
            keys.INTEGRATION_SORT_PREFIX,
            limit=limit,
            start_after=start_after,
            keep=keep,
        )

    def create(self, org: OrgContext, record: Mapping[str, Any]) -> None:
        item = {**record, **keys.integration_key(org, str(record["integrationId"]))}
        self._transact(org, [put_new(self._table, item)], conflict="The integration already exists.")

    def update(
        self, org: OrgContext, integration_id: str, changes: Mapping[str, Any], *, seen_updated_at: str
    ) -> dict[str, Any]:
        """Apply ``changes`` unless the record changed since it was read (then 409)."""
        operation = update_operation(
            self._table,
            keys.integration_key(org, integration_id),
            set_fields=changes,
            condition="attribute_exists(pk) AND updatedAt = :seen",
            condition_values={":seen": seen_updated_at},
        )
        self._transact(
            org, [{"Update": operation}], conflict="The integration changed meanwhile; read it again and retry."
        )
        record = self.get(org, integration_id)
        if record is None:
            raise KeyError(integration_id)
        return record

    def delete(self, org: OrgContext, integration_id: str, *, seen_updated_at: str) -> None:
        """Delete the record if it did not change and no mapping points at it any more (a
        mapping created meanwhile makes this a 409, never a dangling mapping)."""
        self._transact(
            org,
            [
                delete_when_empty(
                    self._table,
                    keys.integration_key(org, integration_id),
                    ["mappingCount"],
                    seen_updated_at=seen_updated_at,
                )
            ],
            conflict="The integration changed meanwhile; read it again and retry.",
        )

    # -- resource mappings ------------------------------------------------------------------

    def get_mapping(self, org: OrgContext, mapping_id: str) -> dict[str, Any] | None:
        try:
            return self._get(org, keys.resource_mapping_key(org, mapping_id))
        except MalformedId:
            return None

    def create_mapping(self, org: OrgContext, mapping: Mapping[str, Any]) -> None:
        """The mapping and its guard together; a remote id already mapped is a 409."""
        mapping_id, integration_id = str(mapping["mappingId"]), str(mapping["integrationId"])
        item = {
            **mapping,
            **keys.resource_mapping_key(org, mapping_id),
            **keys.resource_mapping_index_attributes(org, integration_id, mapping_id),
        }
        guard = {
            **keys.resource_mapping_guard_key(org, integration_id, str(mapping["externalId"])),
            "mappingId": mapping_id,
        }
        # The integration counts its mappings in the same transaction: its delete waits for zero.
        integration = update_operation(
            self._table,
            keys.integration_key(org, integration_id),
            add={"mappingCount": 1},
            condition="attribute_exists(pk) AND (attribute_not_exists(mappingCount) OR mappingCount < :most)",
            condition_values={":most": MAX_MAPPINGS_PER_INTEGRATION},
        )
        # So does the mapped resource: deleting it waits until nothing maps to it any more.
        resource = mapped_resource_key(org, str(mapping["resourceType"]), str(mapping["resourceId"]))
        self._transact(
            org,
            [
                put_new(self._table, item),
                put_new(self._table, guard),
                {"Update": integration},
                counter_change(self._table, resource, {"mappingCount": 1}),
            ],
            conflict="The mapping could not be created.",
            conflicts=[
                None,
                "That externalId is already mapped for this integration.",
                f"The integration is gone, or already has {MAX_MAPPINGS_PER_INTEGRATION} mappings.",
                "The mapped resource was deleted meanwhile.",
            ],
        )

    def delete_mappings(self, org: OrgContext, integration_id: str, mappings: Sequence[Mapping[str, Any]]) -> None:
        """Delete up to ``MAPPINGS_PER_TRANSACTION`` mappings of one integration, their guards
        and their count, together (a mapping already gone makes it a 409: read again)."""
        items: list[dict[str, Any]] = []
        per_resource: dict[tuple[str, str], int] = {}
        for mapping in mappings:
            target = (str(mapping["resourceType"]), str(mapping["resourceId"]))
            per_resource[target] = per_resource.get(target, 0) + 1
            guard = keys.resource_mapping_guard_key(org, integration_id, str(mapping["externalId"]))
            items.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": to_item(keys.resource_mapping_key(org, str(mapping["mappingId"]))),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
            )
            items.append({"Delete": {"TableName": self._table, "Key": to_item(guard)}})
        # One counter change per resource (a transaction may touch an item only once); a resource
        # deleted meanwhile cannot be (it waits for zero), so each one still exists.
        for (resource_type, resource_id), mapped in per_resource.items():
            resource = mapped_resource_key(org, resource_type, resource_id)
            items.append(counter_change(self._table, resource, {"mappingCount": -mapped}))
        integration = keys.integration_key(org, integration_id)
        items.append(counter_change(self._table, integration, {"mappingCount": -len(mappings)}))
        self._transact(org, items, conflict="The mapping was deleted meanwhile.")

    def mappings_page(
        self,
        org: OrgContext,
        integration_id: str | None,
        *,
        limit: int,
        start_after: Mapping[str, str] | None,
        keep: Keep,
    ) -> QueryPage:
        """All the org's mappings, or one integration's (``gsi1``)."""
        if integration_id is None:
            return self._page(
                org,
                keys.resource_mappings_partition(org),
                keys.RESOURCE_MAPPING_SORT_PREFIX,
                limit=limit,
                start_after=start_after,
                keep=keep,
            )
        return query_page(
            self._client(org),
            table=self._table,
            index="gsi1",
            key_condition="gsi1pk = :pk",
            values={":pk": keys.integration_mappings_partition(org, integration_id)},
            key_attributes=("pk", "sk", "gsi1pk", "gsi1sk"),
            limit=limit,
            start_after=start_after,
            keep=keep,
        )
