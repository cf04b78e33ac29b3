"""Each organization's own telemetry store: a dedicated table and a role that reaches only it.

Provisioning an org creates its table (on demand, encrypted with the platform key, point-in-time
recovery, deletion protection, TTL on ``expiresAt``, tagged with the org) and its IAM role,
whose only permissions are on that table and which is bounded by the stack's permissions
boundary, so even a mistaken policy could not reach further. Telemetry code reaches the data
only by assuming that role. Deleting the org removes both.

In a multi-region deployment (``replica_regions``) the table becomes a global table (version
2019.11.21): a replica in each region, encrypted with that region's platform key (found by the
alias every stack gives it), with point-in-time recovery and deletion protection of its own; the
role may reach every replica, so the other regions' functions can assume it too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from spectra.config import MissingSetting, Settings
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
TABLE_WAIT = {"Delay": 2, "MaxAttempts": 60}
REPLICA_WAIT = {"Delay": 10, "MaxAttempts": 90}
"""A replica takes minutes to create (more with data): wait up to 15 minutes for each."""


@dataclass(frozen=True)
class TelemetryStore:
    table_name: str
    table_arn: str
    role_arn: str


def telemetry_table_name(settings: Settings, org_id: str) -> str:
    """The org's own telemetry table."""
    return f"{settings.telemetry_table_prefix}{require_guid(org_id, 'org id')}"


class TelemetryStores:
    """Creates and removes per-org telemetry tables and roles (provisioning only)."""

    def __init__(
        self,
        dynamodb: Any,
        iam: Any,
        settings: Settings,
        regional_dynamodb: Callable[[str], Any] | None = None,
    ) -> None:
        self._dynamodb = dynamodb
        self._iam = iam
        self._settings = settings
        self._regional_dynamodb = regional_dynamodb or _client_in_region

    def table_name(self, org_id: str) -> str:
        return telemetry_table_name(self._settings, org_id)

    def role_name(self, org_id: str) -> str:
        return f"{self._settings.org_role_prefix}{require_guid(org_id, 'org id')}"

    def create(self, org_id: str) -> TelemetryStore:
        """The org's table and role (idempotent: an existing one is reused)."""
        table_arn = self._create_table(org_id)
        role_arn = self._create_role(org_id, table_arn)
        return TelemetryStore(table_name=self.table_name(org_id), table_arn=table_arn, role_arn=role_arn)

    def delete(self, org_id: str) -> None:
        """Remove the org's role and table (deletion protection is lifted first, deliberately).

        Replicas go first, one at a time: a table that still has replicas cannot be deleted.
        """
        role = self.role_name(org_id)
        try:
            self._iam.delete_role_policy(RoleName=role, PolicyName=ROLE_POLICY_NAME)
            self._iam.delete_role(RoleName=role)
        except self._iam.exceptions.NoSuchEntityException:
            pass
        table = self.table_name(org_id)
        try:
            for region in self._replica_regions_of(table):
                self._regional_dynamodb(region).update_table(TableName=table, DeletionProtectionEnabled=False)
                self._dynamodb.update_table(TableName=table, ReplicaUpdates=[{"Delete": {"RegionName": region}}])
                self._wait_until_active(table)
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
                # Replication reads the stream; a single-region table needs none.
                **({"StreamSpecification": REPLICATION_STREAM} if self._settings.replica_regions else {}),
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
        self._wait_until_active(name)
        _protect(self._dynamodb, name)
        ttl = self._dynamodb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
        if ttl.get("TimeToLiveStatus") not in {"ENABLED", "ENABLING"}:
            self._dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": "expiresAt", "Enabled": True}
            )
        self._add_missing_replicas(name, description)
        return str(description["TableArn"])

    def _add_missing_replicas(self, name: str, description: dict[str, Any]) -> None:
        """A replica in each configured region that lacks one, each protected like the table itself."""
        if not self._settings.replica_regions:
            return
        stream = description.get("StreamSpecification") or {}
        if not stream.get("StreamEnabled") or stream.get("StreamViewType") != "NEW_AND_OLD_IMAGES":
            self._dynamodb.update_table(TableName=name, StreamSpecification=REPLICATION_STREAM)
            self._wait_until_active(name)
        existing = set(self._replica_regions_of(name))
        for region in self._settings.replica_regions:
            if region not in existing:
                # One replica per update: the table must be ACTIVE again before the next one.
                create = {"RegionName": region, "KMSMasterKeyId": self.replica_key_id(region)}
                self._dynamodb.update_table(TableName=name, ReplicaUpdates=[{"Create": create}])
            replica = self._regional_dynamodb(region)
            replica.get_waiter("table_exists").wait(TableName=name, WaiterConfig=REPLICA_WAIT)
            self._wait_until_active(name)
            _protect(replica, name)

    def replica_key_id(self, region: str) -> str:
        """The platform key of ``region``'s stack, by the alias every stack gives its key."""
        if not (self._settings.platform_key_alias and self._settings.platform_key_arn):
            raise MissingSetting("replica regions need PLATFORM_KEY_ALIAS and PLATFORM_KEY_ARN")
        _arn, partition, _service, _region, account, _resource = self._settings.platform_key_arn.split(":", 5)
        return f"arn:{partition}:kms:{region}:{account}:{self._settings.platform_key_alias}"

    def _replica_regions_of(self, name: str) -> list[str]:
        """The other regions that hold a replica of the table now."""
        table = self._dynamodb.describe_table(TableName=name)["Table"]
        home = self._dynamodb.meta.region_name
        return [str(r["RegionName"]) for r in table.get("Replicas", []) if r.get("RegionName") != home]

    def _wait_until_active(self, name: str) -> None:
        self._dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig=TABLE_WAIT)

    def _create_role(self, org_id: str, table_arn: str) -> str:
        name = self.role_name(org_id)
        _arn, partition, _service, _region, account, resource = table_arn.split(":", 5)
        replica_arns = [f"arn:{partition}:dynamodb:{r}:{account}:{resource}" for r in self._settings.replica_regions]
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
        policy: dict[str, Any] = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OnlyThisOrgsTelemetry",
                    "Effect": "Allow",
                    "Action": list(DATA_ACTIONS),
                    "Resource": [table_arn, *replica_arns] if replica_arns else table_arn,
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
        if replica_arns:
            policy["Statement"].append(
                {
                    "Sid": "ReplicaRegionPlatformKeysThroughDynamoDbOnly",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                    "Resource": [f"arn:{partition}:kms:{r}:{account}:key/*" for r in self._settings.replica_regions],
                    "Condition": {
                        "ForAnyValue:StringEquals": {"kms:ResourceAliases": self._settings.platform_key_alias},
                        "StringLike": {"kms:ViaService": "dynamodb.*.amazonaws.com"},
                    },
                }
            )
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


REPLICATION_STREAM = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


def _protect(dynamodb: Any, name: str) -> None:
    """Point-in-time recovery and deletion protection: per table, and per replica of a global table."""
    dynamodb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    if not dynamodb.describe_table(TableName=name)["Table"].get("DeletionProtectionEnabled"):
        dynamodb.update_table(TableName=name, DeletionProtectionEnabled=True)


def _client_in_region(region: str) -> Any:
    return boto3.client("dynamodb", region_name=region)
