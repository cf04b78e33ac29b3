"""API key records: one partition per org, a key-set version that serialises status changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from spectra.errors import Conflict, NotFound
from spectra.repositories.dynamo import (
    OrgScopedTable,
    QueryPage,
    is_condition_failure,
    to_item,
    update_operation,
)
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext

ACTIVE_STATE = "Active"
REVOKED_STATE = "Revoked"
CONCURRENT_CHANGE = "The organization's keys changed at the same time; retry the request."


class ApiKeyRepository(OrgScopedTable):
    """Stores API key records (hash only, never the secret) under the org's partition."""

    def get(self, org: OrgContext, key_id: str) -> dict[str, Any] | None:
        """One key record, or ``None``."""
        return self._get(org, keys.api_key_key(org, key_id))

    def page(
        self,
        org: OrgContext,
        *,
        limit: int,
        start_after: Mapping[str, str] | None,
        keep: Callable[[dict[str, Any]], bool],
    ) -> QueryPage:
        """A page of the org's keys in key-id order, filtered by ``keep``."""
        return self._page(
            org,
            keys.api_keys_partition(org),
            keys.API_KEY_SORT_PREFIX,
            limit=limit,
            start_after=start_after,
            keep=keep,
        )

    def all(self, org: OrgContext) -> Iterator[dict[str, Any]]:
        """Every key of the org (a handful; used for the last-admin rule and the org facts),
        read consistently: a key inserted just before a facts change must be among them."""
        start: Mapping[str, str] | None = None
        while True:
            page = self._page(
                org,
                keys.api_keys_partition(org),
                keys.API_KEY_SORT_PREFIX,
                limit=100,
                start_after=start,
                keep=lambda _item: True,
                consistent=True,
            )
            yield from page.items
            if page.resume_after is None:
                return
            start = page.resume_after

    def key_set_version(self, org: OrgContext) -> int:
        """The org's key-set version (0 before the first key)."""
        item = self._get(org, keys.api_key_set_key(org)) or {}
        return int(item.get("version", 0))

    def _bump_key_set(self, org: OrgContext, seen_version: int) -> dict[str, Any]:
        return {
            "Update": update_operation(
                self._table,
                keys.api_key_set_key(org),
                set_fields={"version": seen_version + 1},
                condition="attribute_not_exists(version) OR version = :seen",
                condition_values={":seen": seen_version},
            )
        }

    def insert(self, org: OrgContext, record: Mapping[str, Any], *, seen_version: int) -> None:
        """Add a key; fails with 409 if the key set changed meanwhile."""
        key_id = str(record["keyId"])
        item = {**record, **keys.api_key_key(org, key_id), "credentialId": keys.credential_index_value(key_id)}
        put = {"TableName": self._table, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}
        # A key is only minted for an active org, with the org facts (plan, limits, usage
        # identifier) the profile still has: a suspension or a plan change meanwhile refuses it.
        facts_version = int(record.get("orgFactsVersion", 0))
        same_facts = "orgFactsVersion = :facts" if facts_version else "attribute_not_exists(orgFactsVersion)"
        org_active = {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": to_item(keys.org_profile_key(org)),
                "ConditionExpression": f"#status = :active AND {same_facts}",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": to_item(
                    {":active": ACTIVE_STATE, **({":facts": facts_version} if facts_version else {})}
                ),
            }
        }
        self._transact(
            org,
            [{"Put": put}, self._bump_key_set(org, seen_version), org_active],
            conflict=CONCURRENT_CHANGE,
            conflicts=[None, None, "The organization is not active, or its plan changed meanwhile; try again."],
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
        operation = update_operation(
            self._table,
            keys.api_key_key(org, key_id),
            set_fields=set_fields,
            remove_fields=remove_fields,
            condition="attribute_exists(pk) AND #state = :active",
            condition_values={":active": ACTIVE_STATE},
            condition_names={"#state": "state"},
        )
        if seen_version is None:
            try:
                return self._update(org, operation)
            except ClientError as error:
                if is_condition_failure(error):
                    raise self._missing_or_revoked(org, key_id) from error
                raise
        self._transact(org, [{"Update": operation}, self._bump_key_set(org, seen_version)], conflict=CONCURRENT_CHANGE)
        updated = self.get(org, key_id)
        if updated is None:
            raise NotFound("No such API key.")
        return updated

    def record_use(self, org: OrgContext, key_id: str, used_at: str) -> None:
        """Set ``lastUsedAt`` (the authorizer calls this at most once per key per cache period)."""
        self._client(org).update_item(
            **update_operation(
                self._table,
                keys.api_key_key(org, key_id),
                set_fields={"lastUsedAt": used_at},
                condition="attribute_exists(pk)",
            )
        )

    def revoke_with_org(self, org: OrgContext, key_id: str, *, org_status: str, at: str, actor: str) -> None:
        """Revoke a key because its org is being deleted (no last-admin rule: the org goes too)."""
        self._client(org).update_item(
            **update_operation(
                self._table,
                keys.api_key_key(org, key_id),
                set_fields={
                    "orgStatus": org_status,
                    "state": REVOKED_STATE,
                    "revokedAt": at,
                    "updatedAt": at,
                    "updatedBy": actor,
                },
                remove_fields=("previousSecretHash", "previousSecretValidUntil"),
                condition="attribute_exists(pk)",
            )
        )

    def copy_org_facts(self, org: OrgContext, key_id: str, facts: Mapping[str, Any]) -> bool:
        """Copy the org's facts (status, plan, limits, usage identifier) onto a key, so the
        authorizer needs one read; only over an older copy (``orgFactsVersion``), so a slow
        writer never puts stale facts back. ``False`` when the key has a newer copy or is gone."""
        try:
            self._client(org).update_item(
                **update_operation(
                    self._table,
                    keys.api_key_key(org, key_id),
                    set_fields=facts,
                    condition="attribute_exists(pk) AND "
                    "(attribute_not_exists(orgFactsVersion) OR orgFactsVersion < :facts)",
                    condition_values={":facts": int(facts["orgFactsVersion"])},
                )
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def _missing_or_revoked(self, org: OrgContext, key_id: str) -> Exception:
        if self.get(org, key_id) is None:
            return NotFound("No such API key.")
        return Conflict("The API key is revoked; revoked keys cannot change.")
