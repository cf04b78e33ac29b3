"""Multi-region: global tables that follow ``ReplicaRegions``, one owning stack, and org telemetry
tables with a protected replica in each replica region. Read as data: the template resolved for
each deployment, and provisioning run under moto.

moto ignores ``UpdateTable(ReplicaUpdates=...)``, so DynamoDB's replication is played here by
hooks on the provisioning session: a Create makes the replica table in its region (as DynamoDB
would), a Delete removes it, and ``DescribeTable`` lists the replicas.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import uuid
from typing import Any

import boto3
import pytest

from spectra.telemetry_store import TelemetryStores
from spectra_local.aws import pseudo_parameters
from spectra_local.stack import LocalStack
from spectra_local.template import REPO_ROOT, IntrinsicResolver, Template
from tests.integration.factories import provisioning_settings

TEMPLATE = Template()
TABLES = TEMPLATE.of_type("AWS::DynamoDB::GlobalTable")
TABLE_IDS = ("RecordsTable", "IdempotencyTable", "AuditTable", "RateLimitTable")


def deployed(region: str, **parameters: Any) -> IntrinsicResolver:
    """The template's values for one stack: its region and parameter overrides (with conditions)."""
    refs = {**pseudo_parameters(region), **TEMPLATE.parameter_defaults(), **parameters}
    refs.update({"PlatformKey": "key-id", "PlatformKeyAlias": "alias/spectra-prod"})
    resolver = IntrinsicResolver(refs=refs, attributes={("PlatformKey", "Arn"): f"arn:aws:kms:{region}:1:key/k"})
    resolver.evaluate_conditions(TEMPLATE.conditions())
    return resolver


def samconfig_overrides(environment: str) -> tuple[str, dict[str, Any]]:
    """An environment's region and parameter overrides, as ``sam deploy --config-env`` reads them."""
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))[environment]
    overrides = config["deploy"]["parameters"]["parameter_overrides"]
    parameters: dict[str, Any] = {}
    for assignment in overrides.split():
        name, value = assignment.split("=", 1)
        value = json.loads(value)
        declared = TEMPLATE.document["Parameters"][name]
        parameters[name] = value.split(",") if declared["Type"] == "CommaDelimitedList" else value
    return str(config["global"]["parameters"]["region"]), parameters


# -- operational tables: global tables, one owner ------------------------------------------------


def test_the_operational_tables_are_global_tables_with_fixed_names() -> None:
    assert sorted(TABLES) == sorted(TABLE_IDS)
    names = {TABLES[t]["Properties"]["TableName"]["Fn::Sub"] for t in TABLE_IDS}
    assert names == {f"spectra-${{Stage}}-{n}" for n in ("records", "idempotency", "audit", "rate-limits")}
    for table in TABLES.values():
        assert table["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
        assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}


@pytest.mark.parametrize(
    "replica_regions", [[""], ["eu-west-1"], ["eu-west-1", "ap-southeast-2"]], ids=["one-region", "one", "two"]
)
@pytest.mark.parametrize("logical_id", TABLE_IDS)
def test_replicas_follow_the_replica_regions_parameter(logical_id: str, replica_regions: list[str]) -> None:
    stack = deployed("us-east-1", ReplicaRegions=replica_regions)

    replicas = stack.resolve(TABLES[logical_id]["Properties"]["Replicas"])

    others = [region for region in replica_regions if region]
    assert [replica["Region"] for replica in replicas] == ["us-east-1", *others]
    assert [replica["SSESpecification"]["KMSMasterKeyId"] for replica in replicas] == [
        "arn:aws:kms:us-east-1:1:key/k",
        *(f"arn:aws:kms:{region}:123456789012:alias/spectra-prod" for region in others),
    ]
    for replica in replicas:
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert replica["DeletionProtectionEnabled"] is True


def test_a_secondary_region_stack_creates_no_table_and_names_the_replicas() -> None:
    stack = deployed("eu-west-1", PrimaryRegion="us-east-1")

    assert not any(stack.holds(TABLES[t]["Condition"]) for t in TABLE_IDS)
    environment = TEMPLATE.document["Globals"]["Function"]["Environment"]["Variables"]
    assert stack.resolve(environment["RECORDS_TABLE"]) == "spectra-dev-records"
    assert stack.resolve(environment["AUDIT_TABLE"]) == "spectra-dev-audit"


def test_nothing_refers_to_a_table_resource_a_secondary_stack_lacks() -> None:
    """Every reference to the tables is by name, so it resolves where the stack owns none."""
    outside = {lid: r for lid, r in TEMPLATE.document["Resources"].items() if lid not in TABLE_IDS}
    text = json.dumps([outside, TEMPLATE.document.get("Globals"), TEMPLATE.document.get("Outputs")])

    for logical_id in TABLE_IDS:
        assert json.dumps({"Ref": logical_id}) not in text
        assert f'["{logical_id}", ' not in text  # GetAtt
        assert f"${{{logical_id}." not in text  # Sub


def test_samconfig_prod_owns_the_tables_with_a_replica_where_prod_eu_runs() -> None:
    primary_region, primary = samconfig_overrides("prod")
    secondary_region, secondary = samconfig_overrides("prod-eu")
    owner, other = deployed(primary_region, **primary), deployed(secondary_region, **secondary)

    assert other.refs["PrimaryRegion"] == primary_region
    assert (owner.holds("OwnsTables"), other.holds("OwnsTables")) == (True, False)
    replicas = owner.resolve(TABLES["RecordsTable"]["Properties"]["Replicas"])
    assert [replica["Region"] for replica in replicas] == [primary_region, secondary_region]


def test_the_local_runtime_builds_each_global_table_as_a_recoverable_table(stack: LocalStack) -> None:
    dynamodb = boto3.client("dynamodb")
    for variable in ("RECORDS_TABLE", "IDEMPOTENCY_TABLE", "AUDIT_TABLE", "RATE_LIMIT_TABLE"):
        name = stack.environment("api_keys")[variable]
        backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED", name
    records = dynamodb.describe_table(TableName=stack.environment("api_keys")["RECORDS_TABLE"])["Table"]
    assert {index["IndexName"] for index in records["GlobalSecondaryIndexes"]} == {"gsi1", "gsi2", "credentials"}


# -- org telemetry tables ------------------------------------------------------------------------


class Replication:
    """DynamoDB's replication for tables that moto cannot replicate (see the module docstring)."""

    def __init__(self, session: boto3.Session, home: str) -> None:
        self.home = home
        self.updates: list[dict[str, Any]] = []
        self.replicas: dict[str, list[str]] = {}
        session.events.register("before-parameter-build.dynamodb.UpdateTable", self._update)
        session.events.register("after-call.dynamodb.DescribeTable", self._describe)

    def _update(self, params: dict[str, Any], **_: Any) -> None:
        name = params["TableName"]
        for update in params.get("ReplicaUpdates", []):
            self.updates.append(update)
            if "Create" in update:
                region = update["Create"]["RegionName"]
                source = boto3.client("dynamodb", region_name=self.home).describe_table(TableName=name)["Table"]
                boto3.client("dynamodb", region_name=region).create_table(
                    TableName=name,
                    KeySchema=source["KeySchema"],
                    AttributeDefinitions=source["AttributeDefinitions"],
                    BillingMode="PAY_PER_REQUEST",
                    SSESpecification={
                        "Enabled": True,
                        "SSEType": "KMS",
                        "KMSMasterKeyId": update["Create"]["KMSMasterKeyId"],
                    },
                )
                self.replicas.setdefault(name, []).append(region)
            if "Delete" in update:
                region = update["Delete"]["RegionName"]
                boto3.client("dynamodb", region_name=region).delete_table(TableName=name)
                self.replicas[name].remove(region)

    def _describe(self, parsed: dict[str, Any], **_: Any) -> None:
        table = parsed.get("Table", {})
        regions = self.replicas.get(table.get("TableName", ""))
        if regions:
            table["Replicas"] = [{"RegionName": r, "ReplicaStatus": "ACTIVE"} for r in [self.home, *regions]]


def stores_in(stack: LocalStack, *replica_regions: str) -> tuple[TelemetryStores, Replication]:
    session = boto3.Session(region_name=stack.region)
    replication = Replication(session, stack.region)
    settings = dataclasses.replace(provisioning_settings(stack), replica_regions=replica_regions)
    stores = TelemetryStores(
        session.client("dynamodb"),
        session.client("iam"),
        settings,
        regional_dynamodb=lambda region: session.client("dynamodb", region_name=region),
    )
    return stores, replication


def test_a_single_region_org_table_has_no_replica(stack: LocalStack) -> None:
    stores, replication = stores_in(stack)
    org_id = str(uuid.uuid4())

    created = stores.create(org_id)

    table = boto3.client("dynamodb").describe_table(TableName=created.table_name)["Table"]
    assert replication.updates == []
    assert "Replicas" not in table
    assert not table.get("StreamSpecification", {}).get("StreamEnabled")


def test_a_multi_region_org_table_has_a_protected_replica_in_each_region(stack: LocalStack) -> None:
    stores, replication = stores_in(stack, "eu-west-1", "ap-southeast-2")
    org_id = str(uuid.uuid4())

    created = stores.create(org_id)

    alias = provisioning_settings(stack).platform_key_alias
    assert alias == "alias/spectra-dev"
    assert replication.updates == [
        {"Create": {"RegionName": region, "KMSMasterKeyId": f"arn:aws:kms:{region}:123456789012:{alias}"}}
        for region in ("eu-west-1", "ap-southeast-2")
    ]
    home = boto3.client("dynamodb").describe_table(TableName=created.table_name)["Table"]
    assert home["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    for region in ("eu-west-1", "ap-southeast-2"):
        replica = boto3.client("dynamodb", region_name=region)
        assert replica.describe_table(TableName=created.table_name)["Table"]["DeletionProtectionEnabled"] is True
        recovery = replica.describe_continuous_backups(TableName=created.table_name)["ContinuousBackupsDescription"]
        assert recovery["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_the_org_role_reaches_its_table_in_every_region_and_nothing_else(stack: LocalStack) -> None:
    stores, _ = stores_in(stack, "eu-west-1")
    org_id = str(uuid.uuid4())

    created = stores.create(org_id)

    policy = boto3.client("iam").get_role_policy(RoleName=stores.role_name(org_id), PolicyName="OrgTelemetryTable")
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert statements["OnlyThisOrgsTelemetry"]["Resource"] == [
        created.table_arn,
        created.table_arn.replace(f":{stack.region}:", ":eu-west-1:"),
    ]
    replica_keys = statements["ReplicaRegionPlatformKeysThroughDynamoDbOnly"]
    assert replica_keys["Resource"] == ["arn:aws:kms:eu-west-1:123456789012:key/*"]
    assert replica_keys["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": "alias/spectra-dev"}


def test_creating_again_adds_only_the_missing_replicas(stack: LocalStack) -> None:
    stores, replication = stores_in(stack, "eu-west-1")
    org_id = str(uuid.uuid4())
    stores.create(org_id)

    stores.create(org_id)

    assert [update["Create"]["RegionName"] for update in replication.updates] == ["eu-west-1"]


def test_deleting_a_multi_region_org_removes_its_replicas_then_its_table(stack: LocalStack) -> None:
    stores, replication = stores_in(stack, "eu-west-1")
    org_id = str(uuid.uuid4())
    created = stores.create(org_id)

    stores.delete(org_id)

    assert replication.updates[-1] == {"Delete": {"RegionName": "eu-west-1"}}
    for region in (stack.region, "eu-west-1"):
        assert created.table_name not in boto3.client("dynamodb", region_name=region).list_tables()["TableNames"]
