"""Definition records: metrics (with their unique-name guards), thing types and versions, templates.

Every write that must hold together (a metric and its name guard; a type and its first
version; a new version and the type's pointer to it) is one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from spectra import lifecycle
from spectra.errors import Conflict
from spectra.identifiers import MalformedId
from spectra.repositories.dynamo import OrgScopedTable, QueryPage, is_condition_failure, to_item, update_operation
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext

CONCURRENT_CHANGE = "The record changed at the same time; fetch it again and retry."


def _put(table: str, item: Mapping[str, Any], condition: str = "attribute_not_exists(pk)") -> dict[str, Any]:
    return {"Put": {"TableName": table, "Item": to_item(item), "ConditionExpression": condition}}


class _DefinitionTable(OrgScopedTable):
    """Get, page and guarded update for one kind of definition, keyed by ``key_of``."""

    partition: Callable[[OrgContext], str]
    sort_prefix: str

    def key_of(self, org: OrgContext, record_id: str) -> keys.Key:
        raise NotImplementedError

    def get(self, org: OrgContext, record_id: str) -> dict[str, Any] | None:
        """The record, deleted or not; ``None`` if absent or the id is malformed."""
        try:
            key = self.key_of(org, record_id)
        except MalformedId:
            return None
        return self._get(org, key)

    def page(
        self,
        org: OrgContext,
        *,
        limit: int,
        start_after: Mapping[str, str] | None,
        keep: Callable[[dict[str, Any]], bool],
    ) -> QueryPage:
        return self._page(
            org, type(self).partition(org), self.sort_prefix, limit=limit, start_after=start_after, keep=keep
        )

    def update(
        self,
        org: OrgContext,
        record_id: str,
        *,
        set_fields: Mapping[str, Any],
        condition: str,
        condition_values: Mapping[str, Any],
        history: Mapping[str, str] | None = None,
        remove_fields: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Apply a guarded change and return the record as it now is (409 if the guard fails)."""
        return self._apply(
            org,
            self.update_operation(
                org,
                record_id,
                set_fields=set_fields,
                condition=condition,
                condition_values=condition_values,
                history=history,
                remove_fields=remove_fields,
            ),
        )

    def update_operation(
        self,
        org: OrgContext,
        record_id: str,
        *,
        set_fields: Mapping[str, Any],
        condition: str,
        condition_values: Mapping[str, Any],
        history: Mapping[str, str] | None = None,
        remove_fields: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The same change as a transaction item (for writes that must hold together)."""
        return {
            "Update": update_operation(
                self._table,
                self.key_of(org, record_id),
                set_fields=set_fields,
                remove_fields=remove_fields,
                append={"history": [history]} if history else None,
                condition=condition,
                condition_values=condition_values,
            )
        }

    def soft_delete_operation(
        self, org: OrgContext, record_id: str, current: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]:
        """Hide an active record (it stays stored, with who deleted it and when)."""
        return self.update_operation(
            org,
            record_id,
            set_fields=lifecycle.deletion_fields(org, now, current),
            condition=lifecycle.ACTIVE_AND_CURRENT,
            condition_values=lifecycle.guard_values(current, deleted=False),
            history=lifecycle.history_event("deleted", org, now),
        )

    def restore_operation(
        self, org: OrgContext, record_id: str, current: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]:
        """Bring a soft-deleted record back."""
        return self.update_operation(
            org,
            record_id,
            set_fields={**lifecycle.change_fields(org, now, current), "isDeleted": False},
            remove_fields=("deletedAt", "deletedBy"),
            condition=lifecycle.DELETED_AND_CURRENT,
            condition_values=lifecycle.guard_values(current, deleted=True),
            history=lifecycle.history_event("restored", org, now),
        )

    def soft_delete(self, org: OrgContext, record_id: str, current: Mapping[str, Any], now: datetime) -> None:
        self._apply(org, self.soft_delete_operation(org, record_id, current, now))

    def restore(self, org: OrgContext, record_id: str, current: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        return self._apply(org, self.restore_operation(org, record_id, current, now))

    def _apply(self, org: OrgContext, operation: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return self._update(org, operation["Update"])
        except ClientError as error:
            if is_condition_failure(error):
                raise Conflict(CONCURRENT_CHANGE) from error
            raise


class MetricRepository(_DefinitionTable):
    partition = staticmethod(keys.metrics_partition)
    sort_prefix = keys.METRIC_SORT_PREFIX

    def key_of(self, org: OrgContext, record_id: str) -> keys.Key:
        return keys.metric_key(org, record_id)

    def many(self, org: OrgContext, metric_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The metrics among ``metric_ids`` that exist in the org (deleted ones included)."""
        wanted = []
        for metric_id in metric_ids:
            try:
                wanted.append(keys.metric_key(org, metric_id))
            except MalformedId:
                continue
        return {item["metricId"]: item for item in self._batch_get(org, wanted)}

    def create(self, org: OrgContext, record: Mapping[str, Any]) -> None:
        """The metric and its name guard, or neither (409 if the name is taken)."""
        guard = {**keys.metric_name_guard_key(org, str(record["name"])), "metricId": record["metricId"]}
        self._transact(
            org,
            [_put(self._table, guard), _put(self._table, {**record, **self.key_of(org, str(record["metricId"]))})],
            conflict=f"A metric named {record['name']!r} already exists in this organization.",
        )

    def delete_with_guard(self, org: OrgContext, record: Mapping[str, Any], update: Mapping[str, Any]) -> None:
        """Soft-delete (``update``) and release the name for reuse."""
        release = {
            "Delete": {
                "TableName": self._table,
                "Key": to_item(keys.metric_name_guard_key(org, str(record["name"]))),
                "ConditionExpression": "metricId = :metric",
                "ExpressionAttributeValues": to_item({":metric": record["metricId"]}),
            }
        }
        self._transact(org, [update, release], conflict=CONCURRENT_CHANGE)

    def restore_with_guard(self, org: OrgContext, record: Mapping[str, Any], update: Mapping[str, Any]) -> None:
        """Take the name back and restore, or 409 if another metric took the name meanwhile."""
        guard = {**keys.metric_name_guard_key(org, str(record["name"])), "metricId": record["metricId"]}
        try:
            self._client(org).transact_write_items(TransactItems=[_put(self._table, guard), update])
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            reasons = error.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                raise Conflict(
                    f"Another metric is now named {record['name']!r}; rename or delete it before restoring this one."
                ) from error
            raise Conflict(CONCURRENT_CHANGE) from error


class ThingTypeRepository(_DefinitionTable):
    partition = staticmethod(keys.thing_types_partition)
    sort_prefix = keys.THING_TYPE_SORT_PREFIX

    def key_of(self, org: OrgContext, record_id: str) -> keys.Key:
        return keys.thing_type_key(org, record_id)

    def get_version(self, org: OrgContext, thing_type_def_id: str) -> dict[str, Any] | None:
        try:
            key = keys.thing_type_version_key(org, thing_type_def_id)
        except MalformedId:
            return None
        return self._get(org, key)

    def create(self, org: OrgContext, index: Mapping[str, Any], first_version: Mapping[str, Any]) -> None:
        """The type's index and its version 1, together."""
        self._transact(
            org,
            [
                _put(self._table, {**index, **self.key_of(org, str(index["thingTypeId"]))}),
                _put(
                    self._table,
                    {**first_version, **keys.thing_type_version_key(org, str(first_version["thingTypeDefId"]))},
                ),
            ],
            conflict=CONCURRENT_CHANGE,
        )

    def add_version(self, org: OrgContext, version: Mapping[str, Any], index_update: Mapping[str, Any]) -> None:
        """A new version and the index's move to it; 409 if another version won the race."""
        self._transact(
            org,
            [
                _put(self._table, {**version, **keys.thing_type_version_key(org, str(version["thingTypeDefId"]))}),
                index_update,
            ],
            conflict="Another version of this thing type was created at the same time; retry.",
        )

    def update_version(
        self, org: OrgContext, thing_type_def_id: str, set_fields: Mapping[str, Any], seen_updated_at: str
    ) -> dict[str, Any]:
        operation = update_operation(
            self._table,
            keys.thing_type_version_key(org, thing_type_def_id),
            set_fields=set_fields,
            condition="attribute_exists(pk) AND updatedAt = :seen",
            condition_values={":seen": seen_updated_at},
        )
        try:
            return self._update(org, operation)
        except ClientError as error:
            if is_condition_failure(error):
                raise Conflict(CONCURRENT_CHANGE) from error
            raise

    def transact(self, org: OrgContext, items: Sequence[Mapping[str, Any]]) -> None:
        self._transact(org, items, conflict=CONCURRENT_CHANGE)


class TemplateRepository(_DefinitionTable):
    partition = staticmethod(keys.templates_partition)
    sort_prefix = keys.TEMPLATE_SORT_PREFIX

    def key_of(self, org: OrgContext, record_id: str) -> keys.Key:
        return keys.template_key(org, record_id)

    def create(self, org: OrgContext, record: Mapping[str, Any]) -> None:
        self._transact(
            org,
            [_put(self._table, {**record, **self.key_of(org, str(record["templateId"]))})],
            conflict=CONCURRENT_CHANGE,
        )
