"""The audit table under moto: appends form one chain per org, even from concurrent writers,
and tampering with stored items is caught by verification."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import boto3

from spectra.audit.chain import AuditRecord, verify
from spectra.audit.store import DEFAULT_AUDIT_RETENTION_DAYS, AuditLog
from spectra.deployment import audit_log
from spectra.tenancy.context import OrgContext
from spectra.tenancy.keys import audit_event_key
from spectra_local.functions import function_environment
from spectra_local.stack import LocalStack
from tests.integration.factories import Org

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


def test_appends_form_a_chain_that_verifies(stack: LocalStack, org: Org) -> None:
    log = log_of(stack)
    context = OrgContext.for_operator(org.org_id)
    with function_environment(stack.environment("organization")):
        appended = [log.append(context, record(index)) for index in range(4)]

    events = stored_events(stack, log, org)

    assert [e["sequence"] for e in events] == [1, 2, 3, 4]
    assert events == appended
    assert verify(events).valid


def test_concurrent_writers_never_fork_the_chain(stack: LocalStack, org: Org) -> None:
    log = log_of(stack)
    context = OrgContext.for_operator(org.org_id)
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

    events = stored_events(stack, log, org)
    assert failures == []
    assert [e["sequence"] for e in events] == list(range(1, WRITERS * EVENTS_PER_WRITER + 1))
    assert verify(events).valid


def test_each_org_has_its_own_chain(stack: LocalStack, org: Org, other_org: Org) -> None:
    log = log_of(stack)
    with function_environment(stack.environment("organization")):
        log.append(OrgContext.for_operator(org.org_id), record())
        log.append(OrgContext.for_operator(other_org.org_id), record())

    assert [e["sequence"] for e in stored_events(stack, log, org)] == [1]
    assert [e["orgId"] for e in stored_events(stack, log, other_org)] == [other_org.org_id]


def test_an_event_edited_in_the_table_is_caught(stack: LocalStack, org: Org) -> None:
    log = log_of(stack)
    context = OrgContext.for_operator(org.org_id)
    with function_environment(stack.environment("organization")):
        for index in range(3):
            log.append(context, record(index))
    table = stack.environment("organization")["AUDIT_TABLE"]
    key = {name: {"S": value} for name, value in audit_event_key(context, 2).items()}
    boto3.client("dynamodb").update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET outcome = :outcome",
        ExpressionAttributeValues={":outcome": {"S": "denied"}},
    )

    result = verify(stored_events(stack, log, org))

    assert not result.valid
    assert result.first_broken_event_id == stored_events(stack, log, org)[1]["eventId"]


def test_a_deleted_event_is_caught(stack: LocalStack, org: Org) -> None:
    log = log_of(stack)
    context = OrgContext.for_operator(org.org_id)
    with function_environment(stack.environment("organization")):
        for index in range(3):
            log.append(context, record(index))
    table = stack.environment("organization")["AUDIT_TABLE"]
    key = {name: {"S": value} for name, value in audit_event_key(context, 2).items()}
    boto3.client("dynamodb").delete_item(TableName=table, Key=key)

    events = stored_events(stack, log, org)

    assert verify(events).first_broken_event_id == events[1]["eventId"]


def test_events_expire_after_the_audit_retention(stack: LocalStack, org: Org) -> None:
    log = log_of(stack)
    context = OrgContext.for_operator(org.org_id)
    with function_environment(stack.environment("organization")):
        event = log.append(context, record())
    table = stack.environment("organization")["AUDIT_TABLE"]
    key = {name: {"S": value} for name, value in audit_event_key(context, 1).items()}
    item = boto3.client("dynamodb").get_item(TableName=table, Key=key)["Item"]

    kept_for = int(item["expiresAt"]["N"]) - datetime.fromisoformat(event["time"]).timestamp()
    assert abs(kept_for - DEFAULT_AUDIT_RETENTION_DAYS * 86_400) <= 1
