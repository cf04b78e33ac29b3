"""Things, listed by Query on org-prefixed keys: all of the org's, per place (``gsi1``), per type
(``gsi2``). Manufacturer ids are unique within a type through a guard item."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from spectra.identifiers import MalformedId
from spectra.repositories.dynamo import OrgScopedTable, QueryPage, query_page, to_item
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext

Keep = Callable[[dict[str, Any]], bool]


class ThingRepository(OrgScopedTable):
    @property
    def table(self) -> str:
        return self._table

    def get(self, org: OrgContext, thing_id: str) -> dict[str, Any] | None:
        try:
            return self._get(org, keys.thing_key(org, thing_id))
        except MalformedId:
            return None

    def page(self, org: OrgContext, *, limit: int, start_after: Mapping[str, str] | None, keep: Keep) -> QueryPage:
        return self._page(
            org, keys.things_partition(org), keys.THING_SORT_PREFIX, limit=limit, start_after=start_after, keep=keep
        )

    def page_in_place(
        self, org: OrgContext, place_id: str, *, limit: int, start_after: Mapping[str, str] | None, keep: Keep
    ) -> QueryPage:
        return self._index_page(org, "gsi1", keys.place_things_partition(org, place_id), limit, start_after, keep)

    def page_of_type(
        self, org: OrgContext, thing_type_id: str, *, limit: int, start_after: Mapping[str, str] | None, keep: Keep
    ) -> QueryPage:
        return self._index_page(org, "gsi2", keys.type_things_partition(org, thing_type_id), limit, start_after, keep)

    def manufacturer_guard(
        self, org: OrgContext, thing_type_id: str, manufacturer_id: str, thing_id: str
    ) -> dict[str, Any]:
        """A transaction item claiming ``manufacturer_id`` within the type for ``thing_id``."""
        guard = {**keys.manufacturer_id_guard_key(org, thing_type_id, manufacturer_id), "thingId": thing_id}
        return {
            "Put": {"TableName": self._table, "Item": to_item(guard), "ConditionExpression": "attribute_not_exists(pk)"}
        }

    def release_manufacturer_guard(
        self, org: OrgContext, thing_type_id: str, manufacturer_id: str, thing_id: str
    ) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self._table,
                "Key": to_item(keys.manufacturer_id_guard_key(org, thing_type_id, manufacturer_id)),
                "ConditionExpression": "thingId = :thing",
                "ExpressionAttributeValues": to_item({":thing": thing_id}),
            }
        }

    def write(
        self,
        org: OrgContext,
        items: Sequence[Mapping[str, Any]],
        *,
        conflict: str,
        conflicts: Sequence[str | None] | None = None,
    ) -> None:
        self._transact(org, items, conflict=conflict, conflicts=conflicts)

    def _index_page(
        self,
        org: OrgContext,
        index: str,
        partition: str,
        limit: int,
        start_after: Mapping[str, str] | None,
        keep: Keep,
    ) -> QueryPage:
        return query_page(
            self._client(org),
            table=self._table,
            index=index,
            key_condition=f"{index}pk = :pk",
            values={":pk": partition},
            key_attributes=("pk", "sk", f"{index}pk", f"{index}sk"),
            limit=limit,
            start_after=start_after,
            keep=keep,
        )
