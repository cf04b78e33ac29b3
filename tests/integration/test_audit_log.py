"""The audit table under moto: appends form one chain per org, even from concurrent writers,
and tampering with stored items is caught by verification."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from spectra.audit.chain import AuditRecord, verify
from spectra.audit.store import DEFAULT_AUDIT_RETENTION_DAYS, AuditLog
from spectra.deployment import audit_log, org_sessions
from spectra.identifiers import new_guid
from spectra.tenancy.context import OrgContext
from spectra.tenancy.keys import audit_event_key
from spectra_cli import main as cli
from spectra_local.functions import function_environment
from spectra_local.stack import LocalStack
from tests.integration.factories import Org, provisioning_settings

WRITERS = 6
EVENTS_PER_WRITER = 5


def record(index: int = 0, actor: str = "key-1") -> AuditRecord:
    return AuditRecord(
        action="update",
        resource_type="Site",
        resource_id=f"site-{index}",
        outcome="success",
        actor_key_id=actor,
        changes=("siteName",),
    )


def log_of(stack: LocalStack) -> AuditLog:
    """The audit log as a function of this stack reaches it (the org-scoped data role)."""
    stack.function("organization").load()
    with function_environment(stack.environment("organization")):
        return audit_log()


def stored_events(stack: LocalStack, log: AuditLog, org: Org) -> list[dict[str, Any]]:
    with function_environment(stack.environment("organization")):
        return list(log.events(OrgContext.for_operator(org.org_id)))


@pytest.fixture
def unprovisioned() -> Org:
    """An org id with an empty chain: the store's own tests need no org (a provisioned org's
    chain starts with its ``organization.create`` event)."""
    return Org(org_id=new_guid(), name="", admin_key="", admin_key_id="")


@pytest.fixture
def second_unprovisioned() -> Org:
    return Org(org_id=new_guid(), name="", admin_key="", admin_key_id="")


def test_appends_form_a_chain_that_verifies(stack: LocalStack, unprovisioned: Org) -> None:
    log = log_of(stack)
    context = OrgContext.for_operator(unprovisioned.org_id)
    with function_environment(stack.environment("organization")):
        appended = [log.append(context, record(index)) for index in range(4)]

    events = stored_events(stack, log, unprovisioned)

    assert [e["sequence"] for e in events] == [1, 2, 3, 4]
    assert events == appended
    assert verify(events).valid


def test_concurrent_writers_never_fork_the_chain(stack: LocalStack, unprovisioned: Org) -> None:
    log = log_of(stack)
    context = OrgContext.for_operator(unprovisioned.org_id)
    environment = stack.environment("organization")
    failures: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            for index in range(EVENTS_PER_WRITER):
                with function_environment(environment):
                    log.append(context, record(index, actor=f"key-{number}"))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    events = stored_events(stack, log, unprovisioned)
    assert failures == []
    assert [e["sequence"] for e in events] == list(range(1, WRITERS * EVENTS_PER_WRITER + 1))
    assert verify(events).valid


def test_each_org_has_its_own_chain(stack: LocalStack, unprovisioned: Org, second_unprovisioned: Org) -> None:
    log = log_of(stack)
    with function_environment(stack.environment("organization")):
        log.append(OrgContext.for_operator(unprovisioned.org_id), record())
        log.append(OrgContext.for_operator(second_unprovisioned.org_id), record())

    assert [e["sequence"] for e in stored_events(stack, log, unprovisioned)] == [1]
    assert [e["orgId"] for e in stored_events(stack, log, second_unprovisioned)] == [second_unprovisioned.org_id]


def three_events_and_the_second_ones_key(
    stack: LocalStack, unprovisioned: Org
) -> tuple[AuditLog, str, dict[str, dict[str, str]]]:
    """A chain of three events; the log, its table and the stored key of event 2 (to tamper with)."""
    log = log_of(stack)
    context = OrgContext.for_operator(unprovisioned.org_id)
    with function_environment(stack.environment("organization")):
        for index in range(3):
            log.append(context, record(index))
    table = stack.environment("organization")["AUDIT_TABLE"]
    return log, table, {name: {"S": value} for name, value in audit_event_key(context, 2).items()}


def test_an_event_edited_in_the_table_is_caught(stack: LocalStack, unprovisioned: Org) -> None:
    log, table, key = three_events_and_the_second_ones_key(stack, unprovisioned)
    boto3.client("dynamodb").update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET outcome = :outcome",
        ExpressionAttributeValues={":outcome": {"S": "denied"}},
    )

    result = verify(stored_events(stack, log, unprovisioned))

    assert not result.valid
    assert result.first_broken_event_id == stored_events(stack, log, unprovisioned)[1]["eventId"]


def test_a_deleted_event_is_caught(stack: LocalStack, unprovisioned: Org) -> None:
    log, table, key = three_events_and_the_second_ones_key(stack, unprovisioned)
    boto3.client("dynamodb").delete_item(TableName=table, Key=key)

    events = stored_events(stack, log, unprovisioned)

    assert verify(events).first_broken_event_id == events[1]["eventId"]


def test_events_expire_after_the_audit_retention(stack: LocalStack, unprovisioned: Org) -> None:
    log = log_of(stack)
    context = OrgContext.for_operator(unprovisioned.org_id)
    with function_environment(stack.environment("organization")):
        event = log.append(context, record())
    table = stack.environment("organization")["AUDIT_TABLE"]
    key = {name: {"S": value} for name, value in audit_event_key(context, 1).items()}
    item = boto3.client("dynamodb").get_item(TableName=table, Key=key)["Item"]

    kept_for = int(item["expiresAt"]["N"]) - datetime.fromisoformat(event["time"]).timestamp()
    assert abs(kept_for - DEFAULT_AUDIT_RETENTION_DAYS * 86_400) <= 1


# -- the API: list and verify ------------------------------------------------------------------


def append_events(stack: LocalStack, org: Org, records: list[AuditRecord]) -> list[dict[str, Any]]:
    """Events a second apart (so a time range can split them exactly), as the functions write them."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)  # after the org's creation
    moments = iter(start + timedelta(seconds=n) for n in range(len(records)))
    stack.function("organization").load()
    with function_environment(stack.environment("organization")):
        log = AuditLog(org_sessions(), stack.environment("organization")["AUDIT_TABLE"], clock=lambda: next(moments))
        return [log.append(OrgContext.for_operator(org.org_id), item) for item in records]


def test_the_api_lists_events_newest_first_in_pages(stack: LocalStack, org: Org) -> None:
    appended = append_events(stack, org, [record(index) for index in range(5)])

    first = stack.request("GET", "/v2/audit-events", key=org.admin_key, query={"limit": 3})
    second = stack.request(
        "GET",
        "/v2/audit-events",
        key=org.admin_key,
        query={"limit": 3, "continuationToken": first.json()["continuationToken"]},
    )

    assert first.status == 200, first.body
    assert [e["sequence"] for e in first.json()["items"]] == [6, 5, 4]
    assert first.json()["hasMore"] is True
    assert [e["sequence"] for e in second.json()["items"]] == [3, 2, 1]
    assert second.json()["items"][-2]["hash"] == appended[0]["hash"]
    assert second.json()["items"][-1]["action"] == "organization.create"


def test_the_api_filters_events(stack: LocalStack, org: Org) -> None:
    append_events(stack, org, [record(0, actor="key-a"), record(1, actor="key-b"), record(2, actor="key-a")])

    by_actor = stack.request("GET", "/v2/audit-events", key=org.admin_key, query={"actorKeyId": "key-a"})
    by_resource = stack.request("GET", "/v2/audit-events", key=org.admin_key, query={"resourceId": "site-1"})
    in_the_future = stack.request("GET", "/v2/audit-events", key=org.admin_key, query={"from": "2999-01-01T00:00:00"})

    assert [e["resourceId"] for e in by_actor.json()["items"]] == ["site-2", "site-0"]
    assert [e["actorKeyId"] for e in by_resource.json()["items"]] == ["key-b"]
    assert in_the_future.json()["items"] == []


def test_the_api_verifies_the_chain_and_names_a_tampered_event(stack: LocalStack, org: Org) -> None:
    appended = append_events(stack, org, [record(index) for index in range(4)])
    assert stack.request("GET", "/v2/audit-events/verify", key=org.admin_key).json() == {
        "valid": True,
        "checked": 5,
        "firstBrokenEventId": None,
    }
    context = OrgContext.for_operator(org.org_id)
    key = {name: {"S": value} for name, value in audit_event_key(context, 4).items()}
    boto3.client("dynamodb").update_item(
        TableName=stack.environment("organization")["AUDIT_TABLE"],
        Key=key,
        UpdateExpression="SET actorKeyId = :actor",
        ExpressionAttributeValues={":actor": {"S": "forged"}},
    )

    def verified(query: dict[str, str]) -> Any:
        return stack.request("GET", "/v2/audit-events/verify", key=org.admin_key, query=query).json()

    assert verified({}) == {"valid": False, "checked": 4, "firstBrokenEventId": appended[2]["eventId"]}
    assert verified({"from": appended[2]["time"]})["firstBrokenEventId"] == appended[2]["eventId"]
    assert verified({"from": appended[3]["time"]}) == {"valid": True, "checked": 1, "firstBrokenEventId": None}


def test_another_orgs_events_are_never_listed(stack: LocalStack, org: Org, other_org: Org) -> None:
    append_events(stack, org, [record()])

    listed = stack.request("GET", "/v2/audit-events", key=other_org.admin_key)

    assert [event["action"] for event in listed.json()["items"]] == ["organization.create"]
    assert org.org_id not in listed.body.decode("utf-8")


def test_a_range_ending_before_it_starts_is_a_400(stack: LocalStack, org: Org) -> None:
    response = stack.request(
        "GET",
        "/v2/audit-events",
        key=org.admin_key,
        query={"from": "2026-11-27T00:00:00Z", "to": "2026-11-26T00:00:00Z"},
    )

    assert response.status == 400


# -- the operator CLI ---------------------------------------------------------------------------


def run_verify(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], org: Org
) -> tuple[int, Any]:
    """``spectra audit verify ORG --stack …`` against this stack (its settings, moto's session)."""
    settings = provisioning_settings(stack)
    monkeypatch.setattr(cli, "_settings_and_session", lambda _args: (settings, boto3.Session(region_name=stack.region)))
    code = cli.main(["audit", "verify", org.org_id, "--stack", "spectra-test", "--region", stack.region])
    return code, json.loads(capsys.readouterr().out)


def test_cli_verify_reports_an_intact_chain(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    append_events(stack, org, [record(index) for index in range(3)])

    code, printed = run_verify(stack, monkeypatch, capsys, org)

    assert (code, printed) == (0, {"orgId": org.org_id, "valid": True, "checked": 4, "firstBrokenEventId": None})


def test_cli_verify_exits_4_naming_the_first_broken_event(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    appended = append_events(stack, org, [record(index) for index in range(3)])
    key = {name: {"S": value} for name, value in audit_event_key(OrgContext.for_operator(org.org_id), 3).items()}
    boto3.client("dynamodb").delete_item(TableName=stack.environment("organization")["AUDIT_TABLE"], Key=key)

    code, printed = run_verify(stack, monkeypatch, capsys, org)

    assert code == 4
    assert printed["firstBrokenEventId"] == appended[2]["eventId"]


def test_a_shorter_retention_never_expires_an_event_before_the_one_it_follows(
    stack: LocalStack, unprovisioned: Org
) -> None:
    """Expiry stays monotonic along the chain, so TTL only ever removes a leading run and a
    shortened retention cannot leave holes that verify would call tampering."""
    stack.function("organization").load()
    table = stack.environment("organization")["AUDIT_TABLE"]
    context = OrgContext.for_operator(unprovisioned.org_id)
    with function_environment(stack.environment("organization")):
        long_kept = AuditLog(org_sessions(), table, retention_days=400).append(context, record(0))
        short_kept = AuditLog(org_sessions(), table, retention_days=30).append(context, record(1))

    assert short_kept["expiresAt"] == long_kept["expiresAt"]
    assert short_kept["previousExpiresAt"] == long_kept["expiresAt"]
