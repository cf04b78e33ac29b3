"""``spectra restore``: each command line becomes exactly one restore of the right table, or a clear
error before anything is restored."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from spectra.config import Settings
from spectra_cli import main as cli

ORG_ID = "0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11"
TO = "2025-03-01T12:00:00Z"
SETTINGS = Settings(
    records_table="spectra-dev-records",
    idempotency_table="spectra-dev-idempotency",
    org_data_role_arn="arn:aws:iam::123456789012:role/org-data",
    api_key_pepper_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:pepper",
    page_token_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:tokens",
    audit_table="spectra-dev-audit",
    rate_limit_table="spectra-dev-rate-limits",
    telemetry_table_prefix="spectra-dev-telemetry-",
)


class RecordingRestorer:
    """Stands in for the layer's ``TableRestorer``: records each restore and echoes it back."""

    restores: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, _dynamodb: Any, settings: Settings) -> None:
        assert settings is SETTINGS

    def restore(self, table: str, to: datetime, *, org_id: str | None, delete_newer: bool, include_access: bool) -> Any:
        request = {
            "table": table,
            "to": to,
            "org_id": org_id,
            "delete_newer": delete_newer,
            "include_access": include_access,
        }
        self.restores.append(request)
        return type("Done", (), {"as_dict": lambda _self: {"restored": table}})()


class FakeSession:
    def client(self, _service: str) -> Any:
        return object()


@pytest.fixture
def restores(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    RecordingRestorer.restores = []
    monkeypatch.setattr(cli, "TableRestorer", RecordingRestorer)
    monkeypatch.setattr(cli, "_settings_and_session", lambda _args: (SETTINGS, FakeSession()))
    return RecordingRestorer.restores


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, Any]:
    code = cli.main(["restore", *argv, "--stack", "spectra-dev", "--region", "us-east-1"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out or "null"), json.loads(captured.err or "null")


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("records", "spectra-dev-records"),
        ("idempotency", "spectra-dev-idempotency"),
        ("audit", "spectra-dev-audit"),
        ("rate-limits", "spectra-dev-rate-limits"),
        ("spectra-dev-records", "spectra-dev-records"),
    ],
)
def test_restore_names_the_deployments_table(
    capsys: pytest.CaptureFixture[str], restores: list[dict[str, Any]], table: str, expected: str
) -> None:
    code, printed, _ = run_cli(capsys, "--table", table, "--to", TO)

    assert code == 0
    assert restores == [
        {
            "table": expected,
            "to": datetime(2025, 3, 1, 12, tzinfo=UTC),
            "org_id": None,
            "delete_newer": False,
            "include_access": False,
        }
    ]
    assert printed == {"restored": expected}


def test_telemetry_means_the_orgs_own_telemetry_table(
    capsys: pytest.CaptureFixture[str], restores: list[dict[str, Any]]
) -> None:
    code, _, _ = run_cli(capsys, "--table", "telemetry", "--to", TO, "--org", ORG_ID, "--delete-newer")

    assert code == 0
    assert restores[0]["table"] == f"spectra-dev-telemetry-{ORG_ID}"
    assert (restores[0]["org_id"], restores[0]["delete_newer"]) == (ORG_ID, True)


def test_telemetry_without_an_org_is_an_error_naming_org(
    capsys: pytest.CaptureFixture[str], restores: list[dict[str, Any]]
) -> None:
    code, printed, error = run_cli(capsys, "--table", "telemetry", "--to", TO)

    assert (code, printed, restores) == (1, None, [])
    assert [problem["field"] for problem in error["error"]["errors"]] == ["org"]


def test_a_malformed_org_id_is_not_found_before_anything_runs(
    capsys: pytest.CaptureFixture[str], restores: list[dict[str, Any]]
) -> None:
    code, printed, _ = run_cli(capsys, "--table", "records", "--to", TO, "--org", "not-an-org")

    assert (code, printed, restores) == (1, None, [])


@pytest.mark.parametrize(
    "argv",
    [["--table", "records"], ["--to", TO], ["--table", "records", "--to", "last tuesday"]],
    ids=["no-time", "no-table", "not-a-time"],
)
def test_restore_refuses_incomplete_or_malformed_arguments(
    capsys: pytest.CaptureFixture[str], restores: list[dict[str, Any]], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["restore", *argv, "--local"])

    assert exited.value.code == 2
    assert restores == []
    assert "usage:" in capsys.readouterr().err
