"""Create the template's AWS resources on a moto backend and say what they are called.

Tables (keys, indexes, TTL), the KMS key, secrets (with generated values), queues, API Gateway
usage plans and IAM roles are made from their template properties; the returned resolver maps
``!Ref`` and ``!GetAtt`` to the local names and ARNs, so function environments resolve exactly
as CloudFormation would resolve them.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

import boto3

from spectra_local.template import IntrinsicResolver, Template

ACCOUNT_ID = "123456789012"


def pseudo_parameters(region: str) -> dict[str, str]:
    return {
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Region": region,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": "spectra-local",
        "AWS::NoValue": "",
    }


def _generated_secret(spec: dict[str, Any]) -> str:
    length = int(spec.get("PasswordLength", 32))
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    return "".join(secrets.choice(alphabet) for _ in range(length))


TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
"""A global table is made here as one plain table: the local runtime is a single region."""


def table_definition(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """``create_table`` arguments for a template table (keys, attributes, indexes, billing, stream)."""
    definition: dict[str, Any] = {
        "TableName": name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if properties.get("GlobalSecondaryIndexes"):
        definition["GlobalSecondaryIndexes"] = [
            {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
            for i in properties["GlobalSecondaryIndexes"]
        ]
    if properties.get("StreamSpecification"):
        definition["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    return definition


def _has_point_in_time_recovery(properties: dict[str, Any]) -> bool:
    """PITR as a table declares it, or as a global table's replicas do (every replica alike)."""
    specifications = [properties.get("PointInTimeRecoverySpecification")] + [
        replica.get("PointInTimeRecoverySpecification")
        for replica in properties.get("Replicas", [])
        if isinstance(replica, dict) and "Region" in replica
    ]
    return any(spec and spec.get("PointInTimeRecoveryEnabled") is True for spec in specifications)


def materialize(template: Template, *, region: str, prefix: str = "spectra-local") -> IntrinsicResolver:
    """Create the template's data resources in the current (moto) AWS and return the resolver."""
    resolver = IntrinsicResolver(refs={**pseudo_parameters(region), **template.parameter_defaults()})
    resolver.evaluate_conditions(template.conditions())
    kms = boto3.client("kms", region_name=region)
    for logical_id in template.of_type("AWS::KMS::Key"):
        key = kms.create_key(Description=f"{prefix} {logical_id}")["KeyMetadata"]
        resolver.refs[logical_id] = key["KeyId"]
        resolver.attributes[(logical_id, "Arn")] = key["Arn"]
    for logical_id, resource in template.of_type("AWS::KMS::Alias").items():
        alias = resolver.resolve(resource["Properties"])
        kms.create_alias(AliasName=alias["AliasName"], TargetKeyId=alias["TargetKeyId"])
        resolver.refs[logical_id] = alias["AliasName"]

    dynamodb = boto3.client("dynamodb", region_name=region)
    tables = {lid: r for table_type in TABLE_TYPES for lid, r in template.of_type(table_type).items()}
    for logical_id, resource in tables.items():
        if "Condition" in resource and not resolver.holds(resource["Condition"]):
            continue
        properties = resource["Properties"]
        # Named as the template names it (functions find tables by those names), else by logical id.
        name = str(resolver.resolve(properties["TableName"])) if "TableName" in properties else f"{prefix}-{logical_id}"
        description = dynamodb.create_table(**table_definition(name, properties))["TableDescription"]
        if _has_point_in_time_recovery(properties):  # so `spectra restore --local` has a window
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = description["TableArn"]
        if description.get("LatestStreamArn"):
            resolver.attributes[(logical_id, "StreamArn")] = description["LatestStreamArn"]

    secretsmanager = boto3.client("secretsmanager", region_name=region)
    for logical_id, resource in template.of_type("AWS::SecretsManager::Secret").items():
        properties = resource.get("Properties", {})
        value = properties.get("SecretString") or _generated_secret(properties.get("GenerateSecretString", {}))
        created = secretsmanager.create_secret(Name=f"{prefix}/{logical_id}", SecretString=str(value))
        resolver.refs[logical_id] = created["ARN"]

    sqs = boto3.client("sqs", region_name=region)
    queues = template.of_type("AWS::SQS::Queue")
    for logical_id, resource in queues.items():
        fifo = bool(resource.get("Properties", {}).get("FifoQueue"))
        name = f"{prefix}-{logical_id}" + (".fifo" if fifo else "")
        attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "false"} if fifo else {}
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        resolver.refs[logical_id] = url
        resolver.attributes[(logical_id, "Arn")] = arn
        resolver.attributes[(logical_id, "QueueName")] = name
    for logical_id, resource in queues.items():  # redrive once every queue exists
        redrive = resource.get("Properties", {}).get("RedrivePolicy")
        if redrive:
            sqs.set_queue_attributes(
                QueueUrl=resolver.refs[logical_id],
                Attributes={"RedrivePolicy": json.dumps(resolver.resolve(redrive))},
            )

    apigateway: Any = boto3.client("apigateway", region_name=region)
    for logical_id, resource in template.of_type("AWS::ApiGateway::UsagePlan").items():
        properties = resource["Properties"]
        throttle, quota = properties.get("Throttle", {}), properties.get("Quota")
        plan = apigateway.create_usage_plan(
            name=str(resolver.resolve(properties["UsagePlanName"])),
            throttle={"rateLimit": float(throttle["RateLimit"]), "burstLimit": int(throttle["BurstLimit"])},
            **({"quota": {"limit": int(quota["Limit"]), "period": str(quota["Period"])}} if quota else {}),
        )
        resolver.refs[logical_id] = plan["id"]

    iam = boto3.client("iam", region_name=region)
    for logical_id, resource in template.of_type("AWS::IAM::ManagedPolicy").items():
        document = resolver.resolve(resource["Properties"]["PolicyDocument"])
        policy = iam.create_policy(PolicyName=f"{prefix}-{logical_id}", PolicyDocument=json.dumps(document))
        resolver.refs[logical_id] = policy["Policy"]["Arn"]
    for logical_id, resource in template.of_type("AWS::IAM::Role").items():
        properties = resolver.resolve(resource["Properties"])
        role = iam.create_role(
            RoleName=f"{prefix}-{logical_id}"[:64],
            AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"]),
        )["Role"]
        for policy in properties.get("Policies", []):
            iam.put_role_policy(
                RoleName=role["RoleName"],
                PolicyName=policy["PolicyName"],
                PolicyDocument=json.dumps(policy["PolicyDocument"]),
            )
        resolver.refs[logical_id] = role["RoleName"]
        resolver.attributes[(logical_id, "Arn")] = role["Arn"]
    return resolver


def function_environment(template: Template, folder: str, resolver: IntrinsicResolver) -> dict[str, str]:
    """A function's environment variables exactly as the template gives them, resolved locally."""
    spec = template.function_by_folder(folder)
    resolved = {}
    for name, value in spec.environment.items():
        try:
            resolved[name] = str(resolver.resolve(value))
        except ValueError:
            continue  # resources the local runtime does not create (e.g. usage plans) stay unset
    return resolved
