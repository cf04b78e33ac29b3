"""How ``template.yaml`` hosts the API, read as data: private network, resource policies that
require it, WAF, CloudTrail, alarms and the functions' failure handling (no deployment needed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from spectra_local.template import TEMPLATE_PATH, Template

TEMPLATE = Template()
RESOURCES = TEMPLATE.resources
FUNCTIONS = TEMPLATE.of_type("AWS::Serverless::Function")
GLOBAL_FUNCTION: dict[str, Any] = TEMPLATE.document["Globals"]["Function"]
PLATFORM_KEY_ARN = {"Fn::GetAtt": ["PlatformKey", "Arn"]}
OPERATOR_ROLE = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${OperatorRoleName}"}
ALARMS_TOPIC = {"Ref": "OperatorAlarmsTopic"}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def vpc_config(logical_id: str) -> dict[str, Any]:
    """A function's VpcConfig as SAM merges Globals: lists are concatenated, other values replaced."""
    merged = dict(GLOBAL_FUNCTION.get("VpcConfig", {}))
    for key, value in FUNCTIONS[logical_id]["Properties"].get("VpcConfig", {}).items():
        both_lists = isinstance(value, list) and isinstance(merged.get(key), list)
        merged[key] = merged[key] + value if both_lists else value
    return merged


def security_group_ids(logical_id: str) -> list[str]:
    """The security groups a function wears (conditional ones included)."""
    ids = []
    for group in vpc_config(logical_id).get("SecurityGroupIds", []):
        if "Fn::If" in group:
            group = group["Fn::If"][1]
        ids.append(group["Ref"])
    return ids


FUNCTION_GROUPS = sorted({group for logical_id in FUNCTIONS for group in security_group_ids(logical_id)})


# -- private network --------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_runs_in_the_private_subnets(logical_id: str) -> None:
    config = vpc_config(logical_id)

    assert config["SubnetIds"] == {
        "Fn::If": ["CreateVpc", [ref("PrivateSubnetA"), ref("PrivateSubnetB")], ref("ExistingPrivateSubnetIds")]
    }
    assert security_group_ids(logical_id)[0] == "FunctionSecurityGroup"


def test_private_subnets_are_in_two_zones_and_hand_out_no_public_addresses() -> None:
    zones = []
    for subnet in ("PrivateSubnetA", "PrivateSubnetB"):
        properties = RESOURCES[subnet]["Properties"]
        assert properties["MapPublicIpOnLaunch"] is False
        zones.append(properties["AvailabilityZone"]["Fn::Select"][0])
        [association] = [
            r["Properties"]
            for r in TEMPLATE.of_type("AWS::EC2::SubnetRouteTableAssociation").values()
            if r["Properties"]["SubnetId"] == ref(subnet)
        ]
        assert association["RouteTableId"] == ref("PrivateRouteTable")

    assert sorted(zones) == [0, 1]


def test_private_subnets_reach_the_internet_only_through_the_nat_for_iam() -> None:
    routes = [
        r
        for r in TEMPLATE.of_type("AWS::EC2::Route").values()
        if r["Properties"]["RouteTableId"] == ref("PrivateRouteTable")
    ]

    assert [(r.get("Condition"), set(r["Properties"]) - {"RouteTableId", "DestinationCidrBlock"}) for r in routes] == [
        ("ProvisioningThroughNat", {"NatGatewayId"})
    ]


@pytest.mark.parametrize("group", FUNCTION_GROUPS)
def test_function_security_groups_admit_no_inbound_traffic(group: str) -> None:
    separate = [
        r
        for r in TEMPLATE.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == ref(group)
    ]

    assert "SecurityGroupIngress" not in RESOURCES[group]["Properties"]
    assert separate == []


def _egress(group: str) -> list[dict[str, Any]]:
    inline = as_list(RESOURCES[group]["Properties"].get("SecurityGroupEgress"))
    separate = [
        r["Properties"]
        for r in TEMPLATE.of_type("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == ref(group)
    ]
    return inline + separate


def test_functions_send_only_https_to_the_endpoints_and_dynamodb() -> None:
    destinations = []
    for rule in _egress("FunctionSecurityGroup"):
        assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
        assert rule["Description"]
        destinations.append({k: v for k, v in rule.items() if k.startswith(("Destination", "Cidr"))})

    assert sorted(destinations, key=str) == sorted(
        [
            {
                "DestinationPrefixListId": {
                    "Fn::If": [
                        "HasDynamoDbPrefixListId",
                        ref("DynamoDbPrefixListId"),
                        {"Fn::FindInMap": ["DynamoDbPrefixLists", ref("AWS::Region"), "Id"]},
                    ]
                }
            },
            {"DestinationSecurityGroupId": ref("EndpointSecurityGroup")},
            {"CidrIp": ref("ExistingVpcCidr")},
        ],
        key=str,
    )


def test_only_provisioning_may_reach_beyond_the_vpc_endpoints() -> None:
    wearers = [f for f in FUNCTIONS if "ProvisioningInternetSecurityGroup" in security_group_ids(f)]

    assert wearers == ["ProvisioningFunction"]
    assert RESOURCES["ProvisioningInternetSecurityGroup"]["Condition"] == "ProvisioningNeedsInternet"
    assert [(r["FromPort"], r["ToPort"]) for r in _egress("ProvisioningInternetSecurityGroup")] == [(443, 443)]


INTERFACE_SERVICES = {
    "StsEndpoint": "sts",
    "SecretsManagerEndpoint": "secretsmanager",
    "KmsEndpoint": "kms",
    "SqsEndpoint": "sqs",
    "LogsEndpoint": "logs",
    "XRayEndpoint": "xray",
    "ApiGatewayEndpoint": "apigateway",
}


@pytest.mark.parametrize(("logical_id", "service"), sorted(INTERFACE_SERVICES.items()))
def test_each_service_the_functions_call_has_a_private_interface_endpoint(logical_id: str, service: str) -> None:
    endpoint = RESOURCES[logical_id]["Properties"]

    assert endpoint["ServiceName"] == {"Fn::Sub": f"com.amazonaws.${{AWS::Region}}.{service}"}
    assert endpoint["VpcEndpointType"] == "Interface"
    assert endpoint["PrivateDnsEnabled"] is True
    assert endpoint["SubnetIds"] == [ref("PrivateSubnetA"), ref("PrivateSubnetB")]
    assert endpoint["SecurityGroupIds"] == [ref("EndpointSecurityGroup")]


def test_iam_has_its_endpoint_where_iam_allows_one() -> None:
    iam = RESOURCES["IamEndpoint"]
    condition = TEMPLATE.document["Conditions"]["IamEndpointInVpc"]

    assert iam["Properties"]["ServiceName"] == "com.amazonaws.iam"
    assert iam["Condition"] == "IamEndpointInVpc"
    assert {"Fn::Equals": [ref("AWS::Region"), "us-east-1"]} in condition["Fn::And"]


@pytest.mark.parametrize(("logical_id", "service"), [("DynamoDbEndpoint", "dynamodb"), ("S3Endpoint", "s3")])
def test_gateway_endpoints_serve_the_private_route_table(logical_id: str, service: str) -> None:
    endpoint = RESOURCES[logical_id]["Properties"]

    assert endpoint["ServiceName"] == {"Fn::Sub": f"com.amazonaws.${{AWS::Region}}.{service}"}
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert endpoint["RouteTableIds"] == [ref("PrivateRouteTable")]


def test_endpoints_admit_only_https_from_the_functions() -> None:
    ingress = RESOURCES["EndpointSecurityGroup"]["Properties"]["SecurityGroupIngress"]

    assert [(r["FromPort"], r["ToPort"], r["SourceSecurityGroupId"]) for r in ingress] == [
        (443, 443, ref("FunctionSecurityGroup"))
    ]


def test_integration_secrets_require_the_created_endpoint_unless_told_otherwise() -> None:
    variables = FUNCTIONS["IntegrationsFunction"]["Properties"]["Environment"]["Variables"]

    assert variables["SECRETS_VPC_ENDPOINT_ID"] == {
        "Fn::If": [
            "HasSecretsManagerVpcEndpointId",
            ref("SecretsManagerVpcEndpointId"),
            {"Fn::If": ["CreateVpc", ref("SecretsManagerEndpoint"), ""]},
        ]
    }


# -- resource policies: TLS only, through the VPC endpoint only --------------------------------

RESOURCE_POLICIES: dict[str, tuple[str, str]] = {
    logical_id: (service, endpoint)
    for type_, service, endpoint in [
        ("AWS::SQS::QueuePolicy", "sqs", "SqsEndpoint"),
        ("AWS::SecretsManager::ResourcePolicy", "secretsmanager", "SecretsManagerEndpoint"),
        ("AWS::S3::BucketPolicy", "s3", "S3Endpoint"),
    ]
    for logical_id in TEMPLATE.of_type(type_)
}
POLICY_EXCEPTIONS = {
    "RetentionDeadLetterQueuePolicy": [{"Fn::GetAtt": ["RetentionFunctionRole", "Arn"]}],
    "UsageIdentifierQueuePolicy": [{"Fn::GetAtt": ["UsageIdentifiersFunctionRole", "Arn"]}],
}
"""Roles AWS services act with from outside the VPC: Lambda's async DLQ and its SQS poller."""
DATA_ACTIONS = {
    "sqs": {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"},
    "secretsmanager": {"secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"},
    "s3": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
}


def policy_statements(logical_id: str) -> list[dict[str, Any]]:
    properties = RESOURCES[logical_id]["Properties"]
    document = properties.get("PolicyDocument") or properties["ResourcePolicy"]
    return list(document["Statement"])


def covered_resources(type_: str, reference: str) -> set[str]:
    """Logical ids that policies of ``type_`` name in ``reference`` (Queues, SecretId, Bucket)."""
    found = set()
    for policy in TEMPLATE.of_type(type_).values():
        for item in as_list(policy["Properties"][reference]):
            found.add(item["Ref"])
    return found


@pytest.mark.parametrize(
    ("resource_type", "policy_type", "reference"),
    [
        ("AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "Queues"),
        ("AWS::SecretsManager::Secret", "AWS::SecretsManager::ResourcePolicy", "SecretId"),
        ("AWS::S3::Bucket", "AWS::S3::BucketPolicy", "Bucket"),
    ],
)
def test_every_queue_secret_and_bucket_has_a_resource_policy(
    resource_type: str, policy_type: str, reference: str
) -> None:
    assert set(TEMPLATE.of_type(resource_type)) <= covered_resources(policy_type, reference)


@pytest.mark.parametrize("logical_id", sorted(RESOURCE_POLICIES))
def test_resource_policies_refuse_requests_without_tls(logical_id: str) -> None:
    service, _ = RESOURCE_POLICIES[logical_id]
    tls = [
        s
        for s in policy_statements(logical_id)
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]

    assert len(tls) == 1, logical_id
    assert tls[0]["Principal"] == "*"
    assert as_list(tls[0]["Action"]) == [f"{service}:*"]


def _vpc_statement(logical_id: str) -> dict[str, Any]:
    [statement] = [s for s in policy_statements(logical_id) if "StringNotEquals" in s.get("Condition", {})]
    return statement


@pytest.mark.parametrize("logical_id", sorted(RESOURCE_POLICIES))
def test_resource_policies_refuse_data_calls_from_outside_the_vpc_endpoint(logical_id: str) -> None:
    service, endpoint = RESOURCE_POLICIES[logical_id]
    statement = _vpc_statement(logical_id)
    condition = statement["Condition"]

    assert (statement["Effect"], statement["Principal"]) == ("Deny", "*")
    assert DATA_ACTIONS[service] <= set(as_list(statement["Action"]))
    assert condition["StringNotEquals"] == {
        "Fn::If": ["CreateVpc", {"aws:SourceVpce": ref(endpoint)}, {"aws:SourceVpc": ref("ExistingVpcId")}]
    }
    # AWS services acting as themselves never come through an endpoint (CloudTrail delivering).
    assert condition["Bool"] == {"aws:PrincipalIsAWSService": "false"}


@pytest.mark.parametrize("logical_id", sorted(RESOURCE_POLICIES))
def test_only_the_operator_role_and_documented_service_roles_skip_the_endpoint(logical_id: str) -> None:
    condition = _vpc_statement(logical_id)["Condition"]

    assert set(condition) == {"StringNotEquals", "Bool", "ArnNotEquals"}
    assert as_list(condition["ArnNotEquals"]["aws:PrincipalArn"]) == [
        OPERATOR_ROLE,
        *POLICY_EXCEPTIONS.get(logical_id, []),
    ]


@pytest.mark.parametrize("logical_id", sorted(RESOURCE_POLICIES))
def test_endpoint_rule_leaves_cloudformation_its_management_calls(logical_id: str) -> None:
    """Only data actions are denied: a wildcard would lock CloudFormation (outside the VPC) out."""
    actions = as_list(_vpc_statement(logical_id)["Action"])

    assert not any("*" in action for action in actions), actions


# -- WAF --------------------------------------------------------------------------------------

WEB_ACL = RESOURCES["WebAcl"]["Properties"]


def test_waf_runs_the_three_managed_rule_groups() -> None:
    groups = {
        rule["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for rule in WEB_ACL["Rules"]
        if "ManagedRuleGroupStatement" in rule["Statement"]
    }

    assert groups == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }


def test_waf_limits_each_ip_above_the_largest_plans_edge_rate() -> None:
    [rule] = [r for r in WEB_ACL["Rules"] if "RateBasedStatement" in r["Statement"]]
    statement = rule["Statement"]["RateBasedStatement"]
    largest_plan = max(
        p["Properties"]["Throttle"]["RateLimit"] for p in TEMPLATE.of_type("AWS::ApiGateway::UsagePlan").values()
    )
    default = TEMPLATE.parameter_defaults()["WafRateLimitPerIp"]

    assert rule["Action"] == {"Block": {}}
    assert (statement["AggregateKeyType"], statement["Limit"]) == ("IP", ref("WafRateLimitPerIp"))
    assert default >= largest_plan * statement["EvaluationWindowSec"]


def test_waf_metrics_are_on_for_the_acl_and_every_rule() -> None:
    for config in [WEB_ACL["VisibilityConfig"], *(rule["VisibilityConfig"] for rule in WEB_ACL["Rules"])]:
        assert config["CloudWatchMetricsEnabled"] is True


def test_waf_guards_the_api_stage() -> None:
    association = RESOURCES["WebAclAssociation"]

    assert association["DependsOn"] == "SpectraApiStage"
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    assert "/restapis/${SpectraApi}/stages/${Stage}" in association["Properties"]["ResourceArn"]["Fn::Sub"]


def test_waf_blocks_are_answered_in_problem_json_by_the_gateway() -> None:
    """No custom WAF response (its bodies cannot be problem+json): WAF_FILTERED answers instead."""
    filtered = RESOURCES["SpectraApi"]["Properties"]["GatewayResponses"]["WAF_FILTERED"]

    assert "CustomResponseBodies" not in WEB_ACL
    assert "CustomResponse" not in str(WEB_ACL["Rules"])
    assert filtered["ResponseParameters"]["Headers"]["Content-Type"] == "'application/problem+json'"


def test_waf_logs_never_hold_an_api_key() -> None:
    logging = RESOURCES["WafLogging"]["Properties"]
    group = RESOURCES["WafLogGroup"]["Properties"]

    assert {"SingleHeader": {"Name": "x-api-key"}} in logging["RedactedFields"]
    assert group["LogGroupName"]["Fn::Sub"].startswith("aws-waf-logs-")
    assert group["KmsKeyId"] == PLATFORM_KEY_ARN


# -- CloudTrail -------------------------------------------------------------------------------

TRAIL = RESOURCES["Trail"]["Properties"]


def test_trail_records_every_region_with_validated_encrypted_log_files() -> None:
    assert TRAIL["IsMultiRegionTrail"] is True
    assert TRAIL["IncludeGlobalServiceEvents"] is True
    assert TRAIL["EnableLogFileValidation"] is True
    assert TRAIL["IsLogging"] is True
    assert TRAIL["KMSKeyId"] == PLATFORM_KEY_ARN
    assert TRAIL["S3BucketName"] == ref("TrailBucket")


def test_platform_key_lets_cloudtrail_encrypt_only_trail_files() -> None:
    statements = RESOURCES["PlatformKey"]["Properties"]["KeyPolicy"]["Statement"]
    [encrypt] = [
        s
        for s in statements
        if s.get("Principal") == {"Service": "cloudtrail.amazonaws.com"}
        and "kms:GenerateDataKey*" in as_list(s["Action"])
    ]

    assert "kms:EncryptionContext:aws:cloudtrail:arn" in encrypt["Condition"]["StringLike"]
    assert "aws:SourceArn" in encrypt["Condition"]["StringEquals"]


@pytest.mark.parametrize("logical_id", ["TrailBucket", "TrailAccessLogsBucket"])
def test_trail_buckets_are_versioned_private_and_retained(logical_id: str) -> None:
    bucket = RESOURCES[logical_id]
    properties = bucket["Properties"]

    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert properties["LifecycleConfiguration"]["Rules"]


def test_trail_bucket_is_encrypted_with_the_platform_key_and_access_logged() -> None:
    properties = RESOURCES["TrailBucket"]["Properties"]
    [encryption] = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    assert encryption["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": PLATFORM_KEY_ARN,
    }
    assert properties["LoggingConfiguration"]["DestinationBucketName"] == ref("TrailAccessLogsBucket")


def test_only_this_stacks_trail_may_write_to_the_trail_bucket() -> None:
    allows = [s for s in policy_statements("TrailBucketPolicy") if s["Effect"] == "Allow"]

    assert {s["Principal"]["Service"] for s in allows} == {"cloudtrail.amazonaws.com"}
    assert all("aws:SourceArn" in s["Condition"]["StringEquals"] for s in allows)


# -- alarms -----------------------------------------------------------------------------------

ALARMS = TEMPLATE.of_type("AWS::CloudWatch::Alarm")


def alarm_metrics(alarm: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(namespace, metric, dimensions) of a plain alarm and of every MetricStat of a math alarm."""
    properties = alarm["Properties"]
    if "MetricName" in properties:
        yield properties["Namespace"], properties["MetricName"], properties.get("Dimensions", [])
    for query in properties.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            yield metric["Namespace"], metric["MetricName"], metric.get("Dimensions", [])


def alarms_on(namespace: str, metric: str, dimension: dict[str, Any] | None = None) -> list[str]:
    return [
        logical_id
        for logical_id, alarm in ALARMS.items()
        for ns, name, dimensions in alarm_metrics(alarm)
        if (ns, name) == (namespace, metric) and (dimension is None or dimension in dimensions)
    ]


def alarms_querying(text: str) -> list[str]:
    return [
        logical_id
        for logical_id, alarm in ALARMS.items()
        for query in alarm["Properties"].get("Metrics", [])
        if text in str(query.get("Expression", ""))
    ]


def dead_letter_queues() -> set[str]:
    """Every queue something dead-letters into: SQS redrive targets and Lambda async DLQs."""
    queues = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in TEMPLATE.of_type("AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    }
    functions = {
        f["Properties"]["DeadLetterQueue"]["TargetArn"]["Fn::GetAtt"][0]
        for f in FUNCTIONS.values()
        if "DeadLetterQueue" in f["Properties"]
    }
    return queues | functions


REQUIRED_ALARMS: dict[str, list[str]] = {
    "api-5xx-rate": alarms_on("AWS/ApiGateway", "5XXError"),
    "authorizer-errors": alarms_on(
        "AWS/Lambda", "Errors", {"Name": "FunctionName", "Value": ref("AuthorizerFunction")}
    ),
    "function-throttles": alarms_querying("SUM(Throttles)"),
    "retention-errors": alarms_on("AWS/Lambda", "Errors", {"Name": "FunctionName", "Value": ref("RetentionFunction")}),
    "audit-append-failed": alarms_querying("SUM(AuditAppendFailed) FROM SCHEMA(Spectra, service)"),
    "audit-chain-broken": alarms_querying("SUM(AuditChainBroken) FROM SCHEMA(Spectra, service)"),
    **{
        f"dead-letters-{queue}": alarms_on(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}},
        )
        for queue in sorted(dead_letter_queues())
    },
}


@pytest.mark.parametrize("name", sorted(REQUIRED_ALARMS))
def test_operators_are_alarmed(name: str) -> None:
    [logical_id] = REQUIRED_ALARMS[name]
    properties = ALARMS[logical_id]["Properties"]

    assert properties["AlarmActions"] == [ALARMS_TOPIC]
    assert properties["TreatMissingData"] == "notBreaching"


def test_every_dead_letter_queue_is_one_of_three_known() -> None:
    """Guards the DLQ rows above: they exist because the template has dead-letter queues."""
    assert dead_letter_queues() == {
        "ThingEventsDeadLetterQueue",
        "RetentionDeadLetterQueue",
        "UsageIdentifierDeadLetterQueue",
    }


def test_api_5xx_alarm_fires_on_a_rate_not_a_count() -> None:
    [logical_id] = REQUIRED_ALARMS["api-5xx-rate"]
    properties = ALARMS[logical_id]["Properties"]
    [expression] = [m["Expression"] for m in properties["Metrics"] if m.get("ReturnData")]

    assert "errors / requests" in expression
    assert properties["Threshold"] == 1  # percent


def test_throttle_alarm_watches_every_function() -> None:
    [logical_id] = REQUIRED_ALARMS["function-throttles"]
    [query] = ALARMS[logical_id]["Properties"]["Metrics"]

    assert set(re.findall(r"'\$\{(\w+)\}'", query["Expression"]["Fn::Sub"])) == set(FUNCTIONS)


@pytest.mark.parametrize("name", ["audit-append-failed", "audit-chain-broken"])
def test_audit_alarms_are_shaped_like_the_rate_limiter_alarm(name: str) -> None:
    [logical_id] = REQUIRED_ALARMS[name]
    model = ALARMS["RateLimiterUnavailableAlarm"]["Properties"]
    properties = ALARMS[logical_id]["Properties"]
    shape = ("EvaluationPeriods", "Threshold", "ComparisonOperator", "TreatMissingData", "AlarmActions")

    assert {k: properties[k] for k in shape} == {k: model[k] for k in shape}
    assert properties["Metrics"][0]["Period"] == model["Metrics"][0]["Period"]


def test_operator_topic_is_encrypted_with_the_platform_key() -> None:
    assert RESOURCES["OperatorAlarmsTopic"]["Properties"]["KmsMasterKeyId"] == ref("PlatformKey")


# -- functions: failures, concurrency, audit retention ----------------------------------------

ASYNC_EVENT_TYPES = {"Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent", "SNS", "S3", "SQS_ASYNC"}


@pytest.mark.parametrize(
    "logical_id",
    sorted(
        f
        for f, r in FUNCTIONS.items()
        if {e["Type"] for e in r["Properties"].get("Events", {}).values()} & ASYNC_EVENT_TYPES
    ),
)
def test_async_invoked_functions_keep_their_failures(logical_id: str) -> None:
    properties = FUNCTIONS[logical_id]["Properties"]
    on_failure = properties.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure")

    assert properties.get("DeadLetterQueue") or on_failure


@pytest.mark.parametrize("logical_id", ["RetentionFunction", "ProvisioningFunction", "UsageIdentifiersFunction"])
def test_platform_workers_have_reserved_concurrency(logical_id: str) -> None:
    assert FUNCTIONS[logical_id]["Properties"]["ReservedConcurrentExecutions"] >= 1


def test_every_function_knows_the_audit_retention() -> None:
    parameter = TEMPLATE.document["Parameters"]["AuditRetentionDays"]

    assert GLOBAL_FUNCTION["Environment"]["Variables"]["AUDIT_RETENTION_DAYS"] == ref("AuditRetentionDays")
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (400, 30, 3653)


def test_sts_calls_use_the_regional_endpoint_the_vpc_serves() -> None:
    assert GLOBAL_FUNCTION["Environment"]["Variables"]["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"


@pytest.mark.parametrize("logical_id", sorted(TEMPLATE.of_type("AWS::Logs::LogGroup")))
def test_every_log_group_keeps_logs_for_the_configured_retention(logical_id: str) -> None:
    properties = RESOURCES[logical_id]["Properties"]

    assert properties["RetentionInDays"] == ref("LogRetentionDays")
    assert properties["KmsKeyId"] == PLATFORM_KEY_ARN


# -- skipped and suppressed checks carry their reasons ----------------------------------------


def checkov_skips() -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in RESOURCES.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            yield logical_id, skip


@pytest.mark.parametrize(
    ("logical_id", "skip"), list(checkov_skips()), ids=lambda v: v if isinstance(v, str) else v["id"]
)
def test_every_checkov_skip_says_why_here_and_in_the_template_list(logical_id: str, skip: dict[str, Any]) -> None:
    listed = TEMPLATE.document["Metadata"]["SkippedChecks"]["checkov"]

    assert str(skip.get("comment", "")).strip(), logical_id
    assert skip["id"] in listed


def test_every_guard_suppression_says_why() -> None:
    """Each rule under ``SuppressedRules`` follows a comment line (YAML keeps no other place for it)."""
    lines = TEMPLATE_PATH.read_text(encoding="utf-8").splitlines()
    suppressed = 0
    for number, line in enumerate(lines):
        if line.strip() != "SuppressedRules:":
            continue
        indent = len(line) - len(line.lstrip())
        for previous, current in zip(lines[number:], lines[number + 1 :], strict=False):
            if not current.strip() or len(current) - len(current.lstrip()) <= indent:
                break
            if current.strip().startswith("- "):
                suppressed += 1
                assert previous.strip().startswith("#"), f"line {lines.index(current) + 1}: {current.strip()}"

    assert suppressed >= 1
