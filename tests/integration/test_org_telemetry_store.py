"""Provisioning gives each org its own telemetry table and a role that reaches only that table;
deleting the org revokes every key and removes both."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from spectra_local.stack import LocalStack
from tests.integration.factories import Org, assert_problem

REGION = "us-east-1"


def _env(stack: LocalStack) -> dict[str, str]:
    return dict(stack.environment("provisioning"))


def _table(stack: LocalStack, org: Org) -> str:
    return _env(stack)["TELEMETRY_TABLE_PREFIX"] + org.org_id


def _role(stack: LocalStack, org: Org) -> str:
    return _env(stack)["ORG_ROLE_PREFIX"] + org.org_id


def _role_policy(stack: LocalStack, org: Org) -> dict[str, Any]:
    iam = boto3.client("iam", region_name=REGION)
    names = iam.list_role_policies(RoleName=_role(stack, org))["PolicyNames"]
    assert names == ["OrgTelemetryTable"]
    document = iam.get_role_policy(RoleName=_role(stack, org), PolicyName=names[0])["PolicyDocument"]
    return document if isinstance(document, dict) else json.loads(document)


def test_org_gets_its_own_protected_encrypted_table(stack: LocalStack, org: Org) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = dynamodb.describe_table(TableName=_table(stack, org))["Table"]

    assert [k["AttributeName"] for k in table["KeySchema"]] == ["thingId", "timestamp"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionProtectionEnabled"] is True
    assert table["SSEDescription"]["SSEType"] == "KMS"
    backups = dynamodb.describe_continuous_backups(TableName=_table(stack, org))["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    ttl = dynamodb.describe_time_to_live(TableName=_table(stack, org))["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expiresAt"
    tags = dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert {"Key": "org", "Value": org.org_id} in tags


def test_org_role_reaches_its_table_and_nothing_else(stack: LocalStack, org: Org, other_org: Org) -> None:
    table_arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=_table(stack, org))["Table"][
        "TableArn"
    ]
    statements = _role_policy(stack, org)["Statement"]
    data = [s for s in statements if any(a.startswith("dynamodb:") for a in s["Action"])]

    assert [s["Resource"] for s in data] == [table_arn]
    assert all(a.startswith(("dynamodb:", "kms:")) for s in statements for a in s["Action"])
    assert "dynamodb:Scan" not in data[0]["Action"]
    assert _table(stack, other_org) not in json.dumps(statements)


def test_org_role_is_bounded_and_trusts_only_the_stack(stack: LocalStack, org: Org) -> None:
    role = boto3.client("iam", region_name=REGION).get_role(RoleName=_role(stack, org))["Role"]

    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == _env(stack)["ORG_ROLE_BOUNDARY_ARN"]
    trust = role["AssumeRolePolicyDocument"]
    trust = trust if isinstance(trust, dict) else json.loads(trust)
    [statement] = trust["Statement"]
    assert statement["Condition"]["ArnLike"]["aws:PrincipalArn"] == json.loads(
        _env(stack)["ORG_ROLE_TRUSTED_PRINCIPALS"]
    )


def test_profile_names_the_orgs_store(stack: LocalStack, org: Org) -> None:
    profile = stack.provision({"action": "describe_org", "orgId": org.org_id})
    assert "telemetryRoleArn" not in profile  # operator view shows the public profile only
    assert profile["status"] == "Active"


def test_delete_needs_the_org_id_repeated(stack: LocalStack, org: Org) -> None:
    result = stack.function("provisioning").invoke(
        {"command": {"action": "delete_org", "orgId": org.org_id, "confirm": "yes"}}
    )
    assert result["error"]["errors"][0]["field"] == "confirm"
    assert stack.request("GET", "/v2/organization", key=org.admin_key).status == 200


def test_delete_revokes_every_key_and_removes_the_store(stack: LocalStack, org: Org, other_org: Org) -> None:
    deleted = stack.provision({"action": "delete_org", "orgId": org.org_id, "confirm": org.org_id})

    assert deleted["status"] == "Deleted"
    stack.gateway.clear_authorizer_cache()
    stack.function("authorizer").load().authorizer.clear()
    assert_problem(stack.request("GET", "/v2/organization", key=org.admin_key), 401)
    tables = boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"]
    assert _table(stack, org) not in tables
    assert _table(stack, other_org) in tables
    iam = boto3.client("iam", region_name=REGION)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=_role(stack, org))
    assert stack.request("GET", "/v2/organization", key=other_org.admin_key).status == 200


def test_a_deleted_org_cannot_be_resumed(stack: LocalStack, org: Org) -> None:
    stack.provision({"action": "delete_org", "orgId": org.org_id, "confirm": org.org_id})
    result = stack.function("provisioning").invoke({"command": {"action": "resume_org", "orgId": org.org_id}})
    assert result["error"]["code"] == "conflict"
