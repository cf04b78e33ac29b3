"""Org lifecycle for operators: the provisioning function, the provisioner and the CLI."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from spectra.errors import ValidationFailed
from spectra.provisioning import Provisioner
from spectra_cli import main as cli
from spectra_local.stack import LocalStack
from tests.integration.factories import (
    ORGANIZATION_PATH,
    Org,
    counting_calls,
    expire_authorizer_caches,
    make_provisioner,
)

TARGET = ["--stack", "spectra-local", "--region", "us-east-1"]


def provision_error(stack: LocalStack, command: dict[str, Any]) -> dict[str, Any]:
    result = stack.function("provisioning").invoke({"command": command})
    assert "error" in result, result
    return dict(result["error"])


@pytest.fixture
def provisioner(stack: LocalStack) -> Provisioner:
    return make_provisioner(stack)


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provisioner: Provisioner, *argv: str
) -> tuple[int, Any]:
    """Run ``spectra org …`` against the stack and parse what it printed."""
    monkeypatch.setattr(cli, "_provisioner", lambda _args: provisioner)
    code = cli.main(["org", *argv, *TARGET])
    captured = capsys.readouterr()
    return code, json.loads(captured.out or captured.err)


# -- create -----------------------------------------------------------------------------------


def test_create_org_returns_its_first_admin_key(stack: LocalStack) -> None:
    created = stack.create_org("Initech")

    assert (created["name"], created["plan"], created["status"]) == ("Initech", "standard", "Active")
    assert created["adminKey"].startswith(f"spx_ad_{created['adminKeyId']}_")


@pytest.mark.parametrize(
    ("command", "field"),
    [
        ({"action": "create_org", "name": "   "}, "name"),
        ({"action": "create_org", "name": ""}, "name"),
        ({"action": "create_org", "name": "x" * 201}, "name"),
        ({"action": "create_org", "name": "Initech", "plan": "platinum"}, "plan"),
    ],
    ids=["blank-name", "empty-name", "long-name", "unknown-plan"],
)
def test_create_org_refuses_invalid_input(stack: LocalStack, command: dict[str, Any], field: str) -> None:
    error = provision_error(stack, command)

    assert error["code"] == "validation_failed"
    assert [e["field"] for e in error["errors"]] == [field]


@pytest.mark.parametrize(
    ("name", "plan"), [("", "standard"), ("Initech", "platinum")], ids=["empty-name", "unknown-plan"]
)
def test_provisioner_refuses_invalid_org(provisioner: Provisioner, name: str, plan: str) -> None:
    with pytest.raises(ValidationFailed):
        provisioner.create_org(name, plan)


# -- list -------------------------------------------------------------------------------------


def test_list_orgs_lists_every_created_org(stack: LocalStack, org: Org, other_org: Org) -> None:
    listed = stack.provision({"action": "list_orgs"})["items"]

    assert {o["orgId"] for o in listed} == {org.org_id, other_org.org_id}
    assert all(o.keys() >= {"orgId", "name", "plan", "status", "createdAt"} for o in listed)


def test_list_orgs_shows_no_secrets(stack: LocalStack, org: Org) -> None:
    text = json.dumps(stack.provision({"action": "list_orgs"}))

    assert org.admin_key not in text
    assert "usageIdentifierKey" not in text


def test_list_orgs_queries_the_registry_index_and_never_scans(stack: LocalStack, org: Org) -> None:
    registry_client = stack.function("provisioning").load().provisioner._registry._client

    with counting_calls(registry_client, "Query") as queries, counting_calls(registry_client, "Scan") as scans:
        stack.provision({"action": "list_orgs"})

    assert scans == []
    assert [(q["IndexName"], q["ExpressionAttributeValues"][":registry"]) for q in queries] == [
        ("gsi1", {"S": "ORGS#"})
    ]


def test_list_orgs_pages_through_the_registry(stack: LocalStack, provisioner: Provisioner) -> None:
    created = {provisioner.create_org(f"Org {n}").orgId for n in range(3)}

    assert {o["orgId"] for o in provisioner.list_orgs(limit=1)} == created


# -- suspend / resume -------------------------------------------------------------------------


def test_suspend_and_resume_round_trip(stack: LocalStack, org: Org) -> None:
    suspended = stack.provision({"action": "suspend_org", "orgId": org.org_id})
    described = stack.provision({"action": "describe_org", "orgId": org.org_id})
    resumed = stack.provision({"action": "resume_org", "orgId": org.org_id})

    assert (suspended["status"], described["status"], resumed["status"]) == ("Suspended", "Suspended", "Active")


def test_suspended_org_shows_suspended_to_its_resumed_keys(stack: LocalStack, org: Org) -> None:
    stack.provision({"action": "suspend_org", "orgId": org.org_id})
    stack.provision({"action": "resume_org", "orgId": org.org_id})
    expire_authorizer_caches(stack)

    assert stack.request("GET", ORGANIZATION_PATH, key=org.admin_key).json()["status"] == "Active"


@pytest.mark.parametrize("org_id", ["0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11", "not-a-guid"], ids=["unknown", "malformed"])
def test_suspending_an_unknown_org_is_not_found(stack: LocalStack, org_id: str) -> None:
    assert provision_error(stack, {"action": "suspend_org", "orgId": org_id})["code"] == "not_found"


# -- the operator CLI -------------------------------------------------------------------------


def test_cli_create_prints_the_org_once_its_usage_identifier_is_attached(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provisioner: Provisioner, stack: LocalStack
) -> None:
    waits: list[float] = []

    def worker_runs_meanwhile(seconds: float) -> None:
        waits.append(seconds)
        stack.deliver_queued()

    monkeypatch.setattr(time, "sleep", worker_runs_meanwhile)
    code, printed = run_cli(monkeypatch, capsys, provisioner, "create", "--name", "Initech")

    assert code == 0
    assert printed.keys() == {
        "orgId",
        "name",
        "plan",
        "status",
        "createdAt",
        "adminKeyId",
        "adminKey",
        "usageIdentifier",
    }
    assert printed["name"] == "Initech"
    assert printed["usageIdentifier"] == "attached"
    assert waits == [1]
    assert stack.request("GET", "/v2/organization", key=printed["adminKey"]).status == 200


def test_cli_create_no_wait_returns_while_the_identifier_is_pending(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provisioner: Provisioner, stack: LocalStack
) -> None:
    code, printed = run_cli(monkeypatch, capsys, provisioner, "create", "--name", "Initech", "--no-wait")

    assert code == 0
    assert "usageIdentifier" not in printed
    assert stack.request("GET", "/v2/organization", key=printed["adminKey"]).status == 403


def test_cli_list_prints_every_org_as_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provisioner: Provisioner, org: Org
) -> None:
    code, printed = run_cli(monkeypatch, capsys, provisioner, "list")

    assert code == 0
    assert [o["orgId"] for o in printed["items"]] == [org.org_id]


def test_cli_suspend_prints_the_suspended_org_as_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provisioner: Provisioner, org: Org
) -> None:
    code, printed = run_cli(monkeypatch, capsys, provisioner, "suspend", org.org_id)

    assert code == 0
    assert (printed["orgId"], printed["status"]) == (org.org_id, "Suspended")


def test_cli_reports_an_unknown_org_as_a_json_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provisioner: Provisioner
) -> None:
    code, printed = run_cli(monkeypatch, capsys, provisioner, "suspend", "0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11")

    assert code == 1
    assert printed["error"]["code"] == "not_found"


def test_cli_run_creates_orgs_with_a_provisioner(provisioner: Provisioner) -> None:
    args = cli._parser().parse_args(["org", "create", "--name", "Initech", "--no-wait", *TARGET])

    result = cli.run(args, provisioner)

    assert result["orgId"] in {o["orgId"] for o in provisioner.list_orgs()}


def test_cli_create_exits_3_but_prints_the_key_when_the_identifier_stays_pending(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provisioner: Provisioner, stack: LocalStack
) -> None:
    """The org exists either way: its one-time key must be printed even when the edge does not
    accept it yet, and the exit code says something needs looking at."""
    monkeypatch.setattr(cli, "IDENTIFIER_WAIT_SECONDS", 0)
    monkeypatch.setattr(cli, "_provisioner", lambda _args: provisioner)

    code = cli.main(["org", "create", "--name", "Initech", *TARGET])

    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert code == 3
    assert printed["usageIdentifier"] == "pending"
    assert printed["adminKey"].startswith("spx_ad_")
    assert "spectra org reconcile" in json.loads(captured.err)["error"]["detail"]


def test_cli_reconcile_queues_a_pending_org_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provisioner: Provisioner, stack: LocalStack
) -> None:
    created = provisioner.create_org("Lost Message")
    stack.deliver_queued()  # the worker ran ...
    assert provisioner.describe(created.orgId)["usageIdentifier"] == "attached"
    boto3.client("apigateway").delete_api_key(apiKey=only_api_key_id(created.orgId))  # ... then the key went

    code, printed = run_cli(monkeypatch, capsys, provisioner, "reconcile", created.orgId)
    stack.deliver_queued()

    assert code == 0
    assert printed["orgId"] == created.orgId
    assert stack.request("GET", "/v2/organization", key=created.adminKey).status == 200


def only_api_key_id(org_id: str) -> str:
    [key] = [k for k in boto3.client("apigateway").get_api_keys()["items"] if k["name"] == f"spectra-org-{org_id}"]
    return str(key["id"])
