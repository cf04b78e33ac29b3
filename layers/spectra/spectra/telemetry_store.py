"""Each organization's own telemetry store: a dedicated table and a role that reaches only it.

Provisioning an org creates its table (on demand, encrypted with the platform key, point-in-time
recovery, deletion protection, TTL on ``expiresAt``, tagged with the org) and its IAM role,
whose only permissions are on that table and which is bounded by the stack's permissions
boundary, so even a mistaken policy could not reach further. Telemetry code reaches the data
only by assuming that role. Deleting the org removes both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from spectra.config import Settings
from spectra.identifiers import require_guid

DATA_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
)
ROLE_POLICY_NAME = "OrgTelemetryTable"


@dataclass(frozen=True)
class TelemetryStore:
    table_name: str
    table_arn: str
    role_arn: str


class TelemetryStores:
    """Creates and removes per-org telemetry tables and roles (provisioning only)."""

    def __init__(self, dynamodb: Any, iam: Any, settings: Settings) -> None:
        self._dynamodb = dynamodb
        self._iam = iam
        self._settings = settings

    def table_name(self, org_id: str) -> str:
        return f"{self._settings.telemetry_table_prefix}{require_guid(org_id, 'org id')}"

    def role_name(self, org_id: str) -> str:
        return f"{self._settings.org_role_prefix}{require_guid(org_id, 'org id')}"

    def create(self, org_id: str) -> TelemetryStore:
        """The org's table and role (idempotent: an existing one is reused)."""
        table_arn = self._create_table(org_id)
        role_arn = self._create_role(org_id, table_arn)
        return TelemetryStore(table_name=self.table_name(org_id), table_arn=table_arn, role_arn=role_arn)

    def delete(self, org_id: str) -> None:
        """Remove the org's role and table (deletion protection is lifted first, deliberately)."""
        role = self.role_name(org_id)
        try:
            self._iam.delete_role_policy(RoleName=role, PolicyName=ROLE_POLICY_NAME)
            self._iam.delete_role(RoleName=role)
        except self._iam.exceptions.NoSuchEntityException:
            pass
        table = self.table_name(org_id)
        try:
            self._dynamodb.update_table(TableName=table, DeletionProtectionEnabled=False)
            self._dynamodb.delete_table(TableName=table)
        except self._dynamodb.exceptions.ResourceNotFoundException:
            pass

    def _create_table(self, org_id: str) -> str:
        name = self.table_name(org_id)
        try:
            description = self._dynamodb.create_table(
                TableName=name,
                KeySchema=[
                    {"AttributeName": "thingId", "KeyType": "HASH"},
                    {"AttributeName": "timestamp", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "thingId", "AttributeType": "S"},
                    {"AttributeName": "timestamp", "AttributeType": "N"},
                ],
                BillingMode="PAY_PER_REQUEST",
                SSESpecification={
                    "Enabled": True,
                    "SSEType": "KMS",
                    "KMSMasterKeyId": self._settings.platform_key_arn,
                },
                DeletionProtectionEnabled=True,
                Tags=[{"Key": "org", "Value": org_id}, {"Key": "spectra:data", "Value": "telemetry"}],
            )["TableDescription"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
            description = self._dynamodb.describe_table(TableName=name)["Table"]
        self._dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
        self._dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        ttl = self._dynamodb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
        if ttl.get("TimeToLiveStatus") not in {"ENABLED", "ENABLING"}:
            self._dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": "expiresAt", "Enabled": True}
            )
        return str(description["TableArn"])

    def _create_role(self, org_id: str, table_arn: str) -> str:
        name = self.role_name(org_id)
        _arn, partition, _service, _region, account, _resource = table_arn.split(":", 5)
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": {"ArnLike": {"aws:PrincipalArn": list(self._settings.org_role_trusted_principals)}},
                }
            ],
        }
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OnlyThisOrgsTelemetry",
                    "Effect": "Allow",
                    "Action": list(DATA_ACTIONS),
                    "Resource": table_arn,
                },
                {
                    "Sid": "PlatformKeyThroughDynamoDbOnly",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                    "Resource": self._settings.platform_key_arn,
                    "Condition": {"StringLike": {"kms:ViaService": "dynamodb.*.amazonaws.com"}},
                },
            ],
        }
        try:
            arguments: dict[str, Any] = {
                "RoleName": name,
                "AssumeRolePolicyDocument": json.dumps(trust),
                "Description": f"Spectra telemetry of org {org_id} (its table only)",
                "MaxSessionDuration": 3600,
                "Tags": [{"Key": "org", "Value": org_id}],
            }
            if self._settings.org_role_boundary_arn:
                arguments["PermissionsBoundary"] = self._settings.org_role_boundary_arn
            role = self._iam.create_role(**arguments)["Role"]
        except self._iam.exceptions.EntityAlreadyExistsException:
            role = self._iam.get_role(RoleName=name)["Role"]
        self._iam.put_role_policy(RoleName=name, PolicyName=ROLE_POLICY_NAME, PolicyDocument=json.dumps(policy))
        return str(role["Arn"])
