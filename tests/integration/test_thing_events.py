"""ThingDeleted: recorded with the delete in the org's outbox, sent to SQS, then cleared."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from spectra_local.stack import LocalStack
from tests.integration.factories import Org
from tests.security.routes import make_thing


def _outbox(stack: LocalStack, org: Org) -> list[dict[str, Any]]:
    table = stack.environment("things")["RECORDS_TABLE"]
    response = boto3.client("dynamodb", region_name="us-east-1").query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ORG#{org.org_id}#OUTBOX#"}},
    )
    return list(response["Items"])


def _messages(stack: LocalStack) -> list[dict[str, Any]]:
    url = stack.environment("things")["THING_EVENTS_QUEUE_URL"]
    received = boto3.client("sqs", region_name="us-east-1").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in received.get("Messages", [])]


def test_deleting_a_thing_publishes_one_thing_deleted_and_clears_the_outbox(stack: LocalStack, org: Org) -> None:
    thing_id = make_thing(stack, org)

    assert stack.request("DELETE", f"/v2/things/{thing_id}", key=org.admin_key).status == 204

    assert _messages(stack) == [{"type": "ThingDeleted", "orgId": org.org_id, "thingId": thing_id}]
    assert _outbox(stack, org) == []


def test_a_failed_send_leaves_the_event_in_the_outbox(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    thing_id = make_thing(stack, org)
    events = stack.function("things").load().things._events

    def refuse(**_kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")

    monkeypatch.setattr(events._sqs, "send_message", refuse)
    assert stack.request("DELETE", f"/v2/things/{thing_id}", key=org.admin_key).status == 204

    assert stack.request("GET", f"/v2/things/{thing_id}", key=org.admin_key).status == 404
    [entry] = _outbox(stack, org)
    assert entry["thingId"]["S"] == thing_id
    assert entry["orgId"]["S"] == org.org_id
