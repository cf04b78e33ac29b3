"""DynamoDB plumbing shared by the repositories: item conversion and exact-size query pages."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from spectra.errors import Conflict, SpectraError
from spectra.tenancy.context import OrgContext
from spectra.tenancy.sessions import OrgSessions

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_dynamo_value(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: _to_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo_value(v) for v in value]
    return value


def _from_dynamo_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo_value(v) for v in value]
    if isinstance(value, set):
        return {_from_dynamo_value(v) for v in value}
    return value


def to_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """Plain Python values to DynamoDB attribute values (``None`` attributes are dropped)."""
    return {k: _serializer.serialize(_to_dynamo_value(v)) for k, v in data.items() if v is not None}


def to_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """Expression attribute values (``None`` kept as NULL, for explicit clears)."""
    return {k: _serializer.serialize(_to_dynamo_value(v)) for k, v in data.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values to plain Python values (numbers as int or float)."""
    return {k: _from_dynamo_value(_deserializer.deserialize(v)) for k, v in item.items()}


class ServiceBusy(SpectraError):
    """The store throttled us past our retries: 503, safe to retry."""

    status = 503
    code = "service_unavailable"
    title = "Service Unavailable"


TRANSACTION_ATTEMPTS = 4
BATCH_GET_ATTEMPTS = 8


def _only_transaction_conflicts(error: ClientError) -> bool:
    """A cancelled transaction whose only reason is a concurrent transaction on the same items."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    codes = {r.get("Code") for r in error.response.get("CancellationReasons") or []} - {"None", None}
    return codes == {"TransactionConflict"}


def is_condition_failure(error: ClientError) -> bool:
    """Whether a write failed its condition (alone or inside a transaction)."""
    code = error.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons") or []
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or not reasons
    return False


@dataclass(frozen=True)
class QueryPage:
    """Up to ``limit`` items, and the position to resume after the last one (if more exist)."""

    items: list[dict[str, Any]]
    resume_after: dict[str, str] | None

    @property
    def has_more(self) -> bool:
        return self.resume_after is not None


def query_page(
    client: Any,
    *,
    table: str,
    key_condition: str,
    values: Mapping[str, Any],
    key_attributes: Sequence[str],
    limit: int,
    start_after: Mapping[str, str] | None = None,
    index: str | None = None,
    names: Mapping[str, str] | None = None,
    keep: Callable[[dict[str, Any]], bool] = lambda _item: True,
    newest_first: bool = False,
    consistent: bool = False,
) -> QueryPage:
    """Query until ``limit`` items pass ``keep`` or the partition ends; never a Scan.

    The resume position is the key of the last item *returned*, so a filtered page loses
    nothing, and ``has_more`` is exact: it is set only when a further item was seen.
    """
    collected: list[dict[str, Any]] = []
    start = dict(start_after) if start_after else None
    while True:
        params: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": to_values(values),
            "Limit": max(limit - len(collected) + 1, 10),
            "ScanIndexForward": not newest_first,
        }
        if index:
            params["IndexName"] = index
        if consistent:
            params["ConsistentRead"] = True
        if names:
            params["ExpressionAttributeNames"] = dict(names)
        if start:
            params["ExclusiveStartKey"] = to_item(start)
        response = client.query(**params)
        for raw in response.get("Items", []):
            item = from_item(raw)
            if not keep(item):
                continue
            if len(collected) == limit:
                last = collected[-1]
                return QueryPage(collected, {name: last[name] for name in key_attributes})
            collected.append(item)
        last_evaluated = response.get("LastEvaluatedKey")
        if not last_evaluated:
            return QueryPage(collected, None)
        start = from_item(last_evaluated)


def update_operation(
    table: str,
    key: Mapping[str, str],
    *,
    set_fields: Mapping[str, Any] | None = None,
    remove_fields: Sequence[str] = (),
    append: Mapping[str, list[Any]] | None = None,
    add: Mapping[str, int] | None = None,
    condition: str | None = None,
    condition_values: Mapping[str, Any] | None = None,
    condition_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An UpdateItem request (also usable as a transaction's ``Update``) from plain field maps.

    Attribute names are always placeholders, so a field called ``status`` or ``name`` never
    collides with a DynamoDB reserved word.
    """
    names: dict[str, str] = dict(condition_names or {})
    values: dict[str, Any] = dict(condition_values or {})
    assignments: list[str] = []
    for index, (name, value) in enumerate((set_fields or {}).items()):
        names[f"#s{index}"] = name
        values[f":s{index}"] = value
        assignments.append(f"#s{index} = :s{index}")
    for index, (name, items) in enumerate((append or {}).items()):
        names[f"#l{index}"] = name
        values[f":l{index}"] = list(items)
        values[":empty_list"] = []
        assignments.append(f"#l{index} = list_append(if_not_exists(#l{index}, :empty_list), :l{index})")
    clauses = [f"SET {', '.join(assignments)}"] if assignments else []
    if add:
        additions = []
        for index, (name, amount) in enumerate(add.items()):
            names[f"#a{index}"] = name
            values[f":a{index}"] = amount
            additions.append(f"#a{index} :a{index}")
        clauses.append(f"ADD {', '.join(additions)}")
    if remove_fields:
        for index, name in enumerate(remove_fields):
            names[f"#r{index}"] = name
        clauses.append("REMOVE " + ", ".join(f"#r{index}" for index in range(len(remove_fields))))
    operation: dict[str, Any] = {
        "TableName": table,
        "Key": to_item(key),
        "UpdateExpression": " ".join(clauses),
        "ExpressionAttributeNames": names,
    }
    if values:
        operation["ExpressionAttributeValues"] = to_values(values)
    if condition:
        operation["ConditionExpression"] = condition
    return operation


class OrgScopedTable:
    """Base of the repositories: one table, reached only with the calling org's credentials."""

    def __init__(self, sessions: OrgSessions, table: str) -> None:
        self._sessions = sessions
        self._table = table

    def _client(self, org: OrgContext) -> Any:
        return self._sessions.client(org, "dynamodb")

    def _get(self, org: OrgContext, key: Mapping[str, str]) -> dict[str, Any] | None:
        response = self._client(org).get_item(TableName=self._table, Key=to_item(key), ConsistentRead=True)
        item = response.get("Item")
        return from_item(item) if item else None

    def _batch_get(self, org: OrgContext, keys: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
        """Every existing item among ``keys`` (chunks of 100, unprocessed keys retried)."""
        found: list[dict[str, Any]] = []
        unique = list({(k["pk"], k["sk"]): k for k in keys}.values())
        for start in range(0, len(unique), 100):
            request: dict[str, Any] = {
                self._table: {"Keys": [to_item(k) for k in unique[start : start + 100]], "ConsistentRead": True}
            }
            for attempt in range(BATCH_GET_ATTEMPTS):
                response = self._client(org).batch_get_item(RequestItems=request)
                found.extend(from_item(item) for item in response.get("Responses", {}).get(self._table, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise ServiceBusy("DynamoDB kept back part of a batch read; retry the request.")
        return found

    def _page(
        self,
        org: OrgContext,
        partition: str,
        sort_prefix: str,
        *,
        limit: int,
        start_after: Mapping[str, str] | None,
        keep: Callable[[dict[str, Any]], bool],
        consistent: bool = False,
        newest_first: bool = False,
    ) -> QueryPage:
        return query_page(
            self._client(org),
            table=self._table,
            key_condition="pk = :pk AND begins_with(sk, :prefix)",
            values={":pk": partition, ":prefix": sort_prefix},
            key_attributes=("pk", "sk"),
            limit=limit,
            start_after=start_after,
            keep=keep,
            consistent=consistent,
            newest_first=newest_first,
        )

    def _update(self, org: OrgContext, operation: Mapping[str, Any]) -> dict[str, Any]:
        response = self._client(org).update_item(**operation, ReturnValues="ALL_NEW")
        return from_item(response["Attributes"])

    def _transact(
        self,
        org: OrgContext,
        items: Sequence[Mapping[str, Any]],
        *,
        conflict: str,
        conflicts: Sequence[str | None] | None = None,
    ) -> None:
        """All of ``items`` or none; a failed condition is a 409.

        Its detail is ``conflicts[i]`` for the first item ``i`` whose condition failed (when
        given and not ``None``), else ``conflict``.
        """
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                self._client(org).transact_write_items(TransactItems=list(items))
                return
            except ClientError as error:
                if _only_transaction_conflicts(error) and attempt + 1 < TRANSACTION_ATTEMPTS:
                    # Another transaction held one of the items: not a failed condition, try again.
                    time.sleep(random.uniform(0.02, 0.1) * 2**attempt)  # noqa: S311 - jitter, not crypto
                    continue
                self._raise_conflict(error, conflict, conflicts)

    @staticmethod
    def _raise_conflict(error: ClientError, conflict: str, conflicts: Sequence[str | None] | None) -> None:
        if _only_transaction_conflicts(error):
            raise Conflict("The records changed at the same time; retry the request.") from error
        if not is_condition_failure(error):
            raise error
        reasons = error.response.get("CancellationReasons") or []
        for index, reason in enumerate(reasons):
            if reason.get("Code") == "ConditionalCheckFailed" and conflicts and index < len(conflicts):
                if conflicts[index]:
                    raise Conflict(str(conflicts[index])) from error
                break
        raise Conflict(conflict) from error
