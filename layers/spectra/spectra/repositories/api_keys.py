"""API key records: one partition per org, a key-set version that serialises status changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from spectra.errors import Conflict, NotFound
from spectra.repositories.dynamo import (
    OrgScopedTable,
    QueryPage,
    from_item,
    is_condition_failure,
    query_page,
    to_item,
    to_values,
)
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext

ACTIVE_STATE = "Active"
REVOKED_STATE = "Revoked"


class ApiKeyRepository(OrgScopedTable):
    """Stores API key records (hash only, never the secret) under the org's partition."""

    def get(self, org: OrgContext, key_id: str) -> dict[str, Any] | None:
        """One key record, or ``None`` (also for malformed ids: they cannot exist)."""
        response = self._client(org).get_item(
            TableName=self._table, Key=to_item(keys.api_key_key(org, key_id)), ConsistentRead=True
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def page(
        self,
        org: OrgContext,
        *,
        limit: int,
        start_after: Mapping[str, str] | None,
        keep: Callable[[dict[str, Any]], bool],
    ) -> QueryPage:
        """A page of the org's keys in key-id order, filtered by ``keep``."""
        return query_page(
            self._client(org),
            table=self._table,
            key_condition="pk = :pk AND begins_with(sk, :prefix)",
            values={":pk": keys.api_keys_partition(org), ":prefix": keys.API_KEY_SORT_PREFIX},
            key_attributes=("pk", "sk"),
            limit=limit,
            start_after=start_after,
            keep=keep,
        )

    def all(self, org: OrgContext) -> Iterator[dict[str, Any]]:
        """Every key of the org (a handful; used for the last-admin rule and org status)."""
        start: Mapping[str, str] | None = None
        while True:
            page = self.page(org, limit=100, start_after=start, keep=lambda _item: True)
            yield from page.items
            if page.resume_after is None:
                return
            start = page.resume_after

    def key_set_version(self, org: OrgContext) -> int:
        """The org's key-set version (0 before the first key)."""
        response = self._client(org).get_item(
            TableName=self._table, Key=to_item(keys.api_key_set_key(org)), ConsistentRead=True
        )
        item = from_item(response.get("Item") or {})
        return int(item.get("version", 0))

    def _bump_key_set(self, org: OrgContext, seen_version: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": to_item(keys.api_key_set_key(org)),
                "UpdateExpression": "SET version = :next",
                "ConditionExpression": "attribute_not_exists(version) OR version = :seen",
                "ExpressionAttributeValues": to_values({":next": seen_version + 1, ":seen": seen_version}),
            }
        }

    def insert(self, org: OrgContext, record: Mapping[str, Any], *, seen_version: int) -> None:
        """Add a key; fails with 409 if the key set changed meanwhile."""
        key_id = str(record["keyId"])
        item = {**record, **keys.api_key_key(org, key_id), "credentialId": keys.credential_index_value(key_id)}
        self._transact(
            org,
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_item(item),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                self._bump_key_set(org, seen_version),
            ],
        )

    def update(
        self,
        org: OrgContext,
        key_id: str,
        *,
        set_fields: Mapping[str, Any],
        remove_fields: tuple[str, ...] = (),
        seen_version: int | None = None,
    ) -> dict[str, Any]:
        """Change an active key's fields; 404 if it is gone, 409 if it was revoked meanwhile."""
        names = {f"#s{i}": name for i, name in enumerate(set_fields)}
        names.update({f"#r{i}": name for i, name in enumerate(remove_fields)})
        values = {f":s{i}": value for i, value in enumerate(set_fields.values())}
        values[":active"] = ACTIVE_STATE
        expression = "SET " + ", ".join(f"#s{i} = :s{i}" for i in range(len(set_fields)))
        if remove_fields:
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove_fields)))
        names["#state"] = "state"
        update = {
            "TableName": self._table,
            "Key": to_item(keys.api_key_key(org, key_id)),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(pk) AND #state = :active",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_values(values),
        }
        if seen_version is None:
            try:
                response = self._client(org).update_item(**update, ReturnValues="ALL_NEW")
            except ClientError as error:
                if is_condition_failure(error):
                    raise self._missing_or_revoked(org, key_id) from error
                raise
            return from_item(response["Attributes"])
        self._transact(org, [{"Update": update}, self._bump_key_set(org, seen_version)])
        updated = self.get(org, key_id)
        if updated is None:
            raise NotFound("No such API key.")
        return updated

    def record_use(self, org: OrgContext, key_id: str, used_at: str) -> None:
        """Set ``lastUsedAt`` (the authorizer calls this at most once per key per cache period)."""
        self._client(org).update_item(
            TableName=self._table,
            Key=to_item(keys.api_key_key(org, key_id)),
            UpdateExpression="SET lastUsedAt = :at",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_values({":at": used_at}),
        )

    def set_org_attributes(self, org: OrgContext, key_id: str, attributes: Mapping[str, Any]) -> None:
        """Copy org-level facts (status, plan) onto a key, so the authorizer needs one read."""
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":a{i}": value for i, value in enumerate(attributes.values())}
        self._client(org).update_item(
            TableName=self._table,
            Key=to_item(keys.api_key_key(org, key_id)),
            UpdateExpression="SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(attributes))),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_values(values),
        )

    def _missing_or_revoked(self, org: OrgContext, key_id: str) -> Exception:
        current = self.get(org, key_id)
        if current is None:
            return NotFound("No such API key.")
        return Conflict("The API key is revoked; revoked keys cannot change.")

    def _transact(self, org: OrgContext, items: list[dict[str, Any]]) -> None:
        try:
            self._client(org).transact_write_items(TransactItems=items)
        except ClientError as error:
            if is_condition_failure(error):
                raise Conflict("The organization's keys changed at the same time; retry the request.") from error
            raise
