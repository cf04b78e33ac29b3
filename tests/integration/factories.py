"""Factories for integration and security tests: orgs, keys, events and raw records, built one way.

Everything goes through the local stack as a client (or an operator, or API Gateway) would;
the only direct AWS calls are reads and the deliberate record surgery tests need (an expiry in
the past without sleeping), and they name the records with the layer's own key builders.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.loaders import Loader

from spectra.auth.credentials import ApiKeyCredential, KeyType
from spectra.config import Settings
from spectra.errors import PROBLEM_CONTENT_TYPE
from spectra.models.common import to_iso
from spectra.observability import logger
from spectra.provisioning import Provisioner, build_provisioner
from spectra.tenancy.context import OrgContext
from spectra.tenancy.keys import api_key_key
from spectra_local.gateway import GatewayResponse
from spectra_local.stack import LocalStack

ORGANIZATION_PATH = "/v2/organization"
API_KEYS_PATH = "/v2/api-keys"
PROBLEM_FIELDS = frozenset({"type", "title", "status", "detail", "code", "requestId"})
ACCOUNT_ID = "123456789012"

Scope = dict[str, str]


def scope(action: str, resource_filter: str = "") -> Scope:
    """One scope as the API takes it."""
    return {"action": action, "resourceFilter": resource_filter}


FULL_ACCESS: list[Scope] = [scope("*")]
READ_ALL: list[Scope] = [scope("read")]


@dataclass(frozen=True)
class Org:
    """An organization and its first admin key, as the operator received them."""

    org_id: str
    name: str
    admin_key: str
    admin_key_id: str


@dataclass(frozen=True)
class Key:
    """A key as ``POST /api-keys`` returned it (``secret`` is the full key string, shown once)."""

    key_id: str
    secret: str
    record: dict[str, Any]


def key_path(key_id: str, action: str | None = None) -> str:
    return f"{API_KEYS_PATH}/{key_id}" + (f"/{action}" if action else "")


# -- orgs -------------------------------------------------------------------------------------


def make_org(stack: LocalStack, name: str = "Acme Telemetry") -> Org:
    """A new org through the provisioning function (what ``spectra org create`` does)."""
    created = stack.create_org(name)
    return Org(
        org_id=created["orgId"], name=created["name"], admin_key=created["adminKey"], admin_key_id=created["adminKeyId"]
    )


def provisioning_settings(stack: LocalStack) -> Settings:
    """The settings the provisioning function runs with, as the CLI would read them."""
    return Settings.from_environment(dict(stack.environment("provisioning")))


def make_provisioner(stack: LocalStack) -> Provisioner:
    """A provisioner wired to the stack, as the operator CLI builds one."""
    return build_provisioner(provisioning_settings(stack), boto3.Session(region_name=stack.region))


def usage_identifier_value(org_id: str) -> str:
    """The value of the org's API Gateway usage identifier key."""
    for item in boto3.client("apigateway").get_api_keys(includeValues=True)["items"]:
        if item["name"] == f"spectra-org-{org_id}":
            return str(item["value"])
    raise AssertionError(f"org {org_id} has no usage identifier key")


# -- keys -------------------------------------------------------------------------------------


def key_body(
    name: str = "ingest bot",
    *,
    type: str = "external",
    scopes: Sequence[Scope] = READ_ALL,
    allowed_ip_cidrs: Sequence[str] | None = None,
    expires_at: datetime | None = None,
) -> dict[str, Any]:
    """A ``POST /api-keys`` body."""
    body: dict[str, Any] = {"name": name, "type": type, "scopes": list(scopes)}
    if allowed_ip_cidrs is not None:
        body["allowedIpCidrs"] = list(allowed_ip_cidrs)
    if expires_at is not None:
        body["expiresAt"] = to_iso(expires_at)
    return body


def create_key(stack: LocalStack, caller: str, **fields: Any) -> Key:
    """A new key created by ``caller`` (a full key string) through ``POST /api-keys``."""
    response = stack.request("POST", API_KEYS_PATH, key=caller, json_body=key_body(**fields))
    assert response.status == 201, response.body
    record = response.json()
    return Key(key_id=record["keyId"], secret=record["key"], record=record)


def create_admin_key(stack: LocalStack, org: Org, scopes: Sequence[Scope] = FULL_ACCESS, name: str = "ops") -> Key:
    return create_key(stack, org.admin_key, name=name, type="admin", scopes=scopes)


def revoke(stack: LocalStack, caller: str, key_id: str) -> GatewayResponse:
    return stack.request("POST", key_path(key_id, "revoke"), key=caller)


def rotate(stack: LocalStack, caller: str, key_id: str, grace_seconds: int | None = None) -> GatewayResponse:
    body = None if grace_seconds is None else {"graceSeconds": grace_seconds}
    return stack.request("POST", key_path(key_id, "rotate"), key=caller, json_body=body)


def unknown_key(key_type: KeyType = KeyType.ADMIN) -> str:
    """A well-formed key (valid checksum) that no org has."""
    return ApiKeyCredential.generate(key_type).reveal()


def secret_part(full_key: str) -> str:
    """The secret (with its checksum) of a full key string."""
    return full_key.rsplit("_", 1)[1]


def future(seconds: int = 3600) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def list_keys(stack: LocalStack, caller: str, **query: Any) -> GatewayResponse:
    return stack.request("GET", API_KEYS_PATH, key=caller, query=query)


def list_all_key_ids(stack: LocalStack, caller: str, **query: Any) -> list[str]:
    """Every key id the list returns, following continuation tokens."""
    ids: list[str] = []
    token: str | None = None
    while True:
        page_query = {**query, **({"continuationToken": token} if token else {})}
        page = list_keys(stack, caller, **page_query).json()
        ids.extend(item["keyId"] for item in page["items"])
        token = page["continuationToken"]
        if not page["hasMore"]:
            return ids


# -- caches -----------------------------------------------------------------------------------


def expire_authorizer_caches(stack: LocalStack) -> None:
    """What the authorizer TTL passing does: API Gateway's decision cache and the authorizer
    container's key cache both forget every key (both live for ``AuthorizerTtlSeconds``)."""
    stack.gateway.clear_authorizer_cache()
    stack.function("authorizer").load().authorizer.clear()


# -- raw records ------------------------------------------------------------------------------


def records_table(stack: LocalStack) -> str:
    return stack.environment("api_keys")["RECORDS_TABLE"]


def idempotency_table(stack: LocalStack) -> str:
    return stack.environment("api_keys")["IDEMPOTENCY_TABLE"]


def key_item_key(org_id: str, key_id: str) -> dict[str, dict[str, str]]:
    key = api_key_key(OrgContext.for_operator(org_id), key_id)
    return {name: {"S": value} for name, value in key.items()}


def raw_key_item(stack: LocalStack, org_id: str, key_id: str) -> dict[str, Any]:
    """The stored key record exactly as DynamoDB holds it."""
    item = boto3.client("dynamodb").get_item(TableName=records_table(stack), Key=key_item_key(org_id, key_id))
    return dict(item["Item"])


def stored_key_record(stack: LocalStack, org_id: str, key_id: str) -> dict[str, Any]:
    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in raw_key_item(stack, org_id, key_id).items()}


def set_stored_expiry(stack: LocalStack, org_id: str, key_id: str, expires_at: datetime) -> None:
    """Move a key's ``expiresAt`` (e.g. into the past) without waiting for it."""
    boto3.client("dynamodb").update_item(
        TableName=records_table(stack),
        Key=key_item_key(org_id, key_id),
        UpdateExpression="SET expiresAt = :at",
        ExpressionAttributeValues={":at": {"S": to_iso(expires_at)}},
    )


def expire_key(stack: LocalStack, org_id: str, key_id: str) -> None:
    set_stored_expiry(stack, org_id, key_id, datetime.now(UTC) - timedelta(minutes=5))


def scan_table_text(table: str) -> str:
    """Every item of a table as one JSON text (tests may Scan; the product never does)."""
    client = boto3.client("dynamodb")
    items: list[Any] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    return json.dumps(items)


def secret_value(secret_arn: str) -> str:
    return str(boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])


# -- events -----------------------------------------------------------------------------------


def method_arn(
    method: str = "GET", path: str = ORGANIZATION_PATH, *, api_id: str = "local", stage: str = "local"
) -> str:
    return f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:{api_id}/{stage}/{method}{path}"


def authorizer_event(
    key: str | None, *, source_ip: str = "198.51.100.10", method: str = "GET", path: str = ORGANIZATION_PATH
) -> dict[str, Any]:
    """An API Gateway REQUEST authorizer event."""
    headers = {"X-Api-Key": key} if key is not None else {}
    return {
        "type": "REQUEST",
        "methodArn": method_arn(method, path),
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {},
        "multiValueQueryStringParameters": {},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/local{path}",
            "stage": "local",
            "requestId": "authorizer-test",
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "identity": {"sourceIp": source_ip},
        },
    }


def authorize(stack: LocalStack, key: str, *, source_ip: str = "198.51.100.10") -> dict[str, Any]:
    """Call the authorizer function directly, as API Gateway does."""
    return dict(stack.function("authorizer").invoke(authorizer_event(key, source_ip=source_ip)))


def proxy_event(
    stack: LocalStack,
    key: str,
    method: str,
    path: str,
    *,
    resource: str,
    path_parameters: Mapping[str, str] | None = None,
    body: Any = None,
) -> dict[str, Any]:
    """A Lambda proxy event carrying the authorizer context the key gets (bypassing routing)."""
    authorized = authorize(stack, key)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/local{path}",
            "stage": "local",
            "requestId": "proxy-test",
            "identity": {"sourceIp": "198.51.100.10"},
            "authorizer": {**authorized["context"], "principalId": authorized["principalId"]},
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


# -- responses --------------------------------------------------------------------------------


def assert_problem(response: GatewayResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with Spectra's fields (and no stack trace)."""
    assert response.status == status, response.body
    assert response.headers.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE), response.headers
    problem: dict[str, Any] = response.json()
    assert problem.keys() >= PROBLEM_FIELDS, problem
    assert problem["status"] == status
    assert "Traceback" not in response.body.decode("utf-8")
    if code is not None:
        assert problem["code"] == code, problem
    return problem


@contextmanager
def counting_calls(client: Any, operation: str) -> Iterator[list[dict[str, Any]]]:
    """Record the parameters of every ``operation`` call a boto3 client makes in the block."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)

    event = f"provide-client-params.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    client.meta.events.register(event, record)
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, record)


# -- logs -------------------------------------------------------------------------------------


@contextmanager
def captured_logs(stream: io.StringIO) -> Iterator[None]:
    """Send every log line of the block to ``stream``: the layer's JSON logs (at DEBUG, more than
    a deployment writes) and library logs at INFO."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous_stream, previous_level = handler.stream, logger.log_level
    library_logs = logging.StreamHandler(stream)
    root = logging.getLogger()
    previous_root_level = root.level
    root.addHandler(library_logs)
    root.setLevel(logging.INFO)
    handler.setStream(stream)
    logger.setLevel("DEBUG")
    try:
        yield
    finally:
        handler.setStream(previous_stream)
        logger.setLevel(previous_level)
        root.removeHandler(library_logs)
        root.setLevel(previous_root_level)


# -- test speed -------------------------------------------------------------------------------


@contextmanager
def shared_botocore_models() -> Iterator[None]:
    """Let every boto3 session in the block share parsed service models and endpoint data.

    The layer makes a fresh ``boto3.Session`` per org (its own STS credentials), and each one
    parses botocore's JSON models again: right for a Lambda container, slow for a test suite
    that deploys a stack per test. The models are read-only data, so one parse is enough.
    """
    loaded: dict[tuple[Any, ...], Any] = {}
    originals = {name: getattr(Loader, name) for name in ("load_service_model", "load_data", "load_data_with_path")}

    def cached(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def load(self: Loader, *args: Any, **kwargs: Any) -> Any:
            key = (name, args, tuple(sorted(kwargs.items())), tuple(self.search_paths))
            if key not in loaded:
                loaded[key] = original(self, *args, **kwargs)
            return loaded[key]

        return load

    for name, original in originals.items():
        setattr(Loader, name, cached(name, original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(Loader, name, original)


def emitted_metric_values(output: str, name: str) -> list[float]:
    """The values of EMF metric ``name`` in the printed lines (one per flushed invocation)."""
    values: list[float] = []
    for line in output.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        declared = {metric["Name"] for group in document["_aws"]["CloudWatchMetrics"] for metric in group["Metrics"]}
        if name in declared:
            value = document[name]
            values.extend(float(v) for v in (value if isinstance(value, list) else [value]))
    return values
