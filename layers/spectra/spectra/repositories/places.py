"""Sites, their levels and fleets. Counters of levels, children and things live on each place
and level and change in the same transaction as the items they count, so a delete that must
wait for dependents is a single conditional write, never a check-then-act race."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from spectra.errors import NotFound
from spectra.identifiers import MalformedId
from spectra.repositories.dynamo import OrgScopedTable, QueryPage, to_item, update_operation
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext

Keep = Callable[[dict[str, Any]], bool]
CONCURRENT_CHANGE = "The record changed at the same time; fetch it again and retry."


def counter_change(table: str, key: Mapping[str, str], counts: Mapping[str, int]) -> dict[str, Any]:
    """A transaction item adding to counters of an item that must exist."""
    return {"Update": update_operation(table, key, add=counts, condition="attribute_exists(pk)")}


def _unchanged(attribute: str, placeholder: str) -> str:
    """``attribute`` still holds ``placeholder`` (a counter never written counts as 0)."""
    return f"(attribute_not_exists({attribute}) OR {attribute} = {placeholder})"


def guarded_update(
    table: str,
    key: Mapping[str, str],
    set_fields: Mapping[str, Any],
    seen_updated_at: str,
    remove_fields: Sequence[str] = (),
    *,
    unchanged: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """A transaction item changing an item unless it changed since ``seen_updated_at``, and
    unless any counter in ``unchanged`` moved from the value seen (e.g. a site's level rules
    may only change while no level was added or moved since the check)."""
    condition = "attribute_exists(pk) AND updatedAt = :seen"
    values: dict[str, Any] = {":seen": seen_updated_at}
    names: dict[str, str] = {}
    for index, (attribute, seen) in enumerate((unchanged or {}).items()):
        names[f"#u{index}"] = attribute
        values[f":u{index}"] = seen
        condition += f" AND {_unchanged(f'#u{index}', f':u{index}')}"
    return {
        "Update": update_operation(
            table,
            key,
            set_fields=set_fields,
            remove_fields=remove_fields,
            condition=condition,
            condition_values=values,
            condition_names=names,
        )
    }


def site_tree_change(
    table: str, key: Mapping[str, str], *, seen: Mapping[str, int], bump: str, counts: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """A guarded change to a site's level tree.

    Moves bump ``treeVersion`` while it is unchanged, so two moves can never build a cycle
    together. New levels bump ``levelCount`` while the site's ``rulesVersion`` is unchanged, so
    no level is added under level-type rules that just changed (concurrent creates do not
    block each other). A rules change requires both to be unchanged and bumps ``rulesVersion``.
    """
    names = {f"#s{i}": attribute for i, attribute in enumerate(seen)}
    values = {f":s{i}": value for i, value in enumerate(seen.values())}
    guards = " AND ".join(_unchanged(f"#s{i}", f":s{i}") for i in range(len(seen)))
    return {
        "Update": update_operation(
            table,
            key,
            add={**(counts or {}), bump: 1},
            condition=f"attribute_exists(pk) AND {guards}" if guards else "attribute_exists(pk)",
            condition_values=values,
            condition_names=names,
        )
    }


def delete_unchanged(table: str, key: Mapping[str, str], seen_updated_at: str) -> dict[str, Any]:
    """Delete an item only if it did not change since it was read (its counters stay exact)."""
    return {
        "Delete": {
            "TableName": table,
            "Key": to_item(key),
            "ConditionExpression": "attribute_exists(pk) AND updatedAt = :seen",
            "ExpressionAttributeValues": to_item({":seen": seen_updated_at}),
        }
    }


def put_new(table: str, item: Mapping[str, Any]) -> dict[str, Any]:
    return {"Put": {"TableName": table, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}}


def delete_when_empty(
    table: str, key: Mapping[str, str], counters: Sequence[str], *, seen_updated_at: str | None = None
) -> dict[str, Any]:
    """Delete an item only while every counter in ``counters`` is zero (or was never set), and,
    with ``seen_updated_at``, only if it did not change since it was read (e.g. moved)."""
    names = {f"#c{i}": counter for i, counter in enumerate(counters)}
    empty = " AND ".join(f"(attribute_not_exists(#c{i}) OR #c{i} = :zero)" for i in range(len(counters)))
    values: dict[str, Any] = {":zero": 0}
    condition = f"attribute_exists(pk) AND {empty}"
    if seen_updated_at is not None:
        condition += " AND updatedAt = :seen"
        values[":seen"] = seen_updated_at
    return {
        "Delete": {
            "TableName": table,
            "Key": to_item(key),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_item(values),
        }
    }


class PlaceRepository(OrgScopedTable):
    """Sites, fleets and levels of one org."""

    @property
    def table(self) -> str:
        return self._table

    def get_site(self, org: OrgContext, site_id: str) -> dict[str, Any] | None:
        return self._safe_get(org, lambda: keys.site_key(org, site_id))

    def get_fleet(self, org: OrgContext, fleet_id: str) -> dict[str, Any] | None:
        return self._safe_get(org, lambda: keys.fleet_key(org, fleet_id))

    def get_place(self, org: OrgContext, place_id: str) -> dict[str, Any] | None:
        """A site or a fleet with this id (ids are GUIDs, unique across both)."""
        return self.get_site(org, place_id) or self.get_fleet(org, place_id)

    def get_level(self, org: OrgContext, site_id: str, level_id: str) -> dict[str, Any] | None:
        return self._safe_get(org, lambda: keys.level_key(org, site_id, level_id))

    def sites_page(
        self,
        org: OrgContext,
        *,
        limit: int,
        start_after: Mapping[str, str] | None,
        keep: Callable[[dict[str, Any]], bool],
    ) -> QueryPage:
        return self._page(
            org, keys.sites_partition(org), keys.SITE_SORT_PREFIX, limit=limit, start_after=start_after, keep=keep
        )

    def fleets_page(
        self,
        org: OrgContext,
        *,
        limit: int,
        start_after: Mapping[str, str] | None,
        keep: Callable[[dict[str, Any]], bool],
    ) -> QueryPage:
        return self._page(
            org, keys.fleets_partition(org), keys.FLEET_SORT_PREFIX, limit=limit, start_after=start_after, keep=keep
        )

    def levels(self, org: OrgContext, site_id: str) -> list[dict[str, Any]]:
        """Every level of a site (a site's tree is bounded, so it is read whole)."""
        levels: list[dict[str, Any]] = []
        start: Mapping[str, str] | None = None
        while True:
            page = self._page(
                org,
                keys.levels_partition(org, site_id),
                keys.LEVEL_SORT_PREFIX,
                limit=100,
                start_after=start,
                keep=lambda _item: True,
            )
            levels.extend(page.items)
            if page.resume_after is None:
                return levels
            start = page.resume_after

    def write(
        self,
        org: OrgContext,
        items: Sequence[Mapping[str, Any]],
        *,
        conflict: str = CONCURRENT_CHANGE,
        conflicts: Sequence[str | None] | None = None,
    ) -> None:
        """A transaction of place writes (puts, guarded updates, counters)."""
        self._transact(org, items, conflict=conflict, conflicts=conflicts)

    def update(
        self,
        org: OrgContext,
        key: Mapping[str, str],
        *,
        set_fields: Mapping[str, Any],
        seen_updated_at: str,
    ) -> dict[str, Any]:
        """Change an item unless someone changed it since ``seen_updated_at`` (409)."""
        self._transact(org, [guarded_update(self._table, key, set_fields, seen_updated_at)], conflict=CONCURRENT_CHANGE)
        updated = self._get(org, key)
        if updated is None:
            raise NotFound("It was deleted meanwhile.")
        return updated

    def _safe_get(self, org: OrgContext, key: Callable[[], keys.Key]) -> dict[str, Any] | None:
        try:
            return self._get(org, key())
        except MalformedId:
            return None
