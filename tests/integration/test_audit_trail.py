"""The audit trail as clients and operators leave it: what the request path, the authorizer and
the provisioning tools append to each org's chain, and what they must never append.

Proves, through the local API Gateway and functions (and the operator's provisioning function):

- every change made through a route is one event naming the action, the resource, the calling
  key, the request id, the source IP, the outcome and the names (never the values) of the
  fields it set, and every event links to the one before it;
- refusals are recorded in the caller's org (403, 404 on someone else's id, 400, and the
  authorizer's refusals of a real key), while 429s, idempotent replays, unknown key ids and
  successful reads add nothing;
- operator actions are recorded with the actor ``operator``;
- a failed append never fails the request, concurrent requests never fork the chain;
- retention hides what is past the audit retention, and the retention job counts it and
  raises ``AuditChainBroken`` for a tampered chain; ``verify`` catches events moved around.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from spectra.audit.chain import GENESIS_HASH, AuditRecord
from spectra.audit.store import AuditLog
from spectra.auth.credentials import ApiKeyCredential, KeyType
from spectra.deployment import audit_log
from spectra.models.common import utc_now
from spectra.repositories.dynamo import from_item
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext
from spectra_local.functions import function_environment
from spectra_local.gateway import GatewayResponse
from spectra_local.schedules import scheduled_event
from spectra_local.stack import LocalStack
from tests.integration.definition_factories import delete, key_with, make_metric, metric_path, restore
from tests.integration.factories import (
    API_KEYS_PATH,
    ORGANIZATION_PATH,
    Org,
    assert_problem,
    captured_logs,
    create_key,
    emitted_metric_values,
    expire_authorizer_caches,
    expire_key,
    key_body,
    make_provisioner,
    revoke,
    rotate,
    scan_table_text,
    scope,
    secret_part,
    unknown_key,
)
from tests.integration.integration_factories import CANARY, make_integration, put_secrets, secret_text
from tests.integration.place_factories import SITES_PATH, make_site, site_body, site_path

AUDIT_EVENTS = "/v2/audit-events"
VERIFY = "/v2/audit-events/verify"
SETTINGS = "/v2/organization/settings"
CLIENT_IP = "203.0.113.24"
REQUEST_ID_HEADER = "x-amzn-RequestId"
THREADS = 6
CREATES_PER_THREAD = 4
REQUEST_CAP = 30


# -- reading the chain ------------------------------------------------------------------------


def audit_events(stack: LocalStack, org: Org, **query: Any) -> list[dict[str, Any]]:
    """Every event ``GET /audit-events`` lists (newest first), following continuation tokens."""
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page_query = {"limit": 100, **query, **({"continuationToken": token} if token else {})}
        response = stack.request("GET", AUDIT_EVENTS, key=org.admin_key, query=page_query)
        assert response.status == 200, response.body
        page = response.json()
        events.extend(page["items"])
        token = page["continuationToken"]
        if not page["hasMore"]:
            return events


def chain(stack: LocalStack, org: Org) -> list[dict[str, Any]]:
    """The org's listed events in chain order (oldest first)."""
    return list(reversed(audit_events(stack, org)))


def events_after(stack: LocalStack, org: Org, sequence: int) -> list[dict[str, Any]]:
    """The listed events appended after ``sequence``, oldest first."""
    return [event for event in chain(stack, org) if event["sequence"] > sequence]


def head_sequence(stack: LocalStack, org: Org) -> int:
    return max((int(event["sequence"]) for event in stored_chain(stack, org.org_id)), default=0)


def verified(stack: LocalStack, org: Org) -> dict[str, Any]:
    response = stack.request("GET", VERIFY, key=org.admin_key)
    assert response.status == 200, response.body
    result: dict[str, Any] = response.json()
    return result


def summary(event: dict[str, Any]) -> tuple[Any, ...]:
    """What an event says happened: action, resource type and id, outcome, changed fields."""
    return (event["action"], event["resourceType"], event["resourceId"], event["outcome"], event["changes"])


def request_id(response: GatewayResponse) -> str:
    """The API Gateway request id the functions saw for this request."""
    return response.headers[REQUEST_ID_HEADER]


# -- the audit table itself (tests may read and tamper; the product only puts and queries) -----


def audit_table(stack: LocalStack) -> str:
    return stack.environment("organization")["AUDIT_TABLE"]


def event_key(org_id: str, sequence: int) -> dict[str, dict[str, str]]:
    key = keys.audit_event_key(OrgContext.for_operator(org_id), sequence)
    return {name: {"S": value} for name, value in key.items()}


def stored_chain(stack: LocalStack, org_id: str) -> list[dict[str, Any]]:
    """The org's stored items in chain order, read from the table (no API, no rate limit)."""
    client = boto3.client("dynamodb")
    partition = keys.audit_partition(OrgContext.for_operator(org_id))
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("query").paginate(
        TableName=audit_table(stack),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": partition}},
        ConsistentRead=True,
    ):
        items.extend(from_item(item) for item in page["Items"])
    return items


def audit_item_count(stack: LocalStack) -> int:
    return len(json.loads(scan_table_text(audit_table(stack))))


def raw_event_item(stack: LocalStack, org_id: str, sequence: int) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(TableName=audit_table(stack), Key=event_key(org_id, sequence))["Item"]
    return dict(item)


def edit_stored_event(stack: LocalStack, org_id: str, sequence: int) -> None:
    boto3.client("dynamodb").update_item(
        TableName=audit_table(stack),
        Key=event_key(org_id, sequence),
        UpdateExpression="SET outcome = :outcome",
        ExpressionAttributeValues={":outcome": {"S": "denied"}},
    )


# -- the running functions' audit log ---------------------------------------------------------


def function_audit_logs(stack: LocalStack) -> list[AuditLog]:
    """The audit log(s) the API functions and the retention job append to and read from."""
    stack.function("organization").load()
    with function_environment(stack.environment("organization")):
        shared = audit_log()
    job = stack.function("retention").load().job
    return [shared, job._audit]


def run_retention(stack: LocalStack) -> dict[str, Any]:
    """One invocation of the retention function, as its EventBridge schedule makes it."""
    report: dict[str, Any] = stack.function("retention").invoke(scheduled_event("ContinuePass", region=stack.region))
    return report


def unreachable_table(self: AuditLog, org: OrgContext, record: AuditRecord) -> dict[str, Any]:
    """``AuditLog.append`` with the audit table out of reach."""
    raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no such table"}}, "PutItem")


# -- requests ----------------------------------------------------------------------------------


def post_site(stack: LocalStack, caller: str, body: dict[str, Any] | None = None, **kwargs: Any) -> GatewayResponse:
    return stack.request("POST", SITES_PATH, key=caller, json_body=body or site_body(), **kwargs)


def per_minute(rate_per_minute: int, burst: int) -> dict[str, int]:
    """One tier's limit as ``set_limits`` takes it."""
    return {"ratePerMinute": rate_per_minute, "burst": burst}


def provision(stack: LocalStack, command: dict[str, Any]) -> dict[str, Any]:
    """An operator command through the provisioning function; keys see its effect at once."""
    result = stack.provision(command)
    expire_authorizer_caches(stack)
    return result


# == changes through the API ===================================================================


def test_a_new_orgs_chain_starts_with_its_creation_by_the_operator(stack: LocalStack, org: Org) -> None:
    [created] = chain(stack, org)

    assert summary(created) == ("organization.create", "organization", org.org_id, "success", ["name", "plan"])
    assert (created["sequence"], created["actorKeyId"], created["previousHash"]) == (1, "operator", GENESIS_HASH)


def test_site_create_update_and_delete_record_what_who_and_from_where(stack: LocalStack, org: Org) -> None:
    body = site_body()
    spoofed = {"X-Forwarded-For": "10.9.8.7"}  # a client's claim; the recorded IP is the connection's
    create = post_site(stack, org.admin_key, body, source_ip=CLIENT_IP, headers=spoofed)
    site_id = create.json()["siteId"]
    update = stack.request(
        "PATCH", site_path(site_id), key=org.admin_key, json_body={"siteName": "Renamed"}, source_ip=CLIENT_IP
    )
    remove = stack.request("DELETE", site_path(site_id), key=org.admin_key, source_ip=CLIENT_IP)
    assert (create.status, update.status, remove.status) == (201, 200, 204)

    events = events_after(stack, org, 1)

    assert [summary(event) for event in events] == [
        ("site.create", "site", site_id, "success", sorted(body)),
        ("site.update", "site", site_id, "success", ["siteName"]),
        ("site.delete", "site", site_id, "success", []),
    ]
    assert [event["requestId"] for event in events] == [request_id(r) for r in (create, update, remove)]
    assert len({event["requestId"] for event in events}) == 3
    assert {event["actorKeyId"] for event in events} == {org.admin_key_id}
    assert {event["sourceIp"] for event in events} == {CLIENT_IP}


def test_each_event_links_to_the_one_before_and_the_chain_verifies(stack: LocalStack, org: Org) -> None:
    site_id = make_site(stack, org.admin_key)["siteId"]
    stack.request("PATCH", site_path(site_id), key=org.admin_key, json_body={"siteName": "Renamed"})
    stack.request("DELETE", site_path(site_id), key=org.admin_key)

    events = chain(stack, org)

    assert [event["sequence"] for event in events] == [1, 2, 3, 4]
    assert [event["previousHash"] for event in events] == [GENESIS_HASH] + [event["hash"] for event in events[:-1]]
    assert len({event["hash"] for event in events}) == 4
    assert verified(stack, org) == {"valid": True, "checked": 4, "firstBrokenEventId": None}


def test_nested_object_fields_are_named_one_level_deep(stack: LocalStack, org: Org) -> None:
    integration = make_integration(stack, org.admin_key)

    [event] = events_after(stack, org, 1)

    assert summary(event)[:4] == ("integration.create", "integration", integration["integrationId"], "success")
    assert event["changes"] == sorted(
        [
            "integrationDirection",
            "integrationName",
            "integrationType",
            "properties",
            "properties.url",
            "secretProperties",
            "secretProperties.signingSecret",
        ]
    )


def test_metric_soft_delete_and_restore_are_recorded(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    delete(stack, org.admin_key, metric_path(metric_id))
    assert restore(stack, org.admin_key, metric_path(metric_id)).status == 200

    events = events_after(stack, org, 1)

    assert [summary(event)[:4] for event in events] == [
        ("metric.create", "metric", metric_id, "success"),
        ("metric.delete", "metric", metric_id, "success"),
        ("metric.restore", "metric", metric_id, "success"),
    ]


def test_api_key_create_revoke_and_rotate_are_recorded(stack: LocalStack, org: Org) -> None:
    created = create_key(stack, org.admin_key, name="bot")
    rotated = create_key(stack, org.admin_key, name="rotated")
    assert rotate(stack, org.admin_key, rotated.key_id).status in (200, 201)
    assert revoke(stack, org.admin_key, created.key_id).status == 200

    events = events_after(stack, org, 1)

    assert [summary(event) for event in events] == [
        ("apiKey.create", "apiKey", created.key_id, "success", sorted(key_body())),
        ("apiKey.create", "apiKey", rotated.key_id, "success", sorted(key_body())),
        ("apiKey.rotate", "apiKey", rotated.key_id, "success", []),
        ("apiKey.revoke", "apiKey", created.key_id, "success", []),
    ]


def test_a_settings_change_is_recorded_with_the_setting_it_changed(stack: LocalStack, org: Org) -> None:
    response = stack.request("PATCH", SETTINGS, key=org.admin_key, json_body={"telemetryRetentionDays": 90})
    assert response.status == 200, response.body

    [event] = events_after(stack, org, 1)

    assert (event["action"], event["outcome"], event["changes"]) == (
        "settings.update",
        "success",
        ["telemetryRetentionDays"],
    )


def test_successful_reads_are_not_recorded(stack: LocalStack, org: Org) -> None:
    site_id = make_site(stack, org.admin_key)["siteId"]
    before = head_sequence(stack, org)

    for path in (SITES_PATH, site_path(site_id), ORGANIZATION_PATH, SETTINGS, API_KEYS_PATH):
        assert stack.request("GET", path, key=org.admin_key).status == 200

    assert head_sequence(stack, org) == before


# == secrets never recorded ===================================================================


def test_replacing_integration_secrets_records_their_names_and_no_value(stack: LocalStack, org: Org) -> None:
    integration_id = make_integration(stack, org.admin_key)["integrationId"]
    new_secret = secret_text("replaced")

    response = put_secrets(stack, org.admin_key, integration_id, {"signingSecret": new_secret})
    assert response.status == 200, response.body

    event = events_after(stack, org, 2)[0]
    assert summary(event) == (
        "integration.replaceSecrets",
        "integration",
        integration_id,
        "success",
        ["secretProperties", "secretProperties.signingSecret"],
    )
    listed = stack.request("GET", AUDIT_EVENTS, key=org.admin_key, query={"limit": 100}).body.decode("utf-8")
    table_text = scan_table_text(audit_table(stack))
    assert [text for text in (new_secret, CANARY) if text in table_text or text in listed] == []


def test_a_new_or_rotated_api_keys_secret_is_never_recorded(stack: LocalStack, org: Org) -> None:
    created = create_key(stack, org.admin_key, name="bot")
    rotated = rotate(stack, org.admin_key, created.key_id)
    secrets = [created.secret, secret_part(created.secret), rotated.json()["key"], secret_part(rotated.json()["key"])]

    listed = stack.request("GET", AUDIT_EVENTS, key=org.admin_key, query={"limit": 100}).body.decode("utf-8")
    table_text = scan_table_text(audit_table(stack))

    assert "apiKey.rotate" in listed
    assert [secret for secret in secrets if secret in table_text or secret in listed] == []


# == refusals =================================================================================


def test_a_write_refused_for_the_keys_scopes_is_recorded_as_denied(stack: LocalStack, org: Org) -> None:
    reader = key_with(stack, org, scope("read"))
    body = site_body()

    response = post_site(stack, reader.secret, body)
    problem = assert_problem(response, 403, "forbidden_scope")

    [event] = events_after(stack, org, 2)  # after the org's creation and the reader's
    assert summary(event) == ("site.create", "site", None, "denied", sorted(body))
    assert (event["actorKeyId"], event["requestId"]) == (reader.key_id, problem["requestId"])


def test_a_read_refused_for_the_keys_scopes_is_recorded_as_denied(stack: LocalStack, org: Org) -> None:
    visible, hidden = (make_site(stack, org.admin_key)["siteId"] for _ in range(2))
    reader = key_with(stack, org, scope("read", f"PLACE/Site/{visible}"))
    before = head_sequence(stack, org)

    assert stack.request("GET", site_path(visible), key=reader.secret).status == 200
    problem = assert_problem(stack.request("GET", site_path(hidden), key=reader.secret), 403, "forbidden_scope")

    [event] = events_after(stack, org, before)
    assert summary(event) == ("site.read", "site", hidden, "denied", [])
    assert (event["actorKeyId"], event["requestId"]) == (reader.key_id, problem["requestId"])


def test_another_orgs_id_is_recorded_as_not_found_in_the_callers_org_only(
    stack: LocalStack, org: Org, other_org: Org
) -> None:
    site_id = make_site(stack, org.admin_key)["siteId"]
    owners_chain = chain(stack, org)

    assert_problem(stack.request("GET", site_path(site_id), key=other_org.admin_key), 404)
    assert_problem(stack.request("DELETE", site_path(site_id), key=other_org.admin_key), 404)

    assert [summary(event) for event in events_after(stack, other_org, 1)] == [
        ("site.read", "site", site_id, "not_found", []),
        ("site.delete", "site", site_id, "not_found", []),
    ]
    assert {event["actorKeyId"] for event in events_after(stack, other_org, 1)} == {other_org.admin_key_id}
    assert chain(stack, org) == owners_chain


def test_an_invalid_write_is_recorded_as_rejected(stack: LocalStack, org: Org) -> None:
    body = {"siteName": "", "latitude": 123}

    problem = assert_problem(post_site(stack, org.admin_key, body), 400)

    [event] = events_after(stack, org, 1)
    assert summary(event) == ("site.create", "site", None, "rejected", ["latitude", "siteName"])
    assert event["requestId"] == problem["requestId"]


def test_a_failing_write_is_recorded_as_an_error(stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the store fell over")

    monkeypatch.setattr(stack.function("places").load().places, "create_site", broken)

    problem = assert_problem(post_site(stack, org.admin_key), 500)

    [event] = events_after(stack, org, 1)
    assert summary(event) == ("site.create", "site", None, "error", sorted(site_body()))
    assert event["requestId"] == problem["requestId"]


def test_a_refused_list_is_recorded_without_a_resource_id(stack: LocalStack, org: Org) -> None:
    fleets_only = key_with(stack, org, scope("read", "PLACE/Fleet/#"))

    assert_problem(stack.request("GET", SITES_PATH, key=fleets_only.secret), 403, "forbidden_scope")

    [event] = events_after(stack, org, 2)
    assert summary(event) == ("site.read", "site", None, "denied", [])
    assert event["actorKeyId"] == fleets_only.key_id


def test_rate_limited_requests_are_not_recorded(stack: LocalStack, org: Org) -> None:
    provision(stack, {"action": "set_limits", "orgId": org.org_id, "limits": {"standard": per_minute(1, 3)}})
    responses: list[GatewayResponse] = []
    for _ in range(REQUEST_CAP):
        responses.append(post_site(stack, org.admin_key))
        if responses[-1].status == 429:
            break
    refused = responses[-1]
    assert refused.status == 429, "the burst was never spent"

    stored = stored_chain(stack, org.org_id)  # the API itself would be rate-limited now

    assert [event["action"] for event in stored] == ["organization.create", "organization.setLimits"] + [
        "site.create"
    ] * (len(responses) - 1)
    assert request_id(refused) not in {event["requestId"] for event in stored}


# == idempotency ===============================================================================


def test_an_idempotent_replay_is_not_recorded_twice(stack: LocalStack, org: Org) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = post_site(stack, org.admin_key, headers=headers)
    replay = post_site(stack, org.admin_key, headers=headers)
    assert (first.status, replay.status) == (201, 201)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["siteId"] == first.json()["siteId"]

    events = events_after(stack, org, 1)

    assert [(event["action"], event["resourceId"], event["requestId"]) for event in events] == [
        ("site.create", first.json()["siteId"], request_id(first))
    ]


# == the authorizer ============================================================================


def authenticate_events(stack: LocalStack, org: Org, after: int) -> list[dict[str, Any]]:
    return [event for event in events_after(stack, org, after) if event["action"] == "apiKey.authenticate"]


def test_a_wrong_secret_for_a_real_key_id_is_recorded_in_the_keys_org(stack: LocalStack, org: Org) -> None:
    forged = ApiKeyCredential.generate(KeyType.ADMIN, org.admin_key_id).reveal()

    response = stack.request("GET", ORGANIZATION_PATH, key=forged, source_ip=CLIENT_IP)
    assert_problem(response, 401, "unauthorized")

    [event] = events_after(stack, org, 1)
    assert summary(event) == ("apiKey.authenticate", "apiKey", org.admin_key_id, "denied", [])
    assert (event["actorKeyId"], event["sourceIp"], event["requestId"]) == (
        org.admin_key_id,
        CLIENT_IP,
        request_id(response),
    )


def test_an_unknown_key_id_is_recorded_nowhere(stack: LocalStack, org: Org, other_org: Org) -> None:
    before = audit_item_count(stack)

    assert_problem(stack.request("GET", ORGANIZATION_PATH, key=unknown_key()), 401, "unauthorized")

    assert audit_item_count(stack) == before


def revoked(stack: LocalStack, org: Org) -> str:
    key = create_key(stack, org.admin_key, name="to revoke")
    assert revoke(stack, org.admin_key, key.key_id).status == 200
    return key.secret


def expired(stack: LocalStack, org: Org) -> str:
    key = create_key(stack, org.admin_key, name="to expire")
    expire_key(stack, org.org_id, key.key_id)
    return key.secret


def suspended(stack: LocalStack, org: Org) -> str:
    provision(stack, {"action": "suspend_org", "orgId": org.org_id})
    return org.admin_key


@pytest.mark.parametrize("refused_key", [revoked, expired, suspended], ids=["revoked", "expired", "suspended-org"])
def test_a_refused_real_key_is_recorded_in_its_org(
    stack: LocalStack, org: Org, refused_key: Callable[[LocalStack, Org], str]
) -> None:
    presented = refused_key(stack, org)
    key_id = ApiKeyCredential.parse(presented).key_id
    expire_authorizer_caches(stack)
    before = head_sequence(stack, org)

    response = stack.request("GET", ORGANIZATION_PATH, key=presented, source_ip=CLIENT_IP)
    assert_problem(response, 401, "unauthorized")

    [event] = [event for event in stored_chain(stack, org.org_id) if int(event["sequence"]) > before]
    assert summary(event) == ("apiKey.authenticate", "apiKey", key_id, "denied", [])
    assert (event["actorKeyId"], event["sourceIp"], event["requestId"]) == (key_id, CLIENT_IP, request_id(response))


def test_a_key_used_from_outside_its_allowed_networks_is_recorded(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key, allowed_ip_cidrs=["198.51.100.0/24"])
    before = head_sequence(stack, org)

    response = stack.request("GET", ORGANIZATION_PATH, key=key.secret, source_ip=CLIENT_IP)
    assert_problem(response, 403)

    [event] = authenticate_events(stack, org, before)
    assert summary(event) == ("apiKey.authenticate", "apiKey", key.key_id, "denied", [])
    assert (event["actorKeyId"], event["sourceIp"]) == (key.key_id, CLIENT_IP)


def test_the_authorizer_still_answers_401_when_the_append_fails(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(AuditLog, "append", unreachable_table)
    forged = ApiKeyCredential.generate(KeyType.ADMIN, org.admin_key_id).reveal()
    capsys.readouterr()

    response = stack.request("GET", ORGANIZATION_PATH, key=forged)

    assert_problem(response, 401, "unauthorized")
    assert emitted_metric_values(capsys.readouterr().out, "AuditAppendFailed") == [1.0]


# == operator actions =========================================================================


def test_operator_plan_limits_suspend_and_resume_are_recorded(stack: LocalStack, org: Org) -> None:
    provision(stack, {"action": "set_plan", "orgId": org.org_id, "plan": "professional"})
    provision(stack, {"action": "set_limits", "orgId": org.org_id, "limits": {"standard": per_minute(10, 50)}})
    provision(stack, {"action": "suspend_org", "orgId": org.org_id})
    provision(stack, {"action": "resume_org", "orgId": org.org_id})

    events = events_after(stack, org, 1)

    assert [summary(event) for event in events] == [
        ("organization.changePlan", "organization", org.org_id, "success", ["plan"]),
        ("organization.setLimits", "organization", org.org_id, "success", ["limitOverrides.standard"]),
        ("organization.suspend", "organization", org.org_id, "success", ["status"]),
        ("organization.resume", "organization", org.org_id, "success", ["status"]),
    ]
    assert {event["actorKeyId"] for event in events} == {"operator"}
    assert verified(stack, org)["valid"] is True


def test_the_operator_clis_provisioner_records_too(stack: LocalStack, org: Org) -> None:
    make_provisioner(stack).set_plan(org.org_id, "professional")

    [event] = events_after(stack, org, 1)

    assert (event["action"], event["actorKeyId"], event["changes"]) == ("organization.changePlan", "operator", ["plan"])


# == a failing audit table ======================================================================


def test_a_failed_append_never_fails_the_request(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    private_name = f"Private site {uuid.uuid4().hex}"
    private_address = f"{uuid.uuid4().hex} Hidden Lane"
    stream = io.StringIO()
    capsys.readouterr()
    with monkeypatch.context() as patch, captured_logs(stream):
        patch.setattr(AuditLog, "append", unreachable_table)
        response = post_site(stack, org.admin_key, site_body(siteName=private_name, address=private_address))
    printed = capsys.readouterr().out
    logs = stream.getvalue()

    assert response.status == 201, response.body
    assert "Audit event not appended" in logs
    assert "site.create" in logs
    assert emitted_metric_values(printed, "AuditAppendFailed") == [1.0]
    assert [text for text in (private_name, private_address) if text in logs or text in printed] == []
    assert [event["action"] for event in chain(stack, org)] == ["organization.create"]


def test_the_chain_carries_on_after_a_failed_append(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(AuditLog, "append", unreachable_table)
        assert post_site(stack, org.admin_key).status == 201

    after = post_site(stack, org.admin_key)

    assert [(e["sequence"], e["requestId"]) for e in events_after(stack, org, 1)] == [(2, request_id(after))]
    assert verified(stack, org)["valid"] is True


# == concurrency ===============================================================================


@dataclass
class Responses:
    items: list[GatewayResponse] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def test_concurrent_requests_append_one_event_each_without_forking_the_chain(stack: LocalStack, org: Org) -> None:
    """The local runtime runs one invocation at a time (as one Lambda container does); the
    clients are still concurrent, and every request must land exactly one event."""
    assert stack.request("GET", SITES_PATH, key=org.admin_key).status == 200  # functions loaded before the race
    results = Responses()
    start = threading.Barrier(THREADS)

    def client(number: int) -> None:
        try:
            start.wait(timeout=10)
            for index in range(CREATES_PER_THREAD):
                response = post_site(stack, org.admin_key, site_body(siteName=f"Site {number}-{index}"))
                with results.lock:
                    results.items.append(response)
        except BaseException as error:
            results.failures.append(error)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    total = THREADS * CREATES_PER_THREAD
    assert results.failures == []
    assert [response.status for response in results.items] == [201] * total
    events = chain(stack, org)
    assert [event["sequence"] for event in events] == list(range(1, total + 2))
    assert sorted(event["requestId"] for event in events[1:]) == sorted(request_id(r) for r in results.items)
    assert sorted(event["resourceId"] for event in events[1:]) == sorted(r.json()["siteId"] for r in results.items)
    assert verified(stack, org) == {"valid": True, "checked": total + 1, "firstBrokenEventId": None}


def test_a_rival_append_between_reading_the_head_and_writing_lands_both(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that read the head just before another writer appended must not overwrite it or
    fork the chain: it loses the conditional put, reads the new head and appends after it."""
    rival = AuditRecord(
        action="site.update", resource_type="site", resource_id="rival", outcome="success", actor_key_id="rival"
    )
    read_head = AuditLog.head
    raced: list[bool] = []

    def head_then_rival(self: AuditLog, org_context: OrgContext) -> dict[str, Any] | None:
        found = read_head(self, org_context)
        if not raced:
            raced.append(True)
            self.append(org_context, rival)  # takes the position just read as free
        return found

    monkeypatch.setattr(AuditLog, "head", head_then_rival)
    response = post_site(stack, org.admin_key)
    monkeypatch.setattr(AuditLog, "head", read_head)

    assert response.status == 201
    assert [(e["sequence"], e["action"]) for e in chain(stack, org)] == [
        (1, "organization.create"),
        (2, "site.update"),
        (3, "site.create"),
    ]
    assert verified(stack, org)["valid"] is True


# == retention =================================================================================


@dataclass
class AuditClock:
    """The functions' audit clock, moved by the test instead of waiting a year."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def audit_clock(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> AuditClock:
    clock = AuditClock(utc_now())
    for log in function_audit_logs(stack):
        monkeypatch.setattr(log, "_clock", clock)
    return clock


def events_then_500_days_later(stack: LocalStack, org: Org, clock: AuditClock) -> list[str]:
    """Two sites today (sequences 2-3 after the org's creation), then two more 500 days later
    (the audit retention is 400 days); the later sites' ids."""
    make_site(stack, org.admin_key)
    make_site(stack, org.admin_key)
    clock.now += timedelta(days=500)
    return [make_site(stack, org.admin_key)["siteId"] for _ in range(2)]


def test_events_past_the_audit_retention_are_neither_listed_nor_verified(
    stack: LocalStack, org: Org, audit_clock: AuditClock
) -> None:
    recent = events_then_500_days_later(stack, org, audit_clock)

    listed = audit_events(stack, org)

    assert [(event["sequence"], event["resourceId"]) for event in listed] == [(5, recent[1]), (4, recent[0])]
    assert verified(stack, org) == {"valid": True, "checked": 2, "firstBrokenEventId": None}


def test_the_retention_job_counts_events_awaiting_expiry(stack: LocalStack, org: Org, audit_clock: AuditClock) -> None:
    events_then_500_days_later(stack, org, audit_clock)

    report = run_retention(stack)

    assert (report["auditEventsAwaitingExpiry"], report["auditChainsBroken"]) == (3, 0)


def test_the_chain_still_verifies_once_ttl_has_removed_the_expired_events(
    stack: LocalStack, org: Org, audit_clock: AuditClock
) -> None:
    events_then_500_days_later(stack, org, audit_clock)
    for sequence in (1, 2, 3):  # what DynamoDB's TTL does
        boto3.client("dynamodb").delete_item(TableName=audit_table(stack), Key=event_key(org.org_id, sequence))

    assert verified(stack, org) == {"valid": True, "checked": 2, "firstBrokenEventId": None}
    report = run_retention(stack)
    assert (report["auditEventsAwaitingExpiry"], report["auditChainsBroken"]) == (0, 0)


def test_the_retention_job_alarms_on_an_edited_kept_event(
    stack: LocalStack, org: Org, capsys: pytest.CaptureFixture[str]
) -> None:
    make_site(stack, org.admin_key)
    make_site(stack, org.admin_key)
    edit_stored_event(stack, org.org_id, 2)
    capsys.readouterr()

    report = run_retention(stack)

    assert (report["auditChainsBroken"], report["auditEventsAwaitingExpiry"]) == (1, 0)
    assert emitted_metric_values(capsys.readouterr().out, "AuditChainBroken") == [1.0]


def test_the_retention_job_raises_no_alarm_for_an_intact_chain(
    stack: LocalStack, org: Org, capsys: pytest.CaptureFixture[str]
) -> None:
    make_site(stack, org.admin_key)
    capsys.readouterr()

    report = run_retention(stack)

    assert (report["auditChainsBroken"], report["auditEventsAwaitingExpiry"]) == (0, 0)
    assert emitted_metric_values(capsys.readouterr().out, "AuditChainBroken") == []


# == tampering ================================================================================


@pytest.mark.parametrize("renumber", [False, True], ids=["contents-swapped", "swapped-and-renumbered"])
def test_verify_names_the_first_event_moved_out_of_its_place(stack: LocalStack, org: Org, renumber: bool) -> None:
    make_site(stack, org.admin_key)
    make_site(stack, org.admin_key)
    make_site(stack, org.admin_key)
    second, third = raw_event_item(stack, org.org_id, 2), raw_event_item(stack, org.org_id, 3)
    client = boto3.client("dynamodb")
    for item, position in ((third, 2), (second, 3)):
        moved = {**item, **event_key(org.org_id, position)}
        if renumber:
            moved["sequence"] = {"N": str(position)}
        client.put_item(TableName=audit_table(stack), Item=moved)

    result = verified(stack, org)

    assert result == {"valid": False, "checked": 2, "firstBrokenEventId": third["eventId"]["S"]}


def test_deleting_the_oldest_events_before_they_expire_is_caught(stack: LocalStack, org: Org) -> None:
    make_site(stack, org.admin_key)
    make_site(stack, org.admin_key)
    for sequence in (1, 2):  # nothing here is past retention: this is tampering, not TTL
        boto3.client("dynamodb").delete_item(TableName=audit_table(stack), Key=event_key(org.org_id, sequence))

    assert verified(stack, org)["valid"] is False
