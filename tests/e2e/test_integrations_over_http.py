"""Integrations over HTTP, as a client uses them: create one with a secret, read it back without
it, rotate the secret, delete it. Every response is kept, and neither a response nor the
runtime's log ever shows a secret value; the embedded AWS shows where the values went."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import HttpResponse, RunningRuntime

pytestmark = pytest.mark.e2e


class Client:
    """One org's key on the runtime, keeping every response it receives."""

    def __init__(self, runtime: RunningRuntime, key: str) -> None:
        self.runtime = runtime
        self.key = key
        self.responses: list[str] = []

    def __call__(self, method: str, path: str, body: Any = None) -> HttpResponse:
        response = self.runtime.request(method, path, key=self.key, json_body=body)
        self.responses.append(response.body.decode("utf-8", "replace") + json.dumps(dict(response.headers)))
        return response


def secrets_manager(runtime: RunningRuntime) -> Any:
    """Secrets Manager of the runtime's embedded AWS, as an operator would look at it."""
    return boto3.client(
        "secretsmanager",
        endpoint_url=runtime.seed["awsEndpointUrl"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def integration_secret(runtime: RunningRuntime, org_id: str, integration_id: str) -> dict[str, Any]:
    """The one secret stored for the integration (found by name, deleted or not)."""
    client = secrets_manager(runtime)
    found = [
        secret
        for page in client.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True)
        for secret in page["SecretList"]
        if secret["Name"].endswith(f"/orgs/{org_id}/integrations/{integration_id}")
    ]
    assert len(found) == 1, found
    secret: dict[str, Any] = found[0]
    return secret


def stored_values(runtime: RunningRuntime, name: str) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(
        secrets_manager(runtime).get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"]
    )
    return values


def test_integration_secrets_are_written_rotated_and_deleted_but_never_shown(runtime: RunningRuntime) -> None:
    org = runtime.spectra("org", "create", "--name", "Integrations Co")
    call = Client(runtime, str(org["adminKey"]))
    first, rotated, refused = (f"e2e-secret-{label}-{uuid.uuid4().hex}" for label in ("first", "rotated", "refused"))

    catalog = call("GET", "/v2/integrations/mapping")
    assert catalog.status == 200, catalog.body
    webhook = next(t for t in catalog.json()["types"] if (t["direction"], t["type"]) == ("EGRESS", "Webhook"))
    assert [p["name"] for p in webhook["properties"] if p["secret"]] == ["signingSecret"]

    created = call(
        "POST",
        "/v2/integrations",
        {
            "integrationName": "Alerts webhook",
            "integrationDirection": "EGRESS",
            "integrationType": "Webhook",
            "properties": {"url": "https://hooks.example.com/spectra"},
            "secretProperties": {"signingSecret": first},
        },
    )
    assert created.status == 201, created.body
    integration = created.json()
    path = created.headers["Location"]
    assert path == f"/v2/integrations/{integration['integrationId']}"
    assert integration["secretPropertyNames"] == ["signingSecret"]

    read_back = call("GET", path)
    assert read_back.status == 200, read_back.body
    assert read_back.json() == integration
    listed = call("GET", "/v2/integrations").json()["items"]
    assert [item["integrationId"] for item in listed] == [integration["integrationId"]]
    secret = integration_secret(runtime, org["orgId"], integration["integrationId"])
    assert stored_values(runtime, secret["Name"]) == {"signingSecret": first}

    refused_patch = call("PATCH", path, {"secretProperties": {"signingSecret": refused}})
    assert refused_patch.status == 400, refused_patch.body
    assert refused_patch.headers["Content-Type"] == "application/problem+json"

    put = call("PUT", f"{path}/secret-properties", {"secretProperties": {"signingSecret": rotated}})
    assert put.status == 200, put.body
    assert put.json()["secretsUpdatedAt"] > integration["secretsUpdatedAt"]
    assert stored_values(runtime, secret["Name"]) == {"signingSecret": rotated}

    deleted = call("DELETE", path)
    assert deleted.status == 204, deleted.body
    assert call("GET", path).status == 404
    assert call("GET", "/v2/integrations").json()["items"] == []
    assert integration_secret(runtime, org["orgId"], integration["integrationId"]).get("DeletedDate") is not None

    log = runtime.log_path.read_text(errors="replace")
    assert integration["integrationId"] in log  # the log saw these requests
    for value in (first, rotated, refused):
        assert [r for r in call.responses if value in r] == []
        assert value not in log
    assert len(call.responses) == 9
