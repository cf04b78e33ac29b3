"""Factories for the definition tests: metrics, thing types, versions and templates, built one way.

Everything goes through the local stack as a client would; the only direct AWS calls are reads
of raw records (to prove a soft delete removed nothing) and the repository-level race tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import boto3

from spectra.models.common import from_iso
from spectra.pagination import PageTokens
from spectra.repositories.definitions import MetricRepository
from spectra.repositories.dynamo import from_item, to_item
from spectra.services.metrics import MetricService
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext
from spectra.tenancy.sessions import OrgSessions
from spectra_local.gateway import GatewayResponse
from spectra_local.stack import LocalStack
from tests.integration.factories import Key, Org, Scope, assert_problem, create_key, records_table

METRICS_PATH = "/v2/definitions/metrics"
METRIC_SCHEMA_PATH = f"{METRICS_PATH}/schema"
THING_TYPES_PATH = "/v2/definitions/thing-types"
TEMPLATES_PATH = "/v2/templates"

UNKNOWN_METRIC_ID = "mdef_" + "0" * 32
UNKNOWN_THING_TYPE_ID = "tdefi_" + "0" * 32
UNKNOWN_VERSION_ID = "tdef_" + "0" * 32
UNKNOWN_TEMPLATE_ID = "0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11"

RECORD_STAMPS = ("createdAt", "updatedAt", "createdBy", "updatedBy")


def unique_name(prefix: str = "Metric") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


# -- paths ------------------------------------------------------------------------------------


def metric_path(metric_id: str, action: str | None = None) -> str:
    return f"{METRICS_PATH}/{metric_id}" + (f"/{action}" if action else "")


def thing_type_path(thing_type_id: str, action: str | None = None) -> str:
    return f"{THING_TYPES_PATH}/{thing_type_id}" + (f"/{action}" if action else "")


def version_path(thing_type_def_id: str) -> str:
    return f"{THING_TYPES_PATH}/versions/{thing_type_def_id}"


def template_path(template_id: str, action: str | None = None) -> str:
    return f"{TEMPLATES_PATH}/{template_id}" + (f"/{action}" if action else "")


# -- bodies -----------------------------------------------------------------------------------


def metric_body(
    name: str | None = None, data_type: str = "Double", aggregation: str = "Avg", **fields: Any
) -> dict[str, Any]:
    """A ``POST /definitions/metrics`` body."""
    return {"name": name or unique_name(), "dataType": data_type, "defaultAggregation": aggregation, **fields}


def thing_type_body(
    display_name: str = "Smart meter",
    metric_ids: Sequence[str] = (),
    property_definitions: Sequence[dict[str, Any]] = (),
    **fields: Any,
) -> dict[str, Any]:
    """A ``POST /definitions/thing-types`` body."""
    return {
        "displayName": display_name,
        "metricIds": list(metric_ids),
        "propertyDefinitions": list(property_definitions),
        **fields,
    }


def property_definition(name: str = "serial", value_type: str = "String", **fields: Any) -> dict[str, Any]:
    return {"name": name, "valueType": value_type, **fields}


def template_spec(
    mappings: Sequence[tuple[str, str]],
    *,
    records_pointer: str = "/readings",
    timestamp_pointer: str = "/ts",
    timestamp_format: str = "epochSeconds",
) -> dict[str, Any]:
    """A template spec mapping ``(pointer, metricId)`` pairs."""
    return {
        "recordsPointer": records_pointer,
        "timestamp": {"pointer": timestamp_pointer, "format": timestamp_format},
        "mappings": [{"pointer": pointer, "metricId": metric_id} for pointer, metric_id in mappings],
    }


def template_body(metric_id: str, name: str = "Meter export", **fields: Any) -> dict[str, Any]:
    """A ``POST /templates`` body with one mapping (``/kwh`` → ``metric_id``)."""
    return {"name": name, "spec": template_spec([("/kwh", metric_id)]), **fields}


# -- creating through the API -----------------------------------------------------------------


def created(response: GatewayResponse) -> dict[str, Any]:
    assert response.status == 201, response.body
    body: dict[str, Any] = response.json()
    return body


def make_metric(stack: LocalStack, caller: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
    """A new metric definition (Double/Avg unless told otherwise)."""
    return created(stack.request("POST", METRICS_PATH, key=caller, json_body=metric_body(name, **fields)))


def make_metrics(stack: LocalStack, caller: str, count: int, prefix: str = "Metric") -> list[str]:
    return [make_metric(stack, caller, f"{prefix} {n}")["metricId"] for n in range(count)]


def make_thing_type(
    stack: LocalStack,
    caller: str,
    metric_ids: Sequence[str] = (),
    property_definitions: Sequence[dict[str, Any]] = (),
    **fields: Any,
) -> dict[str, Any]:
    """A new thing type (its index, as the create response returns it)."""
    body = thing_type_body(metric_ids=metric_ids, property_definitions=property_definitions, **fields)
    return created(stack.request("POST", THING_TYPES_PATH, key=caller, json_body=body))


def make_version(stack: LocalStack, caller: str, thing_type_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return created(stack.request("POST", thing_type_path(thing_type_id, "versions"), key=caller, json_body=body))


def make_template(stack: LocalStack, caller: str, metric_id: str, **fields: Any) -> dict[str, Any]:
    return created(stack.request("POST", TEMPLATES_PATH, key=caller, json_body=template_body(metric_id, **fields)))


def get(stack: LocalStack, caller: str, path: str, **query: Any) -> GatewayResponse:
    return stack.request("GET", path, key=caller, query=query)


def delete(stack: LocalStack, caller: str, path: str) -> None:
    response = stack.request("DELETE", path, key=caller)
    assert response.status == 204, response.body


def restore(stack: LocalStack, caller: str, path: str) -> GatewayResponse:
    return stack.request("POST", f"{path}/restore", key=caller)


def key_with(stack: LocalStack, org: Org, *scopes: Scope) -> Key:
    """A key of ``org`` holding exactly ``scopes`` (an admin key if one of them is ``admin``)."""
    key_type = "admin" if any(s["action"] in {"admin", "*"} for s in scopes) else "external"
    return create_key(stack, org.admin_key, name="scoped", type=key_type, scopes=list(scopes))


# -- lists ------------------------------------------------------------------------------------


def list_page(stack: LocalStack, caller: str, path: str, **query: Any) -> dict[str, Any]:
    response = get(stack, caller, path, **query)
    assert response.status == 200, response.body
    page: dict[str, Any] = response.json()
    assert page.keys() == {"items", "continuationToken", "hasMore"}
    return page


def list_all(stack: LocalStack, caller: str, path: str, id_field: str, **query: Any) -> list[str]:
    """Every id the list returns, following continuation tokens."""
    ids: list[str] = []
    token: str | None = None
    while True:
        page = list_page(stack, caller, path, **query, **({"continuationToken": token} if token else {}))
        ids.extend(item[id_field] for item in page["items"])
        token = page["continuationToken"]
        if not page["hasMore"]:
            assert token is None
            return ids


def tamper(token: str) -> str:
    body, signature = token.split(".")
    return f"{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{signature}"


TOKEN_MANGLERS: dict[str, Callable[[str], str]] = {
    "payload-changed": tamper,
    "signature-replaced": lambda t: t.split(".")[0] + ".AAAA",
    "no-signature": lambda t: t.replace(".", ""),
    "garbage": lambda _t: "not-a-token",
}


# -- problems ---------------------------------------------------------------------------------


def error_fields(response: GatewayResponse, status: int = 400) -> list[str]:
    """The ``errors[].field`` of a validation problem, in order."""
    problem = assert_problem(response, status, "validation_failed")
    return [error["field"] for error in problem["errors"]]


# -- raw records and the layer, for what HTTP cannot show -------------------------------------


def operator(org: Org) -> OrgContext:
    """A context acting for ``org`` as its admin key (what the repositories need)."""
    return OrgContext.for_operator(org.org_id, actor=org.admin_key_id)


def raw_record(stack: LocalStack, key: keys.Key) -> dict[str, Any] | None:
    """A stored item exactly as the table holds it (deleted or not), or ``None``."""
    response = boto3.client("dynamodb").get_item(TableName=records_table(stack), Key=to_item(key))
    item = response.get("Item")
    return from_item(item) if item else None


def metric_service(stack: LocalStack) -> MetricService:
    """A metric service wired to the stack's table, as the definitions function builds one."""
    environment = stack.environment("definitions")
    repository = MetricRepository(OrgSessions(environment["ORG_DATA_ROLE_ARN"]), environment["RECORDS_TABLE"])
    return MetricService(repository, page_tokens=PageTokens(lambda: b"unused"))


def is_iso(value: Any) -> bool:
    try:
        from_iso(value)
    except (TypeError, ValueError):
        return False
    return True
