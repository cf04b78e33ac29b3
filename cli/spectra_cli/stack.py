"""Find a deployed Spectra stack's resources from its CloudFormation outputs."""

from __future__ import annotations

import json
from typing import Any

import boto3

from spectra.config import Settings

REQUIRED_OUTPUTS = (
    "RecordsTableName",
    "IdempotencyTableName",
    "OrgDataRoleArn",
    "ApiKeyPepperSecretArn",
    "PageTokenSecretArn",
)


class StackNotReady(RuntimeError):
    """The stack is missing, or lacks an output this CLI needs."""


def scheduled_function_name(session: boto3.Session, stack_name: str, function: str) -> str:
    """The deployed name of a function folder (``retention`` → the ``RetentionFunction`` resource)."""
    logical_id = "".join(part.capitalize() for part in function.split("_")) + "Function"
    client: Any = session.client("cloudformation")
    try:
        resource = client.describe_stack_resource(StackName=stack_name, LogicalResourceId=logical_id)
    except client.exceptions.ClientError as error:
        raise StackNotReady(f"stack {stack_name!r} has no function {function!r}: {error}") from error
    return str(resource["StackResourceDetail"]["PhysicalResourceId"])


def settings_from_stack(session: boto3.Session, stack_name: str) -> Settings:
    """The deployment's settings, as its functions see them, read from the stack outputs."""
    client: Any = session.client("cloudformation")
    try:
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    except client.exceptions.ClientError as error:
        raise StackNotReady(f"stack {stack_name!r} not found: {error}") from error
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
    if missing:
        raise StackNotReady(f"stack {stack_name!r} has no output(s): {', '.join(missing)}")
    return Settings(
        records_table=outputs["RecordsTableName"],
        idempotency_table=outputs["IdempotencyTableName"],
        org_data_role_arn=outputs["OrgDataRoleArn"],
        api_key_pepper_secret_arn=outputs["ApiKeyPepperSecretArn"],
        page_token_secret_arn=outputs["PageTokenSecretArn"],
        usage_plan_ids=json.loads(outputs.get("UsagePlanIds", "{}")),
        usage_identifier_queue_url=outputs.get("UsageIdentifierQueueUrl", ""),
        rate_limit_table=outputs.get("RateLimitTableName", ""),
        audit_table=outputs.get("AuditTableName", ""),
        audit_retention_days=int(outputs.get("AuditRetentionDays", "400")),
        telemetry_table_prefix=outputs.get("TelemetryTablePrefix", ""),
        org_role_prefix=outputs.get("OrgRolePrefix", ""),
        org_role_boundary_arn=outputs.get("OrgRoleBoundaryArn", ""),
        org_role_trusted_principals=tuple(json.loads(outputs.get("OrgRoleTrustedPrincipals", "[]"))),
        platform_key_arn=outputs.get("PlatformKeyArn", ""),
        platform_key_alias=outputs.get("PlatformKeyAlias", ""),
        replica_regions=tuple(region for region in outputs.get("ReplicaRegions", "").split(",") if region),
    )
