"""The edge as deployed: the template's usage plans are the layer's plans, every place that names
them names all of them, and only the paced worker may touch API Gateway's keys and plans.

``spectra.ratelimits.plans`` is the one definition; these tests read ``template.yaml`` and the
README as data, so a plan added or changed without ``make plans`` fails here, not in production.
"""

from __future__ import annotations

import json
import re
import shutil
from decimal import Decimal
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from spectra.ratelimits.plans import PLANS, Plan, Tier
from spectra_local import plan_tables
from spectra_local.template import REPO_ROOT, IntrinsicResolver, Template
from tests.security.test_iam_policies import Statement, covers, statements

TEMPLATE = Template()
USAGE_PLANS = TEMPLATE.of_type("AWS::ApiGateway::UsagePlan")
FUNCTIONS = TEMPLATE.functions()
WORKER = TEMPLATE.function_by_folder("usage_identifiers")
PROVISIONING = TEMPLATE.function_by_folder("provisioning")
README = REPO_ROOT / "README.md"


def logical_id(plan: Plan) -> str:
    """``<Name>UsagePlan``: how the template names each plan's usage plan."""
    return f"{plan.name.capitalize()}UsagePlan"


def plan_ids_document() -> dict[str, str]:
    """What a ``USAGE_PLAN_IDS`` value must say (before CloudFormation substitutes the ids)."""
    return {plan.name: f"${{{logical_id(plan)}}}" for plan in PLANS.values()}


def sub_text(value: Any) -> str:
    assert isinstance(value, dict), value
    assert set(value) == {"Fn::Sub"}, value
    text = value["Fn::Sub"]
    assert isinstance(text, str), value
    return text


# -- the usage plans --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PLANS))
def test_each_plan_has_a_usage_plan_with_its_edge_limits(name: str) -> None:
    plan = PLANS[name]
    properties = USAGE_PLANS[logical_id(plan)]["Properties"]

    throttle, quota = properties["Throttle"], properties["Quota"]
    assert Decimal(str(throttle["RateLimit"])) == Decimal(str(plan.edge.rate_per_second))
    assert throttle["BurstLimit"] == plan.edge.burst
    assert (quota["Limit"], quota["Period"]) == (plan.edge.daily_quota, "DAY")


@pytest.mark.parametrize("name", list(PLANS))
def test_each_usage_plan_applies_to_the_apis_stage_under_its_own_name(name: str) -> None:
    properties = USAGE_PLANS[logical_id(PLANS[name])]["Properties"]

    assert properties["ApiStages"] == [{"ApiId": {"Ref": "SpectraApi"}, "Stage": {"Ref": "SpectraApi.Stage"}}]
    assert sub_text(properties["UsagePlanName"]) == f"spectra-${{Stage}}-{name}"


def test_there_is_no_usage_plan_but_the_plans() -> None:
    assert sorted(USAGE_PLANS) == sorted(logical_id(plan) for plan in PLANS.values())


def test_the_generator_names_usage_plans_as_the_template_does() -> None:
    assert [plan_tables.usage_plan_logical_id(plan) for plan in PLANS.values()] == [
        logical_id(plan) for plan in PLANS.values()
    ]


def test_each_edge_lets_every_tier_reach_its_own_limit() -> None:
    """The edge is a backstop: it must never refuse what the exact buckets still allow."""
    for plan in PLANS.values():
        throttle = USAGE_PLANS[logical_id(plan)]["Properties"]["Throttle"]
        assert float(throttle["RateLimit"]) * 60 >= sum(plan.limit(t).rate_per_minute for t in Tier) - 1e-6
        assert throttle["BurstLimit"] >= sum(plan.limit(t).burst for t in Tier)


# -- generated parts --------------------------------------------------------------------------


def test_the_generated_parts_of_the_template_and_readme_have_not_drifted(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_tables.main(["--check"]) == 0, capsys.readouterr().err


@pytest.fixture
def copied_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The generator pointed at a copy of the template and README (the real ones stay as they are)."""
    for name in ("template.yaml", "README.md"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    original = plan_tables.rendered_files
    monkeypatch.setattr(plan_tables, "rendered_files", lambda: original(tmp_path))
    return tmp_path


def test_the_check_fails_on_a_drifted_usage_plan_and_only_make_plans_repairs_it(
    copied_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = copied_repo / "template.yaml"
    standard = PLANS["standard"].edge
    drifted = template.read_text(encoding="utf-8").replace(
        f"BurstLimit: {standard.burst}\n", f"BurstLimit: {standard.burst + 1}\n", 1
    )
    template.write_text(drifted, encoding="utf-8")

    assert plan_tables.main(["--check"]) == 1
    assert "template.yaml" in capsys.readouterr().err
    assert template.read_text(encoding="utf-8") == drifted

    assert plan_tables.main([]) == 0
    assert plan_tables.main(["--check"]) == 0
    assert template.read_text(encoding="utf-8") == (REPO_ROOT / "template.yaml").read_text(encoding="utf-8")


def readme_plan_rows() -> dict[str, list[str]]:
    """The README table's cells by plan name."""
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- BEGIN plans -->\n", 1)[1].split("<!-- END plans -->", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in table.strip().splitlines()[2:]]
    return {cells[0].strip().strip("`"): [cell.strip() for cell in cells[1:]] for cells in rows}


def test_the_readme_table_has_exactly_one_row_per_plan() -> None:
    assert list(readme_plan_rows()) == list(PLANS)


@pytest.mark.parametrize("name", list(PLANS))
def test_the_readme_row_of_each_plan_states_its_limits(name: str) -> None:
    plan = PLANS[name]
    cells = readme_plan_rows()[name]

    tiers = [f"{plan.limit(t).rate_per_minute:,}/min, burst {plan.limit(t).burst:,}" for t in Tier]
    edge_rate = plan.edge.rate_per_second
    rate = str(int(edge_rate)) if float(edge_rate).is_integer() else str(edge_rate)
    assert cells == [*tiers, f"{rate}/s, burst {plan.edge.burst:,}, {plan.edge.daily_quota:,}/day"]


# -- every place that names the usage plans ---------------------------------------------------


def test_the_worker_is_told_every_plans_usage_plan() -> None:
    assert json.loads(sub_text(WORKER.environment["USAGE_PLAN_IDS"])) == plan_ids_document()


@pytest.mark.parametrize(
    "function", sorted(lid for lid, spec in FUNCTIONS.items() if "USAGE_PLAN_IDS" in spec.environment)
)
def test_every_usage_plan_ids_variable_names_every_plan(function: str) -> None:
    assert json.loads(sub_text(FUNCTIONS[function].environment["USAGE_PLAN_IDS"])) == plan_ids_document()


def test_the_usage_plan_ids_output_names_every_plan() -> None:
    output = TEMPLATE.document["Outputs"]["UsagePlanIds"]

    assert json.loads(sub_text(output["Value"])) == plan_ids_document()


def test_the_usage_plan_ids_resolve_to_the_deployed_ids() -> None:
    ids = {logical_id(plan): f"plan-{plan.name}" for plan in PLANS.values()}

    resolved = IntrinsicResolver(refs=dict(ids)).resolve(WORKER.environment["USAGE_PLAN_IDS"])

    assert json.loads(resolved) == {plan.name: f"plan-{plan.name}" for plan in PLANS.values()}


# -- the worker and its queue -----------------------------------------------------------------


def test_the_paced_workers_together_stay_below_the_accounts_quota() -> None:
    """At most as many workers as the event source's maximum concurrency (reserved to match, so
    no delivery is throttled into a retry), each paced: CreateApiKey allows 5 calls a second."""
    (event,) = WORKER.properties["Events"].values()
    workers = event["Properties"]["ScalingConfig"]["MaximumConcurrency"]

    assert WORKER.properties["ReservedConcurrentExecutions"] == workers
    assert 0 < workers * float(WORKER.environment["CONTROL_PLANE_CALLS_PER_SECOND"]) <= 5


def test_the_queue_is_fifo_so_one_orgs_changes_are_reconciled_in_order_one_at_a_time() -> None:
    queue = TEMPLATE.resources["UsageIdentifierQueue"]["Properties"]

    assert queue["FifoQueue"] is True
    assert queue["VisibilityTimeout"] >= 6 * WORKER.properties["Timeout"]


def test_the_worker_reads_its_queue_and_reports_failed_messages_one_by_one() -> None:
    (event,) = WORKER.properties["Events"].values()

    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["UsageIdentifierQueue", "Arn"]}
    assert "ReportBatchItemFailures" in event["Properties"]["FunctionResponseTypes"]
    assert 1 <= event["Properties"].get("BatchSize", 10) <= 10


def test_the_queue_hides_a_message_for_longer_than_the_worker_may_run() -> None:
    """Lambda advises six times the timeout, so a slow batch is never handed out twice."""
    queue = TEMPLATE.resources["UsageIdentifierQueue"]["Properties"]

    assert queue["VisibilityTimeout"] >= 6 * WORKER.properties["Timeout"]


def test_failed_messages_are_dead_lettered_to_an_encrypted_queue() -> None:
    queue = TEMPLATE.resources["UsageIdentifierQueue"]["Properties"]
    redrive = queue["RedrivePolicy"]
    dead_letters = TEMPLATE.resources["UsageIdentifierDeadLetterQueue"]

    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["UsageIdentifierDeadLetterQueue", "Arn"]}
    assert 1 <= redrive["maxReceiveCount"] <= 10
    assert dead_letters["Type"] == "AWS::SQS::Queue"
    assert dead_letters["Properties"]["KmsMasterKeyId"] == {"Ref": "PlatformKey"}
    assert queue["KmsMasterKeyId"] == {"Ref": "PlatformKey"}
    assert dead_letters["Properties"]["MessageRetentionPeriod"] >= queue["MessageRetentionPeriod"]


def test_a_dead_letter_raises_an_alarm_that_notifies_operators() -> None:
    dimension = {"Name": "QueueName", "Value": {"Fn::GetAtt": ["UsageIdentifierDeadLetterQueue", "QueueName"]}}
    (alarm,) = [
        a["Properties"]
        for a in TEMPLATE.of_type("AWS::CloudWatch::Alarm").values()
        if dimension in a["Properties"].get("Dimensions", [])
    ]

    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["AlarmActions"] == [{"Ref": "OperatorAlarmsTopic"}]


# -- who may call API Gateway -----------------------------------------------------------------

REGION = "us-east-1"
DEPLOYED_PLAN_IDS = {logical_id(plan): f"up{index}abc" for index, plan in enumerate(PLANS.values())}
RESOLVER = IntrinsicResolver(refs={"AWS::Partition": "aws", "AWS::Region": REGION, **DEPLOYED_PLAN_IDS})
KEY_ID = "k3y1d0000"


def apigateway_statements(function_logical_id: str) -> list[Statement]:
    return [
        s
        for s in statements([function_logical_id])
        if any(covers(pattern, "apigateway:GET") or pattern.lower().startswith("apigateway:") for pattern in s.actions)
    ]


def arn(path: str) -> str:
    return f"arn:aws:apigateway:{REGION}::{path}"


def worker_allows(action: str, resource: str) -> bool:
    """Whether the worker's (resolved) identity policy allows ``action`` on ``resource``."""
    allowed = False
    for statement in apigateway_statements(WORKER.logical_id):
        if not any(covers(pattern, action) for pattern in statement.actions):
            continue
        if not any(fnmatchcase(resource, RESOLVER.resolve(pattern)) for pattern in statement.resources):
            continue
        if statement.body.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.body.get("Effect") == "Allow"
    return allowed


def some_plan_id() -> str:
    return DEPLOYED_PLAN_IDS[logical_id(PLANS["standard"])]


# Every API Gateway call of ``UsageIdentifiers``, as IAM sees it (method and resource path).
WORKER_CALLS = {
    "GetApiKey": ("GET", f"/apikeys/{KEY_ID}"),
    "GetApiKeys": ("GET", "/apikeys"),
    "CreateApiKey": ("POST", "/apikeys"),
    "UpdateApiKey": ("PATCH", f"/apikeys/{KEY_ID}"),
    "DeleteApiKey": ("DELETE", f"/apikeys/{KEY_ID}"),
    "GetUsagePlans": ("GET", "/usageplans"),
    **{
        f"CreateUsagePlanKey:{plan.name}": ("POST", f"/usageplans/{DEPLOYED_PLAN_IDS[logical_id(plan)]}/keys")
        for plan in PLANS.values()
    },
    **{
        f"DeleteUsagePlanKey:{plan.name}": (
            "DELETE",
            f"/usageplans/{DEPLOYED_PLAN_IDS[logical_id(plan)]}/keys/{KEY_ID}",
        )
        for plan in PLANS.values()
    },
}

# What the worker must never do: change a plan's limits, touch other plans, or the API itself.
FORBIDDEN_CALLS = {
    "CreateUsagePlan": ("POST", "/usageplans"),
    "UpdateUsagePlan": ("PATCH", f"/usageplans/{some_plan_id()}"),
    "DeleteUsagePlan": ("DELETE", f"/usageplans/{some_plan_id()}"),
    "CreateUsagePlanKey:foreign": ("POST", "/usageplans/foreignplan/keys"),
    "DeleteUsagePlanKey:foreign": ("DELETE", f"/usageplans/foreignplan/keys/{KEY_ID}"),
    "GetRestApis": ("GET", "/restapis"),
    "UpdateStage": ("PATCH", "/restapis/api123/stages/prod"),
    "DeleteRestApi": ("DELETE", "/restapis/api123"),
    "PutMethod": ("PUT", "/restapis/api123/resources/r1/methods/GET"),
    "UpdateAccount": ("PATCH", "/account"),
    "GetUsage": ("GET", f"/usageplans/{some_plan_id()}/usage"),
}


@pytest.mark.parametrize(("method", "path"), WORKER_CALLS.values(), ids=list(WORKER_CALLS))
def test_the_worker_may_make_each_call_it_needs(method: str, path: str) -> None:
    assert worker_allows(f"apigateway:{method}", arn(path))


@pytest.mark.parametrize(("method", "path"), FORBIDDEN_CALLS.values(), ids=list(FORBIDDEN_CALLS))
def test_the_worker_may_touch_nothing_else(method: str, path: str) -> None:
    assert not worker_allows(f"apigateway:{method}", arn(path))


def allowed_worker_resources() -> set[str]:
    """The only API Gateway resources the worker may name: keys, the plan list, and the keys of
    the template's own usage plans."""
    prefix = "arn:${AWS::Partition}:apigateway:${AWS::Region}::"
    plans = {f"{prefix}/usageplans/${{{plan}}}/keys*" for plan in USAGE_PLANS}
    return {f"{prefix}/apikeys", f"{prefix}/apikeys/*", f"{prefix}/usageplans", *plans}


TAGS_RESOURCE = "arn:${AWS::Partition}:apigateway:${AWS::Region}::/tags/*"


def test_the_worker_may_tag_on_create_with_the_org_tag_only() -> None:
    """CreateApiKey with tags is also a PUT on the tags resource; nothing but ``org`` may be set."""
    [tagging] = [s for s in apigateway_statements(WORKER.logical_id) if TAGS_RESOURCE in map(sub_text, s.resources)]

    assert tagging.actions == ["apigateway:PUT"]
    assert tagging.body["Condition"] == {"ForAllValues:StringEquals": {"aws:TagKeys": ["org"]}}


def test_the_worker_names_only_keys_and_the_templates_usage_plans() -> None:
    found = [s for s in apigateway_statements(WORKER.logical_id) if TAGS_RESOURCE not in map(sub_text, s.resources)]
    assert found

    named = {sub_text(resource) for statement in found for resource in statement.resources}
    assert named <= allowed_worker_resources()
    assert {r for r in allowed_worker_resources() if "/keys*" in r} <= named  # it can move keys between all plans
    for statement in found:
        assert all(re.fullmatch(r"apigateway:(GET|POST|PATCH|DELETE)", a) for a in statement.actions), statement.body
        assert statement.body["Effect"] == "Allow"


def test_provisioning_has_no_api_gateway_permission_at_all() -> None:
    for statement in statements([PROVISIONING.logical_id]):
        assert not any(covers(pattern, "apigateway:GET") for pattern in statement.actions), statement.body
        assert not any(pattern.lower().startswith("apigateway:") for pattern in statement.actions), statement.body


def test_provisioning_may_only_queue_orgs_for_the_worker() -> None:
    queueing = [s for s in statements([PROVISIONING.logical_id]) if any(a.startswith("sqs:") for a in s.actions)]

    assert [(s.actions, s.resources) for s in queueing] == [
        (["sqs:SendMessage"], [{"Fn::GetAtt": ["UsageIdentifierQueue", "Arn"]}])
    ]
    assert PROVISIONING.environment["USAGE_IDENTIFIER_QUEUE_URL"] == {"Ref": "UsageIdentifierQueue"}
    assert "USAGE_PLAN_IDS" not in PROVISIONING.environment


@pytest.mark.parametrize("function", sorted(set(FUNCTIONS) - {WORKER.logical_id}))
def test_no_other_function_may_call_api_gateway(function: str) -> None:
    assert apigateway_statements(function) == []


# -- how the edge answers ---------------------------------------------------------------------

API = next(iter(TEMPLATE.of_type("AWS::Serverless::Api").values()))["Properties"]


def test_the_api_takes_each_requests_usage_identifier_from_the_authorizer() -> None:
    assert API["ApiKeySourceType"] == "AUTHORIZER"
    assert API["Auth"]["ApiKeyRequired"] is True


@pytest.mark.parametrize(
    ("response_type", "status", "retry_after"),
    [("INVALID_API_KEY", 403, None), ("THROTTLED", 429, 1), ("QUOTA_EXCEEDED", 429, 3600)],
)
def test_the_edges_refusals_are_problems_that_say_when_to_retry(
    response_type: str, status: int, retry_after: int | None
) -> None:
    response = API["GatewayResponses"][response_type]
    headers = response["ResponseParameters"]["Headers"]
    body = json.loads(response["ResponseTemplates"]["application/json"])

    assert int(response["StatusCode"]) == body["status"] == status
    assert headers["Content-Type"] == "'application/problem+json'"
    if retry_after is None:
        assert "Retry-After" not in headers
        return
    assert headers["Retry-After"] == f"'{retry_after}'"
    assert (body["code"], body["tier"], body["retryAfterSeconds"]) == ("rate_limited", "edge", retry_after)
