"""IAM and data-protection settings of ``template.yaml``, read as data (no deployment needed)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import pytest

from spectra_local.schedules import Schedule
from spectra_local.template import IntrinsicResolver, Template

TEMPLATE = Template()
PLATFORM_KEY_ARN = {"Fn::GetAtt": ["PlatformKey", "Arn"]}
PLATFORM_SECRETS = ({"Ref": "ApiKeyPepperSecret"}, {"Ref": "PageTokenSecret"})
FUNCTIONS = TEMPLATE.of_type("AWS::Serverless::Function")
TABLES = {**TEMPLATE.of_type("AWS::DynamoDB::Table"), **TEMPLATE.of_type("AWS::DynamoDB::GlobalTable")}
DATA_ROLE = TEMPLATE.resources["OrgDataAccessRole"]


@dataclass(frozen=True)
class Statement:
    """One policy statement and where it lives."""

    owner: str
    body: dict[str, Any]

    @property
    def actions(self) -> list[str]:
        return as_list(self.body.get("Action"))

    @property
    def resources(self) -> list[Any]:
        return as_list(self.body.get("Resource"))


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def documents(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every policy document a resource carries (role policies, SAM inline policies, key policies)."""
    properties = resource.get("Properties", {})
    for policy in as_list(properties.get("Policies")):
        if isinstance(policy, dict) and "PolicyDocument" in policy:
            yield policy["PolicyDocument"]
        elif isinstance(policy, dict) and "Statement" in policy:
            yield policy
    for name in ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument"):
        if isinstance(properties.get(name), dict):
            yield properties[name]


def statements(logical_ids: list[str] | None = None) -> list[Statement]:
    owners = logical_ids if logical_ids is not None else list(TEMPLATE.resources)
    return [
        Statement(owner, body)
        for owner in owners
        for document in documents(TEMPLATE.resources[owner])
        for body in as_list(document.get("Statement"))
    ]


FUNCTION_STATEMENTS = statements(list(FUNCTIONS))
ALL_STATEMENTS = statements()


def statement_id(statement: Statement) -> str:
    return f"{statement.owner}:{statement.body.get('Sid', '?')}"


def table_arn(logical_id: str, suffix: str = "") -> dict[str, str]:
    """A table's ARN as policies write it: from its fixed name, the same in every region's stack
    (a secondary region's stack owns no tables, so it has nothing to ``!GetAtt``)."""
    name = TABLES[logical_id]["Properties"]["TableName"]["Fn::Sub"]
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{name}{suffix}"}


def references(resource: Any, logical_id: str) -> bool:
    """Whether a resource expression names ``logical_id`` (Ref, GetAtt, inside a Sub, or a table's ARN)."""
    if isinstance(resource, dict):
        if resource.get("Ref") == logical_id:
            return True
        if resource.get("Fn::GetAtt", [None])[0] == logical_id:
            return True
        if "Fn::Sub" in resource:
            text = str(resource["Fn::Sub"])
            if logical_id in TABLES and "TableName" in TABLES[logical_id]["Properties"]:
                arn = table_arn(logical_id)["Fn::Sub"]
                if text == arn or text.startswith(f"{arn}/"):
                    return True
            return f"${{{logical_id}" in text
    return False


# -- the tenancy boundary ---------------------------------------------------------------------


def _data_role_dynamodb_statement(table: str = "RecordsTable") -> dict[str, Any]:
    found = [
        s.body
        for s in statements(["OrgDataAccessRole"])
        if any(a.startswith("dynamodb:") for a in s.actions)
        and any(references(resource, table) for resource in as_list(s.body.get("Resource")))
    ]
    assert len(found) == 1, found
    return found[0]


def test_org_data_role_reaches_only_the_session_orgs_rate_limit_buckets() -> None:
    statement = _data_role_dynamodb_statement("RateLimitTable")
    condition = statement["Condition"]

    assert sorted(statement["Action"]) == ["dynamodb:Query", "dynamodb:UpdateItem"]
    assert condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["ORG#${aws:PrincipalTag/org}#*"]
    assert condition["Null"] == {"dynamodb:LeadingKeys": "false", "aws:PrincipalTag/org": "false"}


def test_org_data_role_has_no_other_dynamodb_statement() -> None:
    dynamodb = [s for s in statements(["OrgDataAccessRole"]) if any(a.startswith("dynamodb:") for a in s.actions)]

    assert sorted(s.body["Sid"] for s in dynamodb) == [
        "OnlyThisOrgsAuditChain",
        "OnlyThisOrgsItems",
        "OnlyThisOrgsRateLimitBuckets",
    ]


def test_org_data_role_appends_to_and_reads_only_the_session_orgs_audit_chain() -> None:
    statement = _data_role_dynamodb_statement("AuditTable")
    condition = statement["Condition"]

    assert sorted(statement["Action"]) == ["dynamodb:PutItem", "dynamodb:Query"]
    assert condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["ORG#${aws:PrincipalTag/org}#*"]
    assert condition["Null"] == {"dynamodb:LeadingKeys": "false", "aws:PrincipalTag/org": "false"}


AUDIT_CHANGING_ACTIONS = {
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
}


def test_no_role_can_change_or_delete_an_audit_event() -> None:
    """Audit events are put and read, never updated or deleted: no statement of any role in the
    template allows a changing action on the audit table, by name or by wildcard."""
    for statement in ALL_STATEMENTS:
        if statement.body.get("Effect") != "Allow":
            continue
        resources = as_list(statement.body.get("Resource"))
        names_audit = any(references(resource, "AuditTable") for resource in resources) or "*" in resources
        if not names_audit:
            continue
        # Patterns too: "dynamodb:*Item" or "dynamodb:Delete*" would grant a changing action.
        granted = {
            action
            for action in statement.actions
            if any(fnmatchcase(changing, action) for changing in AUDIT_CHANGING_ACTIONS)
        }
        assert not granted, statement_id(statement)


@pytest.mark.parametrize("pattern", ["*", "dynamodb:*", "dynamodb:*Item", "dynamodb:Delete*", "dynamodb:UpdateItem"])
def test_the_audit_immutability_check_catches_wildcards(pattern: str) -> None:
    assert any(fnmatchcase(changing, pattern) for changing in AUDIT_CHANGING_ACTIONS)


def test_org_data_role_reaches_only_items_led_by_the_session_org() -> None:
    condition = _data_role_dynamodb_statement()["Condition"]

    assert condition["ForAllValues:StringLike"] == {"dynamodb:LeadingKeys": ["ORG#${aws:PrincipalTag/org}#*"]}


def test_org_data_role_has_the_null_guard_against_scan_and_untagged_sessions() -> None:
    condition = _data_role_dynamodb_statement()["Condition"]

    assert condition["Null"] == {"dynamodb:LeadingKeys": "false", "aws:PrincipalTag/org": "false"}


def test_org_data_role_can_only_be_assumed_with_an_org_session_tag() -> None:
    trust = DATA_ROLE["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert all(s["Condition"]["StringLike"]["aws:RequestTag/org"] == "?*" for s in trust)


# -- actions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("statement", ALL_STATEMENTS, ids=statement_id)
def test_no_policy_grants_scan_or_wildcard_dynamodb_actions(statement: Statement) -> None:
    for action in statement.actions:
        assert action != "*"
        assert action.lower() != "dynamodb:scan"
        assert not (action.startswith("dynamodb:") and "*" in action), action


@pytest.mark.parametrize("statement", FUNCTION_STATEMENTS, ids=statement_id)
def test_function_statements_name_their_resources(statement: Statement) -> None:
    assert statement.resources, statement.body
    assert "*" not in statement.resources


@pytest.mark.parametrize("statement", FUNCTION_STATEMENTS, ids=statement_id)
def test_function_actions_are_never_service_wildcards(statement: Statement) -> None:
    assert all(not action.endswith(":*") for action in statement.actions), statement.actions


SECRET_STATEMENTS = [
    s
    for s in FUNCTION_STATEMENTS
    if s.body.get("Effect") == "Allow" and any(a.startswith("secretsmanager:") for a in s.actions)
]


@pytest.mark.parametrize("statement", SECRET_STATEMENTS, ids=statement_id)
def test_functions_read_only_the_platform_secrets(statement: Statement) -> None:
    assert statement.actions == ["secretsmanager:GetSecretValue"]
    assert all(resource in PLATFORM_SECRETS for resource in statement.resources), statement.resources


def test_organization_function_reads_no_secret() -> None:
    secrets = [
        r
        for s in statements(["OrganizationFunction"])
        if "secretsmanager:GetSecretValue" in s.actions
        for r in s.resources
    ]

    assert secrets == []


def test_traces_never_capture_responses(template: Template) -> None:
    environment = template.document["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"


def test_only_stack_roles_and_the_operator_role_may_assume_the_org_role(template: Template) -> None:
    trust = template.resources["OrgDataAccessRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    for statement in trust:
        principals = statement["Condition"]["ArnLike"]["aws:PrincipalArn"]
        assert len(principals) == 2
        assert statement["Condition"]["StringLike"]["aws:RequestTag/org"] == "?*"


def test_authorizer_may_only_query_the_credentials_index() -> None:
    dynamodb = [s for s in statements(["AuthorizerFunction"]) if any(a.startswith("dynamodb:") for a in s.actions)]

    assert [(s.actions, s.resources) for s in dynamodb] == [
        (["dynamodb:Query"], [table_arn("RecordsTable", "/index/credentials")])
    ]


PLATFORM_PARTITIONS = {"ORGS#", "RETENTION#"}
"""The only partitions outside any org: the org registry and the retention job's checkpoints."""


def confined_to_platform_partitions(statement: Statement) -> bool:
    """The statement reaches only fixed non-org partitions, with the Null guard against Scan."""
    condition = statement.body.get("Condition", {})
    leading = condition.get("ForAllValues:StringEquals", {}).get("dynamodb:LeadingKeys", [])
    guarded = condition.get("Null", {}).get("dynamodb:LeadingKeys") == "false"
    return guarded and bool(leading) and set(as_list(leading)) <= PLATFORM_PARTITIONS


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_functions_touch_the_records_table_only_through_the_org_role_or_an_index(logical_id: str) -> None:
    """Org data is reached with the org role; a function's own role reaches the table itself
    only for a platform partition (never an org's), and an index only as declared."""
    for statement in statements([logical_id]):
        for resource in statement.resources:
            if references(resource, "RecordsTable") and "/index/" not in str(resource):
                assert confined_to_platform_partitions(statement), (statement_id(statement), resource)


# -- logs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_each_function_has_its_own_encrypted_retained_log_group(logical_id: str) -> None:
    properties = FUNCTIONS[logical_id]["Properties"]
    group_id = properties["LoggingConfig"]["LogGroup"]["Ref"]
    group = TEMPLATE.resources[group_id]["Properties"]

    assert group["KmsKeyId"] == PLATFORM_KEY_ARN
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/" + properties["FunctionName"]["Fn::Sub"]}


def test_no_two_functions_share_a_log_group() -> None:
    groups = [f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in FUNCTIONS.values()]

    assert len(groups) == len(set(groups))


@pytest.mark.parametrize("logical_id", sorted(TEMPLATE.of_type("AWS::Logs::LogGroup")))
def test_every_log_group_is_encrypted_and_expires(logical_id: str) -> None:
    group = TEMPLATE.resources[logical_id]["Properties"]

    assert group["KmsKeyId"] == PLATFORM_KEY_ARN
    assert "RetentionInDays" in group


def test_log_retention_is_at_least_a_year() -> None:
    retention = TEMPLATE.document["Parameters"]["LogRetentionDays"]

    assert min(retention["AllowedValues"]) >= 365


# -- tables and keys --------------------------------------------------------------------------


def replicas(table: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a table's per-copy settings live: a global table's replicas (each optional one as
    declared under its condition), or the table itself."""
    properties = table["Properties"]
    if table["Type"] != "AWS::DynamoDB::GlobalTable":
        return [properties]
    return [replica["Fn::If"][1] if "Fn::If" in replica else replica for replica in properties["Replicas"]]


def test_the_template_has_the_four_operational_tables() -> None:
    assert sorted(TABLES) == ["AuditTable", "IdempotencyTable", "RateLimitTable", "RecordsTable"]


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_every_table_is_encrypted_with_the_platform_key(logical_id: str) -> None:
    table = TABLES[logical_id]
    assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True
    assert table["Properties"]["SSESpecification"]["SSEType"] == "KMS"
    home, *others = replicas(table)
    assert home["SSESpecification"]["KMSMasterKeyId"] == PLATFORM_KEY_ARN
    # In another region, that region's stack's platform key, found by the alias every stack gives it.
    for replica in others:
        assert "${PlatformKeyAlias}" in replica["SSESpecification"]["KMSMasterKeyId"]["Fn::Sub"][0]


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_every_table_has_point_in_time_recovery(logical_id: str) -> None:
    for replica in replicas(TABLES[logical_id]):
        assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_every_table_is_protected_from_deletion(logical_id: str) -> None:
    table = TABLES[logical_id]

    assert all(replica["DeletionProtectionEnabled"] is True for replica in replicas(table))
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_idempotency_records_expire_by_ttl() -> None:
    ttl = TABLES["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"]

    assert ttl == {"AttributeName": "expiration", "Enabled": True}


def test_platform_key_rotates() -> None:
    assert TEMPLATE.resources["PlatformKey"]["Properties"]["EnableKeyRotation"] is True


@pytest.mark.parametrize("logical_id", sorted(TEMPLATE.of_type("AWS::SecretsManager::Secret")))
def test_platform_secrets_are_generated_and_encrypted(logical_id: str) -> None:
    properties = TEMPLATE.resources[logical_id]["Properties"]

    assert properties["KmsKeyId"] == PLATFORM_KEY_ARN
    assert "SecretString" not in properties
    assert properties["GenerateSecretString"]["PasswordLength"] >= 32


def test_api_never_logs_request_or_response_bodies() -> None:
    settings = TEMPLATE.resources["SpectraApi"]["Properties"]["MethodSettings"]

    assert all(setting["DataTraceEnabled"] is False for setting in settings)


DATA_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PutItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
}


def test_no_function_role_has_data_rights_on_telemetry_tables() -> None:
    """Telemetry is reached only by assuming an org's own role; no function role reaches it."""
    for statement in FUNCTION_STATEMENTS:
        touches_telemetry = any("-telemetry-" in str(resource) for resource in statement.resources)
        if touches_telemetry:
            assert not DATA_ACTIONS & set(statement.actions), statement_id(statement)


def test_telemetry_ingest_reaches_telemetry_only_through_org_roles() -> None:
    ingest = statements(["TelemetryIngestFunction"])
    assumes = [s for s in ingest if "sts:AssumeRole" in s.actions]
    assert any("role/spectra-${Stage}-org-*" in str(s.resources) for s in assumes)
    dynamodb = [s for s in ingest if any(a.startswith("dynamodb:") for a in s.actions)]
    assert all(references(r, "IdempotencyTable") for s in dynamodb for r in s.resources)


def test_org_roles_are_created_only_inside_the_boundary() -> None:
    [create] = [s for s in statements(["ProvisioningFunction"]) if "iam:CreateRole" in s.actions]
    assert create.body["Condition"]["StringEquals"]["iam:PermissionsBoundary"] == {"Ref": "OrgTelemetryRoleBoundary"}
    boundary = statements(["OrgTelemetryRoleBoundary"])
    assert all(a.startswith(("dynamodb:", "kms:")) for s in boundary for a in s.actions)
    assert not any("dynamodb:Scan" in s.actions for s in boundary)


# -- telemetry readers and the retention job --------------------------------------------------

RETENTION = "RetentionFunction"


@pytest.mark.parametrize("logical_id", ["TelemetryQueryFunction", RETENTION])
def test_telemetry_readers_reach_telemetry_only_through_org_roles(logical_id: str) -> None:
    own = statements([logical_id])
    assumes = [s for s in own if "sts:AssumeRole" in s.actions]
    assert any("role/spectra-${Stage}-org-*" in str(s.resources) for s in assumes)
    dynamodb = [s for s in own if any(a.startswith("dynamodb:") for a in s.actions)]
    assert not any("telemetry" in str(r).lower() for s in dynamodb for r in s.resources), dynamodb


def _retention_dynamodb_statements() -> list[Statement]:
    return [s for s in statements([RETENTION]) if any(a.startswith("dynamodb:") for a in s.actions)]


def test_retention_reads_only_the_org_registry_and_its_own_checkpoints() -> None:
    null_guard = {"dynamodb:LeadingKeys": "false"}
    found = [
        (sorted(s.actions), s.resources, s.body["Condition"]["ForAllValues:StringEquals"], s.body["Condition"]["Null"])
        for s in _retention_dynamodb_statements()
    ]

    assert sorted(found, key=str) == sorted(
        [
            (
                ["dynamodb:Query"],
                [table_arn("RecordsTable", "/index/gsi1")],
                {"dynamodb:LeadingKeys": ["ORGS#"]},
                null_guard,
            ),
            (
                ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
                [table_arn("RecordsTable")],
                {"dynamodb:LeadingKeys": ["RETENTION#"]},
                null_guard,
            ),
        ],
        key=str,
    )


def test_retention_may_never_scan() -> None:
    actions = {a.lower() for s in statements([RETENTION]) for a in s.actions}

    assert "dynamodb:scan" not in actions
    assert not any(a.startswith("dynamodb:") and "*" in a for a in actions)


def test_retention_failures_are_dead_lettered_to_an_encrypted_queue() -> None:
    target = FUNCTIONS[RETENTION]["Properties"]["DeadLetterQueue"]
    assert target["Type"] == "SQS"
    [queue_id, attribute] = target["TargetArn"]["Fn::GetAtt"]
    queue = TEMPLATE.resources[queue_id]

    assert (queue["Type"], attribute) == ("AWS::SQS::Queue", "Arn")
    assert queue["Properties"]["KmsMasterKeyId"] == {"Ref": "PlatformKey"}


RETENTION_DLQ = FUNCTIONS[RETENTION]["Properties"]["DeadLetterQueue"]["TargetArn"]["Fn::GetAtt"][0]


def _alarm_on(namespace: str, dimension: str, value: Any) -> dict[str, Any]:
    [alarm] = [
        a["Properties"]
        for a in TEMPLATE.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == namespace
        and {"Name": dimension, "Value": value} in a["Properties"].get("Dimensions", [])
    ]
    return dict(alarm)


@pytest.mark.parametrize(
    ("namespace", "dimension", "value"),
    [
        ("AWS/Lambda", "FunctionName", {"Ref": RETENTION}),
        ("AWS/SQS", "QueueName", {"Fn::GetAtt": [RETENTION_DLQ, "QueueName"]}),
        ("AWS/SQS", "QueueName", {"Fn::GetAtt": ["ThingEventsDeadLetterQueue", "QueueName"]}),
    ],
    ids=["retention-errors", "retention-dead-letters", "thing-events-dead-letters"],
)
def test_retention_failures_raise_an_alarm_that_notifies_operators(namespace: str, dimension: str, value: Any) -> None:
    alarm = _alarm_on(namespace, dimension, value)

    assert alarm["AlarmActions"], alarm
    for action in alarm["AlarmActions"]:
        topic = TEMPLATE.resources[action["Ref"]]
        assert topic["Type"] == "AWS::SNS::Topic"
        assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "PlatformKey"}
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def _retention_schedules(parameters: dict[str, Any]) -> list[Schedule]:
    resolver = IntrinsicResolver(refs={**TEMPLATE.parameter_defaults(), **parameters})
    events = FUNCTIONS[RETENTION]["Properties"]["Events"].values()
    return [Schedule(str(resolver.resolve(e["Properties"]["Schedule"]))) for e in events if e["Type"] == "Schedule"]


@pytest.mark.parametrize("hour", [0, 3, 23])
def test_retention_starts_a_pass_once_a_day_at_the_hour_its_days_begin(hour: int) -> None:
    day = datetime(2026, 11, 26, tzinfo=UTC)
    minutes = [day + timedelta(minutes=m) for m in range(24 * 60)]
    daily = [s for s in _retention_schedules({"RetentionPassHourUtc": hour}) if s.interval() is None]
    variables = FUNCTIONS[RETENTION]["Properties"]["Environment"]["Variables"]

    assert len(daily) == 1
    assert [m for m in minutes if daily[0].matches_minute(m)] == [day + timedelta(hours=hour)]
    resolved = IntrinsicResolver(refs={"RetentionPassHourUtc": hour}).resolve(variables["RETENTION_PASS_HOUR_UTC"])
    assert int(resolved) == hour


def test_retention_continues_unfinished_passes_within_the_hour() -> None:
    intervals = [s.interval() for s in _retention_schedules({})]
    continuation = [i for i in intervals if i is not None]

    assert len(continuation) == 1
    assert continuation[0] <= timedelta(minutes=60)


# -- integration secrets: written by one role, read by none -----------------------------------

SECRETS_ROLE = "IntegrationSecretsRole"
INTEGRATIONS = "IntegrationsFunction"
ROLES = TEMPLATE.of_type("AWS::IAM::Role")
POLICIES = {**TEMPLATE.of_type("AWS::IAM::ManagedPolicy"), **TEMPLATE.of_type("AWS::IAM::Policy")}
SECRET_READS = ("secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue")
SECRET_WRITES = {
    "secretsmanager:CreateSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:TagResource",
    "secretsmanager:DeleteSecret",
    # Rotation stages a version, then moves AWSCURRENT to it once the record names it; the
    # labels say which stored version is current and reveal nothing.
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:DescribeSecret",
}
INTEGRATION_SECRETS = {
    "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
    "spectra/${Stage}/orgs/${!aws:PrincipalTag/org}/integrations/*"
}
INTEGRATIONS_FUNCTION_ROLE = {
    "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-IntegrationsFunctionRole-*"
}
ORG_TELEMETRY_ROLES = "role/spectra-${Stage}-org-*"
IDENTITY_STATEMENTS = [s for s in statements(sorted({*FUNCTIONS, *ROLES, *POLICIES})) if "Principal" not in s.body]
"""What functions and roles are allowed to do (trust and resource policies name a Principal)."""


def covers(pattern: str, action: str) -> bool:
    """Whether an IAM action pattern (``*``, ``service:*``, ``service:Get*``…) allows ``action``."""
    return fnmatchcase(action.lower(), pattern.lower())


def grants_any(statement: Statement, actions: Iterable[str]) -> bool:
    if statement.body.get("Effect") != "Allow":
        return False
    if "NotAction" in statement.body:  # an Allow with NotAction grants everything not listed
        return True
    return any(covers(pattern, action) for pattern in statement.actions for action in actions)


SECRET_READING_STATEMENTS = [s for s in IDENTITY_STATEMENTS if grants_any(s, SECRET_READS)]


def test_the_secret_read_scan_sees_what_it_must_refuse() -> None:
    """Guards the scan below: wildcards and ``NotAction`` count as reads, other actions do not."""
    for pattern in ("*", "secretsmanager:*", "secretsmanager:Get*", "secretsmanager:batchget*"):
        assert grants_any(Statement("x", {"Effect": "Allow", "Action": pattern}), SECRET_READS), pattern
    assert grants_any(Statement("x", {"Effect": "Allow", "NotAction": "iam:*"}), SECRET_READS)
    assert not grants_any(Statement("x", {"Effect": "Allow", "Action": sorted(SECRET_WRITES)}), SECRET_READS)
    assert not grants_any(Statement("x", {"Effect": "Deny", "Action": "*"}), SECRET_READS)
    assert SECRET_READING_STATEMENTS  # the platform secrets are read: the scan sees real statements


@pytest.mark.parametrize("statement", SECRET_READING_STATEMENTS, ids=statement_id)
def test_secret_values_are_readable_only_from_the_platform_secrets(statement: Statement) -> None:
    """No function, role or managed policy may read any other secret (integration secrets
    included), neither by name nor through a wildcard action or resource."""
    assert statement.actions == ["secretsmanager:GetSecretValue"], statement.body
    assert "NotAction" not in statement.body
    assert "NotResource" not in statement.body
    assert statement.resources
    assert all(resource in PLATFORM_SECRETS for resource in statement.resources), statement.resources


def assumable_roles(logical_id: str) -> list[Any]:
    """The resources of every ``sts:AssumeRole`` a function's own policy allows."""
    return [resource for s in statements([logical_id]) if grants_any(s, ["sts:AssumeRole"]) for resource in s.resources]


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_no_lambda_role_can_read_integration_secrets(logical_id: str) -> None:
    """Neither a function's own role nor any role it may assume can read a secret value beyond
    the platform secrets; org telemetry roles are bounded to DynamoDB and KMS."""
    own = [s for s in statements([logical_id]) if grants_any(s, SECRET_READS)]
    assert all(resource in PLATFORM_SECRETS for s in own for resource in s.resources), [s.body for s in own]
    for role in assumable_roles(logical_id):
        if ORG_TELEMETRY_ROLES in str(role):
            boundary = statements(["OrgTelemetryRoleBoundary"])
            assert not any(grants_any(s, SECRET_READS) for s in boundary)
            continue
        [role_id] = [name for name in ROLES if references(role, name)]
        assert not any(grants_any(s, SECRET_READS) for s in statements([role_id]) if "Principal" not in s.body)


def _secrets_role_statements() -> dict[str, dict[str, Any]]:
    return {s.body["Sid"]: s.body for s in statements([SECRETS_ROLE]) if "Principal" not in s.body}


def test_integration_secrets_role_only_writes_under_the_sessions_org_path() -> None:
    found = [
        s
        for s in statements([SECRETS_ROLE])
        if s.body["Effect"] == "Allow" and any(a.startswith("secretsmanager:") for a in s.actions)
    ]

    assert {action for s in found for action in s.actions} == SECRET_WRITES
    assert all(s.resources == [INTEGRATION_SECRETS] for s in found)
    [attach] = [s for s in found if "secretsmanager:PutResourcePolicy" in s.actions]
    assert attach.body["Condition"] == {"Bool": {"secretsmanager:BlockPublicPolicy": "true"}}
    assert not any(grants_any(s, SECRET_READS) for s in statements([SECRETS_ROLE]))


def test_integration_secrets_role_explicitly_denies_reads_and_deletes_without_recovery() -> None:
    denies = {s.body["Sid"]: s for s in statements([SECRETS_ROLE]) if s.body["Effect"] == "Deny"}

    assert set(denies["NeverReadAValue"].actions) == set(SECRET_READS)
    assert denies["NeverReadAValue"].resources == ["*"]
    assert denies["NeverDeleteWithoutRecovery"].actions == ["secretsmanager:DeleteSecret"]
    assert denies["NeverDeleteWithoutRecovery"].body["Condition"] == {
        "Bool": {"secretsmanager:ForceDeleteWithoutRecovery": "true"}
    }


def test_integration_secrets_role_uses_the_platform_key_only_through_secrets_manager() -> None:
    kms = [s for s in _secrets_role_statements().values() if any(a.startswith("kms:") for a in as_list(s["Action"]))]

    assert [(sorted(as_list(s["Action"])), s["Resource"]) for s in kms] == [
        (["kms:Decrypt", "kms:GenerateDataKey"], PLATFORM_KEY_ARN)
    ]
    assert kms[0]["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}
    }


def test_integration_secrets_role_trusts_only_the_integrations_function_with_an_org_session_tag() -> None:
    trust = ROLES[SECRETS_ROLE]["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    [statement] = trust
    assert statement["Effect"] == "Allow"
    assert sorted(as_list(statement["Action"])) == ["sts:AssumeRole", "sts:TagSession"]
    assert statement["Condition"]["ArnLike"] == {"aws:PrincipalArn": INTEGRATIONS_FUNCTION_ROLE}
    assert statement["Condition"]["StringLike"] == {"aws:RequestTag/org": "?*"}
    # The pattern names the role SAM generates for the function: it must not bring its own.
    assert "Role" not in FUNCTIONS[INTEGRATIONS]["Properties"]


def test_integrations_function_reaches_secrets_only_by_assuming_the_secrets_role() -> None:
    own = statements([INTEGRATIONS])
    secrets = [
        (s.body["Effect"], s.actions, s.resources)
        for s in own
        if any(a.startswith("secretsmanager:") for a in s.actions)
    ]
    variables = FUNCTIONS[INTEGRATIONS]["Properties"]["Environment"]["Variables"]
    org_secrets = {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
        "spectra/${Stage}/orgs/*"
    }

    assert secrets == [
        ("Allow", ["secretsmanager:GetSecretValue"], [{"Ref": "PageTokenSecret"}]),
        ("Deny", list(SECRET_READS), [org_secrets]),
    ]
    assert any(references(role, SECRETS_ROLE) for role in assumable_roles(INTEGRATIONS))
    assert variables["INTEGRATION_SECRETS_ROLE_ARN"] == {"Fn::GetAtt": [SECRETS_ROLE, "Arn"]}


@pytest.mark.parametrize("logical_id", sorted(set(FUNCTIONS) - {INTEGRATIONS}))
def test_no_other_function_may_assume_the_secrets_role(logical_id: str) -> None:
    for role in assumable_roles(logical_id):
        assert not references(role, SECRETS_ROLE), role
        assert "*" not in str(role) or ORG_TELEMETRY_ROLES in str(role), role


@pytest.mark.parametrize("statement", IDENTITY_STATEMENTS, ids=statement_id)
def test_only_the_secrets_role_writes_secrets(statement: Statement) -> None:
    writes = sorted({*SECRET_WRITES, "secretsmanager:UpdateSecret", "secretsmanager:RestoreSecret"})
    if statement.owner != SECRETS_ROLE:
        assert not grants_any(statement, writes), statement.body
