"""No key, key secret, stored hash or pepper in any response, log line or (for secrets) table.

One scenario (orgs, keys, rotation, lists, reads and many kinds of failure) runs once with every
response and every log line captured; the tests below each check one kind of secret.
"""

from __future__ import annotations

import io
import json
import logging
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto import mock_aws

from spectra.auth.credentials import ApiKeyCredential, KeyType
from spectra.observability import logger
from spectra_local.gateway import GatewayResponse
from spectra_local.stack import LocalStack
from spectra_local.template import Template
from tests.integration.factories import (
    API_KEYS_PATH,
    ORGANIZATION_PATH,
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


@pytest.fixture(scope="module")
def scenario(template: Template) -> Scenario:
    """Run the scenario once on its own deployment, capturing every log line it writes."""
    logs = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous_stream, previous_level = handler.stream, logger.log_level
    library_logs = logging.StreamHandler(logs)
    root = logging.getLogger()
    previous_root_level = root.level
    root.addHandler(library_logs)
    root.setLevel(logging.INFO)
    handler.setStream(logs)
    logger.setLevel("DEBUG")
    try:
        with mock_aws(), redirect_stdout(logs), redirect_stderr(logs):
            captured = Scenario(stack=LocalStack.create(template))
            run_scenario(captured)
    finally:
        handler.setStream(previous_stream)
        logger.setLevel(previous_level)
        root.removeHandler(library_logs)
        root.setLevel(previous_root_level)
    captured.logs = logs.getvalue()
    return captured


def test_scenario_was_captured(scenario: Scenario) -> None:
    """Guards the tests below against passing on nothing."""
    assert len(scenario.full_keys) >= 6  # the idempotent replay shows no key: secrets appear once
    assert len(scenario.hashes) >= 5
    assert len(scenario.responses) >= 30
    assert scenario.statuses == {200, 201, 400, 401, 403, 404, 409}
    assert '"level":"INFO"' in scenario.logs
    assert "Request not authorized" in scenario.logs
    assert scenario.pepper


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
