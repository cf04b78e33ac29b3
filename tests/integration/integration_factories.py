"""Factories for the integrations tests: bodies, integrations and mappings, and their secrets as stored.

Every secret value a test sends is made by ``secret_text``, so it carries ``CANARY``: a response,
log line or table that contains the canary has leaked a secret, whatever else it contains.
Direct AWS calls are reads (Secrets Manager as an operator sees it) and the failure hooks the
all-or-nothing tests need, put on the integrations function's own clients.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import ClientError

from spectra.tenancy.context import OrgContext
from spectra_local.gateway import GatewayResponse
from spectra_local.stack import LocalStack
from tests.integration.factories import Org

INTEGRATIONS_PATH = "/v2/integrations"
CATALOG_PATH = "/v2/integrations/mapping"
MAPPINGS_PATH = "/v2/integrations/resource-mappings"
CANARY = "canary-5e1f0c"
"""In every secret value the tests write, and nowhere else."""
INTEGRATION_RECORD_FIELDS = {
    "integrationId",
    "integrationName",
    "integrationDirection",
    "integrationType",
    "properties",
    "metaData",
    "resources",
    "secretPropertyNames",
    "secretsUpdatedAt",
    "createdAt",
    "updatedAt",
    "createdBy",
    "updatedBy",
}


def secret_text(label: str = "secret") -> str:
    """A distinctive secret value (unique, and carrying the canary)."""
    return f"{CANARY}-{label}-{uuid.uuid4().hex}"


# -- paths ------------------------------------------------------------------------------------


def integration_path(integration_id: str) -> str:
    return f"{INTEGRATIONS_PATH}/{integration_id}"


def secret_properties_path(integration_id: str) -> str:
    return f"{integration_path(integration_id)}/secret-properties"


def mapping_path(mapping_id: str) -> str:
    return f"{MAPPINGS_PATH}/{mapping_id}"


# -- bodies -----------------------------------------------------------------------------------


def webhook_body(**fields: Any) -> dict[str, Any]:
    """An EGRESS Webhook (one required secret, ``signingSecret``)."""
    return {
        "integrationName": "Alerts webhook",
        "integrationDirection": "EGRESS",
        "integrationType": "Webhook",
        "properties": {"url": "https://hooks.example.com/spectra"},
        "secretProperties": {"signingSecret": secret_text("signing")},
        **fields,
    }


def telematics_body(**fields: Any) -> dict[str, Any]:
    """An INGRESS Telematics (``accountId`` fixed at creation, ``apiKey`` secret)."""
    return {
        "integrationName": "Van telematics",
        "integrationDirection": "INGRESS",
        "integrationType": "Telematics",
        "properties": {"providerUrl": "https://api.telematics.example.com", "accountId": "acct-42"},
        "secretProperties": {"apiKey": secret_text("apikey")},
        **fields,
    }


def mqtt_body(**fields: Any) -> dict[str, Any]:
    """An EGRESS Mqtt broker, whose secrets are all optional (created here without any)."""
    return {
        "integrationName": "Broker",
        "integrationDirection": "EGRESS",
        "integrationType": "Mqtt",
        "properties": {"brokerHost": "mqtt.example.com", "topicPrefix": "spectra/", "clientId": "spectra-1"},
        **fields,
    }


def mapping_body(integration_id: str, resource_id: str, resource_type: str = "Thing", **fields: Any) -> dict[str, Any]:
    return {
        "integrationId": integration_id,
        "externalId": f"vehicle-{uuid.uuid4().hex[:8]}",
        "resourceType": resource_type,
        "resourceId": resource_id,
        **fields,
    }


# -- through the API --------------------------------------------------------------------------


def post_integration(stack: LocalStack, caller: str, body: Any, **headers: str) -> GatewayResponse:
    return stack.request("POST", INTEGRATIONS_PATH, key=caller, json_body=body, headers=headers)


def make_integration(stack: LocalStack, caller: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A new integration (a Webhook unless ``body`` says otherwise)."""
    response = post_integration(stack, caller, dict(body) if body is not None else webhook_body())
    assert response.status == 201, response.body
    created: dict[str, Any] = response.json()
    return created


def post_mapping(stack: LocalStack, caller: str, body: Any) -> GatewayResponse:
    return stack.request("POST", MAPPINGS_PATH, key=caller, json_body=body)


def make_mapping(
    stack: LocalStack, caller: str, integration_id: str, resource_id: str, **fields: Any
) -> dict[str, Any]:
    response = post_mapping(stack, caller, mapping_body(integration_id, resource_id, **fields))
    assert response.status == 201, response.body
    created: dict[str, Any] = response.json()
    return created


def put_secrets(stack: LocalStack, caller: str, integration_id: str, secrets: Mapping[str, Any]) -> GatewayResponse:
    body = {"secretProperties": dict(secrets)}
    return stack.request("PUT", secret_properties_path(integration_id), key=caller, json_body=body)


# -- Secrets Manager as an operator sees it ---------------------------------------------------


def secret_name(stack: LocalStack, org_id: str, integration_id: str) -> str:
    """Where the integration's secret must live: under the stage's and the org's own path."""
    stage = stack.environment("integrations")["STAGE_NAME"]
    return f"spectra/{stage}/orgs/{org_id}/integrations/{integration_id}"


def secrets_manager() -> Any:
    """Secrets Manager as an operator reads it (plain dicts, not the stubs' typed responses)."""
    return boto3.client("secretsmanager")


def org_secrets(stack: LocalStack, org_id: str) -> list[dict[str, Any]]:
    """Every integration secret of the org, including those scheduled for deletion."""
    stage = stack.environment("integrations")["STAGE_NAME"]
    client = secrets_manager()
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
        found.extend(s for s in page["SecretList"] if s["Name"].startswith(f"spectra/{stage}/orgs/{org_id}/"))
    return found


def describe_secret(name: str) -> dict[str, Any]:
    described: dict[str, Any] = secrets_manager().describe_secret(SecretId=name)
    return described


def stored_secret_values(name: str, version_id: str | None = None) -> dict[str, Any]:
    """The JSON a secret version holds (the operator's view; the API never reads it)."""
    client = secrets_manager()
    # By stage, as AWS resolves a read without a version (moto alone would use its first version).
    arguments = {"SecretId": name, **({"VersionId": version_id} if version_id else {"VersionStage": "AWSCURRENT"})}
    values: dict[str, Any] = json.loads(client.get_secret_value(**arguments)["SecretString"])
    return values


def resource_policy(name: str) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(secrets_manager().get_resource_policy(SecretId=name)["ResourcePolicy"])
    return policy


# -- the function's own clients, for failure hooks --------------------------------------------


def function_secrets_client(stack: LocalStack, org: Org) -> Any:
    """The Secrets Manager client the integrations function uses for ``org`` (its secrets role)."""
    service = stack.function("integrations").load().integrations
    return service._secrets._sessions.client(OrgContext.for_operator(org.org_id), "secretsmanager")


def function_records_client(stack: LocalStack, org: Org) -> Any:
    """The DynamoDB client the integrations function's repository uses for ``org``."""
    service = stack.function("integrations").load().integrations
    return service._integrations._client(OrgContext.for_operator(org.org_id))


@contextmanager
def failing(client: Any, operation: str, code: str = "InternalServiceError") -> Iterator[list[dict[str, Any]]]:
    """Make every ``operation`` call of ``client`` fail in the block; yields the calls' params."""
    calls: list[dict[str, Any]] = []
    service = client.meta.service_model.service_id.hyphenize()

    def fail(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)
        raise ClientError({"Error": {"Code": code, "Message": "simulated failure"}}, operation)

    event = f"provide-client-params.{service}.{operation}"
    client.meta.events.register(event, fail)
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, fail)
