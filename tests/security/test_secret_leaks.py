"""No key, key secret, stored hash, pepper or integration secret value in any response, log line
or (for secrets) table.

One scenario (orgs, keys, rotation, integrations and their secrets, lists, reads and many kinds of
failure) runs once with every response and every log line captured; the tests below each check
one kind of secret.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto import mock_aws

from spectra.auth.credentials import ApiKeyCredential, KeyType
from spectra_local.gateway import GatewayResponse
from spectra_local.stack import LocalStack
from spectra_local.template import Template
from tests.integration.factories import (
    API_KEYS_PATH,
    ORGANIZATION_PATH,
    Org,
    captured_logs,
    create_key,
    expire_authorizer_caches,
    idempotency_table,
    key_body,
    key_path,
    make_org,
    records_table,
    scan_table_text,
    scope,
    secret_part,
    secret_value,
    stored_key_record,
)
from tests.integration.integration_factories import (
    CANARY,
    CATALOG_PATH,
    INTEGRATIONS_PATH,
    MAPPINGS_PATH,
    failing,
    function_records_client,
    function_secrets_client,
    integration_path,
    mapping_body,
    mapping_path,
    secret_name,
    secret_properties_path,
    secret_text,
    stored_secret_values,
    telematics_body,
    webhook_body,
)
from tests.integration.place_factories import make_site, make_thing, make_type


@dataclass
class Scenario:
    """Everything the scenario said (responses, logs, tables) and every secret it made."""

    stack: LocalStack
    responses: list[str] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    full_keys: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    logs: str = ""
    pepper: str = ""
    page_token_key: str = ""
    records: str = ""
    idempotency_records: str = ""
    integration_secrets: list[str] = field(default_factory=list)
    """Every secret value sent to the integrations API (accepted or refused)."""
    stored_integration_secrets: list[dict[str, Any]] = field(default_factory=list)

    def request(self, method: str, path: str, *, reveals: bool = False, **kwargs: Any) -> GatewayResponse:
        """A request whose response is kept; a revealing route may show its own new key, once."""
        response = self.stack.request(method, path, **kwargs)
        text = response.body.decode("utf-8")
        self.statuses.add(response.status)
        if reveals and response.status in {200, 201}:
            body = response.json()
            if "key" in body:  # an idempotent replay shows what was created, never the secret again
                self.full_keys.append(body.pop("key"))
            text = json.dumps(body)
        self.responses.append(text + json.dumps(response.headers))
        return response

    def provision(self, command: dict[str, Any]) -> dict[str, Any]:
        result = self.stack.provision(command)
        self.responses.append(json.dumps({k: v for k, v in result.items() if k != "adminKey"}))
        return result

    @property
    def secret_parts(self) -> list[str]:
        return [secret_part(key) for key in self.full_keys]


def run_scenario(scenario: Scenario) -> None:
    """A day in the life of two orgs, including everything that goes wrong."""
    stack = scenario.stack
    created = scenario.provision({"action": "create_org", "name": "Acme Telemetry"})
    admin, admin_id = created["adminKey"], created["adminKeyId"]
    scenario.full_keys.append(admin)
    other = make_org(stack, "Globex Sensors")
    scenario.full_keys.append(other.admin_key)

    def create(body: dict[str, Any], **headers: str) -> tuple[str, str]:
        """Create a key; returns its id and the secret the response revealed."""
        response = scenario.request("POST", API_KEYS_PATH, reveals=True, key=admin, json_body=body, headers=headers)
        assert response.status == 201, response.body
        return response.json()["keyId"], scenario.full_keys[-1]

    reader_id, old_reader = create(key_body("reader", scopes=[scope("read", "THING/Battery/#")]))
    ops_id, ops = create(key_body("ops", type="admin", scopes=[scope("*")]), **{"Idempotency-Key": "ops-1"})
    create(key_body("ops", type="admin", scopes=[scope("*")]), **{"Idempotency-Key": "ops-1"})  # a replay
    fenced_id, fenced = create(key_body("fenced", allowed_ip_cidrs=["203.0.113.0/24"]))
    rotated = scenario.request(
        "POST", key_path(reader_id, "rotate"), reveals=True, key=admin, json_body={"graceSeconds": 600}
    )
    assert rotated.status == 200, rotated.body
    new_reader = scenario.full_keys[-1]
    expire_authorizer_caches(stack)

    for key in (admin, old_reader, new_reader, ops):
        scenario.request("GET", ORGANIZATION_PATH, key=key)
    scenario.request("GET", API_KEYS_PATH, key=admin, query={"limit": 2})
    for key_id in (admin_id, reader_id, ops_id):
        scenario.request("GET", key_path(key_id), key=admin)
    scenario.request("PATCH", key_path(reader_id), key=admin, json_body={"name": "reader v2"})

    # failures
    forged = ApiKeyCredential.generate(KeyType.EXTERNAL, reader_id).reveal()
    typo = new_reader[:-1] + ("a" if new_reader[-1] != "a" else "b")
    for key in (forged, typo, "spx_ad_garbage", ApiKeyCredential.generate(KeyType.ADMIN).reveal()):
        scenario.request("GET", ORGANIZATION_PATH, key=key)
    scenario.request("GET", ORGANIZATION_PATH, key=fenced, source_ip="198.51.100.1")  # IP denied
    scenario.request("GET", API_KEYS_PATH, key=new_reader)  # 403 scope
    scenario.request("GET", key_path(admin_id), key=other.admin_key)  # 404 other org
    scenario.request("POST", API_KEYS_PATH, key=admin, json_body={**key_body(), "scopes": [scope("read", admin)]})
    scenario.request("POST", API_KEYS_PATH, key=admin, json_body={"name": new_reader[:100], "scopes": []})
    scenario.request("POST", key_path(ops_id, "revoke"), key=admin)
    scenario.request("POST", key_path(ops_id, "revoke"), key=admin)
    scenario.request("POST", key_path(admin_id, "revoke"), key=admin)  # last admin: 409
    scenario.request("POST", key_path(ops_id, "rotate"), key=admin)  # revoked: 409
    scenario.request("PATCH", key_path(fenced_id), key=admin, json_body={"expiresAt": "2000-01-01T00:00:00Z"})
    expire_authorizer_caches(stack)
    scenario.request("GET", ORGANIZATION_PATH, key=ops)  # revoked: 401
    run_integration_scenario(scenario, Org(created["orgId"], created["name"], admin, admin_id), other)
    scenario.provision({"action": "suspend_org", "orgId": created["orgId"]})
    scenario.provision({"action": "resume_org", "orgId": created["orgId"]})
    scenario.provision({"action": "list_orgs"})

    for org_id, key_id in [(created["orgId"], k) for k in (admin_id, reader_id, ops_id, fenced_id)]:
        stored = stored_key_record(stack, org_id, key_id)
        scenario.hashes.extend(str(stored[name]) for name in ("secretHash", "previousSecretHash") if name in stored)
    environment = stack.environment("api_keys")
    scenario.pepper = secret_value(environment["API_KEY_PEPPER_SECRET_ARN"])
    scenario.page_token_key = secret_value(environment["PAGE_TOKEN_SECRET_ARN"])
    scenario.records = scan_table_text(records_table(stack))
    scenario.idempotency_records = scan_table_text(idempotency_table(stack))


def run_integration_scenario(scenario: Scenario, org: Org, other: Org) -> None:
    """Integrations from create to delete, with their secrets sent right and every wrong way."""
    stack = scenario.stack
    admin = org.admin_key

    def secret(label: str) -> str:
        value = secret_text(label)
        scenario.integration_secrets.append(value)
        return value

    def send(method: str, path: str, body: Any = None, key: str = admin, **headers: str) -> GatewayResponse:
        return scenario.request(method, path, key=key, json_body=body, headers=headers)

    def posted(body: dict[str, Any], **headers: str) -> str:
        response = send("POST", INTEGRATIONS_PATH, body, **headers)
        assert response.status == 201, response.body
        return str(response.json()["integrationId"])

    scenario.request("GET", CATALOG_PATH, key=admin)
    webhook_first = webhook_body(secretProperties={"signingSecret": secret("signing")})
    webhook = posted(webhook_first, **{"Idempotency-Key": "webhook-1"})
    posted(webhook_first, **{"Idempotency-Key": "webhook-1"})  # a replay
    telematics = posted(telematics_body(secretProperties={"apiKey": secret("apikey")}))
    name = secret_name(stack, org.org_id, telematics)
    scenario.stored_integration_secrets.append(stored_secret_values(name))
    for path in (integration_path(webhook), integration_path(telematics), INTEGRATIONS_PATH):
        send("GET", path)
    scenario.request("GET", INTEGRATIONS_PATH, key=admin, query={"limit": 1, "integrationDirection": "EGRESS"})
    send("PATCH", integration_path(webhook), {"integrationName": "Alerts v2"})
    assert (
        send("PUT", secret_properties_path(telematics), {"secretProperties": {"apiKey": secret("rotated")}}).status
        == 200
    )
    scenario.stored_integration_secrets.append(stored_secret_values(name))
    thing = make_thing(
        stack, admin, "Site", make_site(stack, admin)["siteId"], make_type(stack, admin, "Van")["thingTypeId"]
    )
    mapping = send("POST", MAPPINGS_PATH, mapping_body(telematics, thing["thingId"])).json()
    send("GET", MAPPINGS_PATH)

    # failures, most of them carrying secrets where they do not belong
    send("PATCH", integration_path(webhook), {"secretProperties": {"signingSecret": secret("patched")}})
    send("PATCH", integration_path(webhook), {"properties": {"signingSecret": secret("patched-plain")}})
    send("PUT", secret_properties_path(webhook), {"secretProperties": {"signingSecret": secret("long") + "x" * 5000}})
    send("PUT", secret_properties_path(webhook), {"secretProperties": {"apiKey": secret("unknown-name")}})
    send("PUT", secret_properties_path(webhook), {"secretProperties": {"signingSecret": [secret("listed")]}})
    send(
        "POST",
        INTEGRATIONS_PATH,
        webhook_body(properties={"url": "https://x.example.com", "token": secret("in-props")}),
    )
    send("POST", INTEGRATIONS_PATH, webhook_body(integrationType="Fax", secretProperties={"k": secret("unknown-type")}))
    send(
        "POST",
        INTEGRATIONS_PATH,
        webhook_body(secretProperties={"signingSecret": secret("other")}),
        **{"Idempotency-Key": "webhook-1"},
    )
    scoped = create_key(
        stack,
        admin,
        name="telematics",
        scopes=[{"action": "write", "resourceFilter": "INTEGRATION/INGRESS/Telematics/#"}],
    )
    send(
        "POST", INTEGRATIONS_PATH, webhook_body(secretProperties={"signingSecret": secret("scoped")}), key=scoped.secret
    )
    send(
        "PUT",
        secret_properties_path(webhook),
        {"secretProperties": {"signingSecret": secret("foreign")}},
        key=other.admin_key,
    )
    with failing(function_secrets_client(stack, org), "CreateSecret"):
        send("POST", INTEGRATIONS_PATH, webhook_body(secretProperties={"signingSecret": secret("store-down")}))
    with failing(function_records_client(stack, org), "TransactWriteItems"):
        send("POST", INTEGRATIONS_PATH, webhook_body(secretProperties={"signingSecret": secret("table-down")}))
    with failing(function_secrets_client(stack, org), "DeleteSecret"):
        send("DELETE", integration_path(webhook))  # the secret is left for an operator, logged

    send("DELETE", mapping_path(mapping["mappingId"]))
    send("DELETE", integration_path(telematics))
    send("GET", integration_path(telematics))


@pytest.fixture(scope="module")
def scenario(template: Template) -> Scenario:
    """Run the scenario once on its own deployment, capturing every log line it writes."""
    logs = io.StringIO()
    with captured_logs(logs), mock_aws(), redirect_stdout(logs), redirect_stderr(logs):
        captured = Scenario(stack=LocalStack.create(template))
        run_scenario(captured)
    captured.logs = logs.getvalue()
    return captured


def test_scenario_was_captured(scenario: Scenario) -> None:
    """Guards the tests below against passing on nothing."""
    assert len(scenario.full_keys) >= 6  # the idempotent replay shows no key: secrets appear once
    assert len(scenario.hashes) >= 5
    assert len(scenario.responses) >= 30
    assert scenario.statuses == {200, 201, 204, 400, 401, 403, 404, 409, 500, 503}
    assert '"level":"INFO"' in scenario.logs
    assert "Request not authorized" in scenario.logs
    assert "could not be scheduled for deletion" in scenario.logs  # failures were logged, and scanned
    assert scenario.pepper


def test_integration_secrets_were_written_and_stored(scenario: Scenario) -> None:
    """Guards the integration tests below: real values were sent, and Secrets Manager holds them."""
    assert len(scenario.integration_secrets) >= 15
    assert len(set(scenario.integration_secrets)) == len(scenario.integration_secrets)
    assert all(CANARY in secret for secret in scenario.integration_secrets)
    stored = [value for values in scenario.stored_integration_secrets for value in values.values()]
    assert len(stored) == 2
    assert set(stored) <= set(scenario.integration_secrets)


@pytest.mark.parametrize("kind", ["full_keys", "secret_parts", "hashes"])
def test_no_response_carries_a_key_secret_or_hash(scenario: Scenario, kind: str) -> None:
    for secret in getattr(scenario, kind):
        leaking = [r for r in scenario.responses if secret in r]
        assert leaking == [], f"{kind} leaked in {leaking[0][:300]}"


@pytest.mark.parametrize("kind", ["full_keys", "secret_parts", "hashes"])
def test_no_log_line_carries_a_key_secret_or_hash(scenario: Scenario, kind: str) -> None:
    for secret in getattr(scenario, kind):
        assert secret not in scenario.logs, kind


@pytest.mark.parametrize("kind", ["pepper", "page_token_key"])
def test_platform_secrets_appear_nowhere(scenario: Scenario, kind: str) -> None:
    secret = getattr(scenario, kind)

    assert secret not in scenario.logs
    assert all(secret not in response for response in scenario.responses)
    assert secret not in scenario.records


def test_records_table_holds_no_key_secret(scenario: Scenario) -> None:
    for secret in scenario.secret_parts:
        assert secret not in scenario.records


def test_idempotency_table_holds_no_key_secret(scenario: Scenario) -> None:
    for secret in scenario.secret_parts:
        assert secret not in scenario.idempotency_records


def test_no_response_carries_an_integration_secret(scenario: Scenario) -> None:
    leaking = [r for r in scenario.responses if CANARY in r]  # every value sent carries the canary
    assert leaking == [], f"an integration secret leaked in {leaking[0][:300]}"


def test_no_log_line_carries_an_integration_secret(scenario: Scenario) -> None:
    assert CANARY not in scenario.logs


@pytest.mark.parametrize("table", ["records", "idempotency_records"])
def test_tables_hold_no_integration_secret(scenario: Scenario, table: str) -> None:
    assert CANARY not in getattr(scenario, table)
