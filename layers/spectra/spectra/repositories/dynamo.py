"""DynamoDB plumbing shared by the repositories: item conversion and exact-size query pages."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

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


class OrgScopedTable:
    """Base of the repositories: one table, reached only with the calling org's credentials."""

    def __init__(self, sessions: OrgSessions, table: str) -> None:
        self._sessions = sessions
        self._table = table

    def _client(self, org: OrgContext) -> Any:
        return self._sessions.client(org, "dynamodb")
