"""Each org's usage identifier: an API Gateway key in exactly its plan's usage plan, kept in line
with the org by the paced worker, never by provisioning itself."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.session
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from mypy_boto3_apigateway import APIGatewayClient

from spectra.deployment import api_key_repository, organization_repository
from spectra.ratelimits.identifiers import identifier_name
from spectra.ratelimits.plans import PLANS
from spectra.services.org_facts import OrgFacts
from spectra.tenancy.context import OrgContext
from spectra.tenancy.keys import org_profile_key
from spectra_local.functions import LocalFunction, function_environment
from spectra_local.plan_tables import usage_plan_logical_id
from spectra_local.stack import LocalStack
from tests.integration.factories import (
    ORGANIZATION_PATH,
    Org,
    authorize,
    expire_authorizer_caches,
    make_org,
    records_table,
    stored_key_record,
    usage_identifier_value,
)

# What the worker may call when an org's identifier already matches it: reads only.
READ_OPERATIONS = frozenset({"GetApiKey", "GetApiKeys", "GetUsagePlans"})
LEFT_BEHIND_VALUE = "LeftByAnInterruptedRun0123456789abcdefgh"


def apigateway() -> APIGatewayClient:
    return boto3.client("apigateway")


def plan_id(stack: LocalStack, plan: str) -> str:
    """The (moto) id of the template's usage plan for ``plan``."""
    return str(stack.resolver.refs[usage_plan_logical_id(PLANS[plan])])


def org_keys(org_id: str) -> list[dict[str, Any]]:
    """Every API key named as the org's identifier, with its value."""
    items = apigateway().get_api_keys(includeValues=True, limit=500)["items"]
    return [dict(item) for item in items if item.get("name") == identifier_name(org_id)]


def only_key(org_id: str) -> dict[str, Any]:
    keys = org_keys(org_id)
    assert len(keys) == 1, keys
    return keys[0]


def usage_plans_of(key_id: str) -> set[str]:
    return {str(plan["id"]) for plan in apigateway().get_usage_plans(keyId=key_id)["items"]}


def invoke_provisioning(stack: LocalStack, command: dict[str, Any]) -> dict[str, Any]:
    """An operator command through the provisioning function, with nothing delivered after it."""
    result = stack.function("provisioning").invoke({"command": command})
    assert "error" not in result, result
    return dict(result)


def create_pending_org(stack: LocalStack, name: str = "Pending Telemetry") -> Org:
    """A new org whose usage identifier request still waits on the queue."""
    created = invoke_provisioning(stack, {"action": "create_org", "name": name})
    return Org(
        org_id=created["orgId"], name=created["name"], admin_key=created["adminKey"], admin_key_id=created["adminKeyId"]
    )


def describe(stack: LocalStack, org_id: str) -> dict[str, Any]:
    return invoke_provisioning(stack, {"action": "describe_org", "orgId": org_id})


def stored_profile(stack: LocalStack, org_id: str) -> dict[str, Any]:
    key = {name: {"S": value} for name, value in org_profile_key(OrgContext.for_operator(org_id)).items()}
    item = boto3.client("dynamodb").get_item(TableName=records_table(stack), Key=key)["Item"]
    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in item.items()}


def set_stored_plan(stack: LocalStack, org_id: str, plan: str) -> None:
    """Record surgery: a profile naming a plan the worker has no usage plan for."""
    key = {name: {"S": value} for name, value in org_profile_key(OrgContext.for_operator(org_id)).items()}
    boto3.client("dynamodb").update_item(
        TableName=records_table(stack),
        Key=key,
        UpdateExpression="SET #plan = :plan",
        ExpressionAttributeNames={"#plan": "plan"},
        ExpressionAttributeValues={":plan": {"S": plan}},
    )


def queue_url(stack: LocalStack) -> str:
    return stack.environment("provisioning")["USAGE_IDENTIFIER_QUEUE_URL"]


def take_queued_messages(stack: LocalStack) -> list[dict[str, Any]]:
    """Receive what the usage identifier queue holds now (the messages then wait out their
    visibility timeout, so nothing delivers them twice)."""
    sqs: Any = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url(stack), MaxNumberOfMessages=10).get("Messages", []):
        messages.extend(batch)
    return messages


def queue_counts(stack: LocalStack) -> tuple[int, int]:
    """(visible, in flight) messages of the usage identifier queue."""
    sqs: Any = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url(stack),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def sqs_event(stack: LocalStack, messages: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The SQS event Lambda's poller sends for ``(messageId, body)`` pairs."""
    arn = stack.resolver.attributes[("UsageIdentifierQueue", "Arn")]
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"handle-{message_id}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": stack.region,
            }
            for message_id, body in messages
        ]
    }


def org_message(org_id: str) -> tuple[str, str]:
    return str(uuid.uuid4()), json.dumps({"orgId": org_id})


def worker(stack: LocalStack) -> LocalFunction:
    return stack.function("usage_identifiers")


def worker_client(stack: LocalStack) -> Any:
    """The worker container's API Gateway client."""
    return worker(stack).load().apigateway


@contextmanager
def api_gateway_operations(client: Any) -> Iterator[list[str]]:
    """The name of every API Gateway operation ``client`` calls in the block."""
    operations: list[str] = []

    def record(model: Any, **_: Any) -> None:
        operations.append(str(model.name))

    client.meta.events.register("before-call.apigateway", record)
    try:
        yield operations
    finally:
        client.meta.events.unregister("before-call.apigateway", record)


@pytest.fixture
def any_api_gateway_call(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every API Gateway operation any client made from now on calls (each new botocore client
    gets the hook, so clients the functions make inside their own sessions are watched too)."""
    operations: list[str] = []
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call.apigateway", lambda model, **_: operations.append(str(model.name)))
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    return operations


def failing_create_api_key(org_id: str) -> Callable[..., None]:
    """A hook that makes API Gateway refuse to create ``org_id``'s key (other orgs' work)."""

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if params.get("name") == identifier_name(org_id):
            error = {"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}
            raise ClientError(error, "CreateApiKey")  # type: ignore[arg-type]

    return refuse


# -- a new org --------------------------------------------------------------------------------


def test_a_new_org_gets_an_enabled_key_in_exactly_the_standard_usage_plan(stack: LocalStack, org: Org) -> None:
    key = only_key(org.org_id)

    assert key["enabled"] is True
    assert usage_plans_of(key["id"]) == {plan_id(stack, "standard")}
    assert key["tags"] == {"org": org.org_id}


def test_the_authorizer_hands_back_the_value_of_the_orgs_key(stack: LocalStack, org: Org) -> None:
    """API Gateway finds the org's usage plan through this value, so it must be the key's."""
    key = only_key(org.org_id)

    assert authorize(stack, org.admin_key)["usageIdentifierKey"] == key["value"] == usage_identifier_value(org.org_id)


def test_an_org_created_on_another_plan_starts_in_that_plan(stack: LocalStack) -> None:
    created = stack.create_org("Big Fleet", plan="enterprise")

    assert usage_plans_of(only_key(created["orgId"])["id"]) == {plan_id(stack, "enterprise")}


def test_the_profile_records_the_key_and_says_the_identifier_is_attached(stack: LocalStack, org: Org) -> None:
    key = only_key(org.org_id)
    profile = stored_profile(stack, org.org_id)

    assert (profile["usageApiKeyId"], profile["usageIdentifierKey"]) == (key["id"], key["value"])
    assert describe(stack, org.org_id)["usageIdentifier"] == "attached"


# -- lifecycle --------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", ["professional", "enterprise"])
def test_set_plan_moves_the_same_key_to_exactly_the_new_plan_and_back(stack: LocalStack, org: Org, plan: str) -> None:
    before = only_key(org.org_id)

    stack.provision({"action": "set_plan", "orgId": org.org_id, "plan": plan})
    moved = only_key(org.org_id)
    assert usage_plans_of(moved["id"]) == {plan_id(stack, plan)}

    stack.provision({"action": "set_plan", "orgId": org.org_id, "plan": "standard"})
    back = only_key(org.org_id)
    assert usage_plans_of(back["id"]) == {plan_id(stack, "standard")}
    assert (moved["id"], moved["value"]) == (back["id"], back["value"]) == (before["id"], before["value"])


def test_suspending_disables_the_key_and_resuming_enables_it(stack: LocalStack, org: Org) -> None:
    stack.provision({"action": "suspend_org", "orgId": org.org_id})
    suspended = only_key(org.org_id)

    stack.provision({"action": "resume_org", "orgId": org.org_id})
    resumed = only_key(org.org_id)

    assert (suspended["enabled"], resumed["enabled"]) == (False, True)
    assert suspended["id"] == resumed["id"]
    assert usage_plans_of(resumed["id"]) == {plan_id(stack, "standard")}


def test_a_suspended_org_moved_to_another_plan_stays_disabled(stack: LocalStack, org: Org) -> None:
    stack.provision({"action": "suspend_org", "orgId": org.org_id})

    stack.provision({"action": "set_plan", "orgId": org.org_id, "plan": "professional"})

    key = only_key(org.org_id)
    assert key["enabled"] is False
    assert usage_plans_of(key["id"]) == {plan_id(stack, "professional")}


def test_deleting_the_org_deletes_its_key_and_clears_the_profile_fields(stack: LocalStack, org: Org) -> None:
    stack.provision({"action": "delete_org", "orgId": org.org_id, "confirm": org.org_id})

    assert org_keys(org.org_id) == []
    profile = stored_profile(stack, org.org_id)
    assert "usageApiKeyId" not in profile
    assert "usageIdentifierKey" not in profile
    assert stored_key_record(stack, org.org_id, org.admin_key_id).get("usageIdentifierKey") is None
    assert describe(stack, org.org_id)["usageIdentifier"] == "pending"


# -- repairs ----------------------------------------------------------------------------------


def test_a_key_left_by_an_interrupted_run_is_adopted_not_duplicated(stack: LocalStack) -> None:
    org_id = create_pending_org(stack).org_id
    left = apigateway().create_api_key(
        name=identifier_name(org_id), enabled=True, value=LEFT_BEHIND_VALUE, tags={"org": org_id}
    )

    stack.deliver_queued()

    key = only_key(org_id)
    assert (key["id"], key["value"]) == (left["id"], LEFT_BEHIND_VALUE)
    assert usage_plans_of(key["id"]) == {plan_id(stack, "standard")}
    profile = stored_profile(stack, org_id)
    assert (profile["usageApiKeyId"], profile["usageIdentifierKey"]) == (left["id"], LEFT_BEHIND_VALUE)


def test_only_a_key_named_exactly_for_the_org_is_adopted(stack: LocalStack) -> None:
    """API Gateway's name query matches prefixes: a longer name belongs to someone else."""
    org_id = create_pending_org(stack).org_id
    decoy = apigateway().create_api_key(
        name=f"{identifier_name(org_id)}-old", enabled=True, value=LEFT_BEHIND_VALUE, tags={"org": org_id}
    )

    stack.deliver_queued()

    key = only_key(org_id)
    assert key["id"] != decoy["id"]
    assert key["value"] != LEFT_BEHIND_VALUE
    assert usage_plans_of(decoy["id"]) == set()


def test_a_key_deleted_by_hand_is_recreated_with_the_same_value_so_api_keys_keep_working(
    stack: LocalStack, org: Org
) -> None:
    before = only_key(org.org_id)
    apigateway().delete_api_key(apiKey=before["id"])
    assert stack.request("GET", ORGANIZATION_PATH, key=org.admin_key).status == 403

    assert stack.reattach_usage_identifiers() == 1

    after = only_key(org.org_id)
    assert after["id"] != before["id"]
    assert (after["value"], after["enabled"]) == (before["value"], True)
    assert usage_plans_of(after["id"]) == {plan_id(stack, "standard")}
    assert stored_profile(stack, org.org_id)["usageApiKeyId"] == after["id"]
    # The key records still carry the old value: no authorizer cache needs to expire.
    assert stack.request("GET", ORGANIZATION_PATH, key=org.admin_key).status == 200


def test_a_key_an_interrupted_run_left_is_deleted_with_the_org(stack: LocalStack) -> None:
    org_id = create_pending_org(stack).org_id
    apigateway().create_api_key(name=identifier_name(org_id), enabled=True, value=LEFT_BEHIND_VALUE)
    invoke_provisioning(stack, {"action": "delete_org", "orgId": org_id, "confirm": org_id})

    stack.deliver_queued()

    assert org_keys(org_id) == []


def test_redelivering_the_same_message_changes_nothing(stack: LocalStack) -> None:
    org_id = create_pending_org(stack).org_id
    (message,) = take_queued_messages(stack)
    assert json.loads(message["Body"]) == {"orgId": org_id}
    event = sqs_event(stack, [(message["MessageId"], message["Body"])])
    assert worker(stack).invoke(event) == {"batchItemFailures": []}
    key, profile = only_key(org_id), stored_profile(stack, org_id)

    with api_gateway_operations(worker_client(stack)) as operations:
        assert worker(stack).invoke(event) == {"batchItemFailures": []}

    assert operations, "the redelivery did not even look at the key"
    assert set(operations) <= READ_OPERATIONS, operations
    assert only_key(org_id) == key
    assert stored_profile(stack, org_id) == profile


# -- provisioning only queues -----------------------------------------------------------------


def test_provisioning_makes_no_api_gateway_call_and_leaves_the_org_pending(
    stack: LocalStack, any_api_gateway_call: list[str]
) -> None:
    org = create_pending_org(stack)

    assert describe(stack, org.org_id)["usageIdentifier"] == "pending"
    assert stored_key_record(stack, org.org_id, org.admin_key_id).get("usageIdentifierKey") is None
    assert any_api_gateway_call == []
    assert [json.loads(m["Body"]) for m in take_queued_messages(stack)] == [{"orgId": org.org_id}]


def test_the_hook_sees_the_workers_calls_once_the_queue_is_delivered(
    stack: LocalStack, any_api_gateway_call: list[str]
) -> None:
    """The control for the test above: the same hook does see API Gateway calls."""
    org_id = create_pending_org(stack).org_id

    assert stack.deliver_queued() == 1

    assert "CreateApiKey" in any_api_gateway_call
    assert describe(stack, org_id)["usageIdentifier"] == "attached"


@pytest.mark.parametrize(
    "command",
    [
        {"action": "set_plan", "plan": "professional"},
        {"action": "suspend_org"},
        {"action": "resume_org"},
        {"action": "delete_org"},
    ],
    ids=lambda command: str(command["action"]),
)
def test_each_lifecycle_command_only_queues_the_org(
    stack: LocalStack, org: Org, any_api_gateway_call: list[str], command: dict[str, Any]
) -> None:
    confirm = {"confirm": org.org_id} if command["action"] == "delete_org" else {}

    invoke_provisioning(stack, {**command, "orgId": org.org_id, **confirm})

    assert any_api_gateway_call == []
    assert [json.loads(m["Body"]) for m in take_queued_messages(stack)] == [{"orgId": org.org_id}]


def test_set_limits_leaves_the_identifier_alone(stack: LocalStack, org: Org) -> None:
    """Overrides live below the plan's edge, so the key stays where it is and nothing is queued."""
    limits = {"standard": {"ratePerMinute": 30, "burst": 50}}

    invoke_provisioning(stack, {"action": "set_limits", "orgId": org.org_id, "limits": limits})

    assert queue_counts(stack) == (0, 0)


# -- failures ---------------------------------------------------------------------------------


def test_an_org_whose_plan_has_no_usage_plan_is_reported_as_a_batch_item_failure(stack: LocalStack) -> None:
    healthy, broken = create_pending_org(stack, "Healthy").org_id, create_pending_org(stack, "Broken").org_id
    set_stored_plan(stack, broken, "retired-plan")
    healthy_message, broken_message = org_message(healthy), org_message(broken)

    response = worker(stack).invoke(sqs_event(stack, [healthy_message, broken_message]))

    assert response == {"batchItemFailures": [{"itemIdentifier": broken_message[0]}]}
    assert usage_plans_of(only_key(healthy)["id"]) == {plan_id(stack, "standard")}


def test_an_api_gateway_failure_is_reported_as_a_batch_item_failure(stack: LocalStack) -> None:
    healthy, refused = create_pending_org(stack, "Healthy").org_id, create_pending_org(stack, "Refused").org_id
    worker_client(stack).meta.events.register(
        "provide-client-params.apigateway.CreateApiKey", failing_create_api_key(refused)
    )
    healthy_message, refused_message = org_message(healthy), org_message(refused)

    response = worker(stack).invoke(sqs_event(stack, [healthy_message, refused_message]))

    assert response == {"batchItemFailures": [{"itemIdentifier": refused_message[0]}]}
    assert org_keys(refused) == []
    assert describe(stack, refused)["usageIdentifier"] == "pending"
    assert only_key(healthy)["enabled"] is True


def test_after_a_failure_the_rest_of_a_fifo_batch_is_returned_unprocessed(stack: LocalStack) -> None:
    """The queue is FIFO: what follows a failed message waits for it, so one org's changes are
    never applied out of order."""
    first, refused, later = (create_pending_org(stack, name).org_id for name in ("First", "Refused", "Later"))
    worker_client(stack).meta.events.register(
        "provide-client-params.apigateway.CreateApiKey", failing_create_api_key(refused)
    )
    messages = [org_message(first), org_message(refused), org_message(later)]

    response = worker(stack).invoke(sqs_event(stack, messages))

    assert response == {"batchItemFailures": [{"itemIdentifier": message[0]} for message in messages[1:]]}
    assert describe(stack, first)["usageIdentifier"] == "attached"
    assert describe(stack, later)["usageIdentifier"] == "pending"


def test_a_failed_message_stays_on_the_queue_for_a_retry(stack: LocalStack) -> None:
    org_id = create_pending_org(stack).org_id
    worker_client(stack).meta.events.register(
        "provide-client-params.apigateway.CreateApiKey", failing_create_api_key(org_id)
    )

    assert stack.deliver_queued() == 0

    assert queue_counts(stack) == (0, 1)
    assert describe(stack, org_id)["usageIdentifier"] == "pending"


# -- hardening: stale copies, half-done moves --------------------------------------------------


def test_a_stale_copy_of_the_org_facts_never_revives_a_suspended_org(stack: LocalStack) -> None:
    """A worker that read the profile before a suspension and copies it afterwards must not put
    ``Active`` back on the keys: copies only ever replace older ones."""
    org = make_org(stack, "Suspended Meanwhile")
    context = OrgContext.for_operator(org.org_id)
    with function_environment(stack.environment("provisioning")):
        facts = OrgFacts(organization_repository(), api_key_repository())
        stale = organization_repository().get(context)
    assert stale is not None
    stack.provision({"action": "suspend_org", "orgId": org.org_id})

    with function_environment(stack.environment("provisioning")):
        facts.copy_to_keys(context, stale)

    expire_authorizer_caches(stack)
    assert stack.request("GET", "/v2/organization", key=org.admin_key).status == 401


def test_an_identifier_is_recorded_only_once_it_is_in_its_usage_plan(stack: LocalStack) -> None:
    org_id = create_pending_org(stack).org_id
    standard = plan_id(stack, "standard")

    def refuse_the_plan(params: dict[str, Any], **_: Any) -> None:
        if params.get("usagePlanId") == standard:
            raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, "X")

    worker_client(stack).meta.events.register("provide-client-params.apigateway.CreateUsagePlanKey", refuse_the_plan)
    with pytest.raises(BatchProcessingError):  # the whole batch failed: Lambda retries it
        worker(stack).invoke(sqs_event(stack, [org_message(org_id)]))
    worker_client(stack).meta.events.unregister("provide-client-params.apigateway.CreateUsagePlanKey", refuse_the_plan)

    assert describe(stack, org_id)["usageIdentifier"] == "pending"
    assert worker(stack).invoke(sqs_event(stack, [org_message(org_id)])) == {"batchItemFailures": []}
    assert describe(stack, org_id)["usageIdentifier"] == "attached"
    assert usage_plans_of(only_key(org_id)["id"]) == {standard}


def test_a_move_that_cannot_join_the_new_plan_leaves_the_key_in_the_old_one(stack: LocalStack) -> None:
    org = make_org(stack, "Stays Put")
    standard, professional = plan_id(stack, "standard"), plan_id(stack, "professional")

    def refuse_professional(params: dict[str, Any], **_: Any) -> None:
        if params.get("usagePlanId") == professional:
            raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, "X")

    worker_client(stack).meta.events.register(
        "provide-client-params.apigateway.CreateUsagePlanKey", refuse_professional
    )
    stack.provision({"action": "set_plan", "orgId": org.org_id, "plan": "professional"})

    assert usage_plans_of(only_key(org.org_id)["id"]) == {standard}
    expire_authorizer_caches(stack)
    assert stack.request("GET", "/v2/organization", key=org.admin_key).status == 200
