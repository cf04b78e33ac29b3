"""``spectra restore``, end to end on the local stack: restore to a new table, verify, copy one org back.

moto's point-in-time restore copies the table as it is *now*, whatever the time asked for. So
what happened "after the restore point" is played out after the restore call returns (a hook on
the CLI's session, or edits before ``copy_org_back``): the copy-back must then bring exactly the
org's restored items back and leave every other org's items as they are.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from spectra.backups import TableRestorer
from spectra.config import Settings
from spectra.telemetry_store import telemetry_table_name
from spectra.tenancy.context import OrgContext
from spectra.tenancy.keys import org_prefix, org_profile_key
from spectra_cli import main as cli
from spectra_local.stack import LocalStack
from tests.integration.factories import (
    Org,
    create_admin_key,
    provisioning_settings,
    records_table,
    revoke,
    stored_key_record,
)
from tests.integration.place_factories import make_site

Item = dict[str, Any]


def as_item(key: dict[str, str]) -> Item:
    return {name: {"S": value} for name, value in key.items()}


def org_items(table: str, org_id: str) -> dict[str, Item]:
    """The org's items in a records-like table, by their key (tests may Scan; the product never does)."""
    found: dict[str, Item] = {}
    for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if item["pk"]["S"].startswith(org_prefix(OrgContext.for_operator(org_id))):
                found[item["pk"]["S"] + "|" + item["sk"]["S"]] = item
    return found


def every_item(table: str) -> list[Item]:
    items: list[Item] = []
    for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    return items


def profile_key(org_id: str) -> Item:
    return as_item(org_profile_key(OrgContext.for_operator(org_id)))


def rename_profile(table: str, org_id: str, name: str) -> None:
    boto3.client("dynamodb").update_item(
        TableName=table,
        Key=profile_key(org_id),
        UpdateExpression="SET #n = :n",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": name}},
    )


def stored_name(table: str, org_id: str) -> str:
    return str(boto3.client("dynamodb").get_item(TableName=table, Key=profile_key(org_id))["Item"]["name"]["S"])


def run_restore(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, Any]:
    code = cli.main(["restore", *argv, "--local"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out or "null"), json.loads(captured.err or "null")


@pytest.fixture
def cli_session(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    """The session and settings ``spectra restore --local`` acts with, on the test's stack."""
    session = boto3.Session(region_name=stack.region)
    settings = provisioning_settings(stack)
    monkeypatch.setattr(cli, "_settings_and_session", lambda _args: (settings, session))
    return session


@pytest.fixture
def after_the_restore_point(cli_session: boto3.Session) -> list[Any]:
    """Changes to run right after the restore call returns: "later" than the restored time."""
    changes: list[Any] = []

    def apply(**_: Any) -> None:
        for change in changes:
            change()

    cli_session.events.register("after-call.dynamodb.RestoreTableToPointInTime", apply)
    return changes


def restorer(stack: LocalStack, settings: Settings | None = None) -> TableRestorer:
    return TableRestorer(boto3.client("dynamodb"), settings or provisioning_settings(stack))


def now() -> datetime:
    return datetime.now(UTC)


# -- whole-table restore ------------------------------------------------------------------------


def test_restore_makes_a_new_protected_table_holding_every_item(stack: LocalStack, org: Org) -> None:
    table = records_table(stack)

    restored = restorer(stack).restore(table, now())

    dynamodb = boto3.client("dynamodb")
    description = dynamodb.describe_table(TableName=restored.restored_table)["Table"]
    backups = dynamodb.describe_continuous_backups(TableName=restored.restored_table)["ContinuousBackupsDescription"]
    assert restored.restored_table.startswith(f"{table}-restore-")
    assert description["TableStatus"] == "ACTIVE"
    assert description["DeletionProtectionEnabled"] is True
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert restored.restored_items == len(every_item(table)) > 0
    assert restored.org is None


def test_cli_restore_prints_the_new_table_and_its_count(
    stack: LocalStack, org: Org, cli_session: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    code, printed, _ = run_restore(capsys, "--table", "records", "--to", now().isoformat())

    assert code == 0
    assert printed["sourceTable"] == records_table(stack)
    assert printed["restoredTable"].startswith(f"{records_table(stack)}-restore-")
    assert printed["restoredItems"] == len(every_item(printed["restoredTable"]))
    assert "org" not in printed


# -- one org copied back ---------------------------------------------------------------------------


def test_org_copy_back_restores_exactly_that_orgs_items(
    stack: LocalStack,
    org: Org,
    other_org: Org,
    after_the_restore_point: list[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = records_table(stack)
    key_id = create_admin_key(stack, org, name="lost later").key_id
    restored = org_items(table, org.org_id)
    lost = [key for key, item in restored.items() if key_id in json.dumps(item)]
    newer = {"pk": {"S": f"{org_prefix(OrgContext.for_operator(org.org_id))}SITES#"}, "sk": {"S": "NEWER#"}}
    # After the restore point: the org's profile is renamed, a key record is lost, a newer item
    # appears, and the other org changes too.
    after_the_restore_point.extend(
        [
            lambda: rename_profile(table, org.org_id, "Renamed by mistake"),
            lambda: delete_items(table, lost),
            lambda: boto3.client("dynamodb").put_item(TableName=table, Item=newer),
            lambda: rename_profile(table, other_org.org_id, "Globex, renamed after"),
        ]
    )

    code, printed, _ = run_restore(
        capsys, "--table", "records", "--to", now().isoformat(), "--org", org.org_id, "--include-access"
    )

    assert code == 0, printed
    assert lost
    assert printed["org"] == {
        "orgId": org.org_id,
        "restoredItems": len(restored),
        "liveItemsBefore": len(restored) - len(lost) + 1,
        "copied": len(restored),
        "onlyLive": 1,
        "deleted": 0,
        "liveItemsAfter": len(restored) + 1,
    }
    live = org_items(table, org.org_id)
    assert {key: live[key] for key in restored} == restored
    assert stored_name(table, org.org_id) == org.name
    assert stored_name(table, other_org.org_id) == "Globex, renamed after"


def test_org_copy_back_leaves_the_orgs_profile_and_keys_as_they_are_live(
    stack: LocalStack, org: Org, after_the_restore_point: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --include-access a restore brings data back, never a key revoked (or an org
    suspended or renamed) since the restore point."""
    table = records_table(stack)
    leaked = create_admin_key(stack, org, name="leaked later")
    site = make_site(stack, org.admin_key)
    site_items = {key: item for key, item in org_items(table, org.org_id).items() if site["siteId"] in key}
    after_the_restore_point.extend(
        [
            lambda: revoke(stack, org.admin_key, leaked.key_id),
            lambda: rename_profile(table, org.org_id, "Renamed since"),
            lambda: delete_items(table, list(site_items)),
        ]
    )

    code, printed, _ = run_restore(capsys, "--table", "records", "--to", now().isoformat(), "--org", org.org_id)

    assert code == 0, printed
    assert site_items
    live = org_items(table, org.org_id)
    assert {key: live[key] for key in site_items} == site_items
    assert stored_key_record(stack, org.org_id, leaked.key_id)["state"] == "Revoked"
    assert stored_name(table, org.org_id) == "Renamed since"


def test_delete_newer_also_removes_the_orgs_items_the_restore_lacks(
    stack: LocalStack, org: Org, other_org: Org
) -> None:
    table = records_table(stack)
    tool = restorer(stack)
    restored = tool.restore(table, now())
    kept = org_items(table, org.org_id)
    others = org_items(table, other_org.org_id)
    newer = {"pk": {"S": f"{org_prefix(OrgContext.for_operator(org.org_id))}SITES#"}, "sk": {"S": "NEWER#"}}
    boto3.client("dynamodb").put_item(TableName=table, Item=newer)
    boto3.client("dynamodb").put_item(
        TableName=table,
        Item={"pk": {"S": f"{org_prefix(OrgContext.for_operator(other_org.org_id))}SITES#"}, "sk": {"S": "NEWER#"}},
    )

    copy = tool.copy_org_back(restored.restored_table, table, OrgContext.for_operator(org.org_id), delete_newer=True)

    assert (copy.only_live, copy.deleted) == (1, 1)
    assert org_items(table, org.org_id) == kept
    assert len(org_items(table, other_org.org_id)) == len(others) + 1


def test_restoring_an_orgs_telemetry_table_copies_its_frames_back(stack: LocalStack, org: Org) -> None:
    settings = provisioning_settings(stack)
    table = telemetry_table_name(settings, org.org_id)
    frames = [
        {"thingId": {"S": "3f2b1c8e-0d7a-4c55-9a51-6f1e2d3c4b5a"}, "timestamp": {"N": str(t)}, "v": {"N": "1"}}
        for t in (1_000, 2_000, 3_000)
    ]
    dynamodb = boto3.client("dynamodb")
    for frame in frames:
        dynamodb.put_item(TableName=table, Item=frame)
    tool = restorer(stack, settings)
    restored = tool.restore(table, now())
    dynamodb.delete_item(TableName=table, Key={"thingId": frames[0]["thingId"], "timestamp": frames[0]["timestamp"]})

    copy = tool.copy_org_back(restored.restored_table, table, OrgContext.for_operator(org.org_id), delete_newer=False)

    assert restored.restored_items == 3
    assert (copy.restored_items, copy.live_items_before, copy.copied, copy.live_items_after) == (3, 2, 3, 3)
    assert sorted(every_item(table), key=lambda item: item["timestamp"]["N"]) == frames


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "message"),
    [(timedelta(hours=1), "in the future"), (-timedelta(days=36), "before the earliest restorable time")],
    ids=["future", "before-the-window"],
)
def test_a_time_outside_the_recovery_window_is_refused_before_any_restore(
    stack: LocalStack,
    org: Org,
    cli_session: boto3.Session,
    capsys: pytest.CaptureFixture[str],
    to: timedelta,
    message: str,
) -> None:
    tables_before = boto3.client("dynamodb").list_tables()["TableNames"]

    code, printed, error = run_restore(capsys, "--table", "records", "--to", (now() + to).isoformat())

    assert (code, printed) == (1, None)
    assert message in error["error"]["detail"]
    assert boto3.client("dynamodb").list_tables()["TableNames"] == tables_before


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--table", "audit", "--delete-newer"], "delete-newer"),
        (["--table", "idempotency"], "org"),
    ],
    ids=["audit-chain-is-append-only", "idempotency-is-not-org-keyed"],
)
def test_org_copy_back_is_refused_where_it_cannot_be_safe(
    stack: LocalStack,
    org: Org,
    cli_session: boto3.Session,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    field: str,
) -> None:
    tables_before = boto3.client("dynamodb").list_tables()["TableNames"]

    code, _, error = run_restore(capsys, *argv, "--to", now().isoformat(), "--org", org.org_id)

    assert code == 1
    assert [problem["field"] for problem in error["error"]["errors"]] == [field]
    assert boto3.client("dynamodb").list_tables()["TableNames"] == tables_before


def delete_items(table: str, keys: list[str]) -> None:
    for composite in keys:
        pk, sk = composite.split("|")
        boto3.client("dynamodb").delete_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}})
