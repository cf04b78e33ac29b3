"""``spectra org set-plan`` and ``spectra org set-limits``: each command line becomes exactly the
provisioning command the ``provisioning`` function would run, or a clear error before any runs."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from spectra.provisioning import Provisioner, ProvisioningCommand, SetLimits, SetPlan, TierLimitOverride
from spectra.ratelimits.plans import PLANS, Tier
from spectra_cli import main as cli

ORG_ID = "0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11"
TARGETS = {"local": ["--local"], "stack": ["--stack", "spectra-dev", "--region", "us-east-1"]}


class RecordingProvisioner:
    """Stands in for the deployment: records the command the CLI built and echoes it back.
    (The commands that run use ``--stack``: ``--local`` also delivers the runtime's queues.)"""

    def __init__(self) -> None:
        self.commands: list[Any] = []

    def run(self, command: Any) -> dict[str, Any]:
        self.commands.append(command)
        return {"ran": command.model_dump(mode="json")}


@pytest.fixture
def provisioner(monkeypatch: pytest.MonkeyPatch) -> RecordingProvisioner:
    recording = RecordingProvisioner()
    monkeypatch.setattr(cli, "_provisioner", lambda _args: cast(Provisioner, recording))
    return recording


def command_for(*argv: str) -> Any:
    """The provisioning command a parsed ``spectra org …`` line becomes."""
    return cli.org_command(cli._parser().parse_args(["org", *argv]))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, Any]:
    """Run ``spectra org …``: exit code, and the JSON it printed on stdout and stderr."""
    code = cli.main(["org", *argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out or "null"), json.loads(captured.err or "null")


def as_the_function_parses_it(command: Any) -> Any:
    """The command after a trip through JSON, as the provisioning function receives it."""
    return ProvisioningCommand.model_validate({"command": command.model_dump(mode="json")}).command


# -- set-plan ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS.values(), ids=list(TARGETS))
@pytest.mark.parametrize("plan", list(PLANS))
def test_set_plan_builds_the_set_plan_command(target: list[str], plan: str) -> None:
    command = command_for("set-plan", ORG_ID, "--plan", plan, *target)

    assert command == SetPlan(orgId=ORG_ID, plan=plan)
    assert as_the_function_parses_it(command) == command


def test_set_plan_runs_the_command_and_prints_its_result(
    capsys: pytest.CaptureFixture[str], provisioner: RecordingProvisioner
) -> None:
    code, printed, _ = run_cli(capsys, "set-plan", ORG_ID, "--plan", "professional", *TARGETS["stack"])

    assert code == 0
    assert provisioner.commands == [SetPlan(orgId=ORG_ID, plan="professional")]
    assert printed == {"ran": {"action": "set_plan", "orgId": ORG_ID, "plan": "professional"}}


@pytest.mark.parametrize(
    "argv",
    [
        ["set-plan", ORG_ID, "--plan", "platinum", "--local"],
        ["set-plan", ORG_ID, "--local"],
        ["set-plan", "--plan", "standard", "--local"],
        ["set-plan", ORG_ID, "--plan", "standard"],
        ["set-plan", ORG_ID, "--plan", "standard", "--local", "--stack", "spectra-dev"],
    ],
    ids=["unknown-plan", "no-plan", "no-org", "no-target", "two-targets"],
)
def test_set_plan_refuses_incomplete_or_unknown_arguments(
    capsys: pytest.CaptureFixture[str], provisioner: RecordingProvisioner, argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["org", *argv])

    assert exited.value.code == 2
    assert provisioner.commands == []
    assert "usage:" in capsys.readouterr().err


# -- set-limits -------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", list(Tier))
def test_set_limits_builds_an_override_of_one_tier(tier: Tier) -> None:
    command = command_for(
        "set-limits", ORG_ID, "--tier", tier.value, "--rate-per-minute", "120", "--burst", "150", "--local"
    )

    expected = SetLimits(orgId=ORG_ID, limits={tier: TierLimitOverride(ratePerMinute=120, burst=150)})
    assert command == expected
    assert as_the_function_parses_it(command) == expected


@pytest.mark.parametrize("tier", list(Tier))
def test_set_limits_clear_restores_the_plans_limit_of_the_tier(tier: Tier) -> None:
    command = command_for("set-limits", ORG_ID, "--tier", tier.value, "--clear", *TARGETS["stack"])

    assert command == SetLimits(orgId=ORG_ID, limits={tier: None})
    assert command.model_dump(mode="json") == {"action": "set_limits", "orgId": ORG_ID, "limits": {tier.value: None}}
    assert as_the_function_parses_it(command) == command


def test_set_limits_runs_the_command_and_prints_its_result(
    capsys: pytest.CaptureFixture[str], provisioner: RecordingProvisioner
) -> None:
    code, printed, _ = run_cli(
        capsys,
        "set-limits",
        ORG_ID,
        "--tier",
        "data-read",
        "--rate-per-minute",
        "300",
        "--burst",
        "400",
        *TARGETS["stack"],
    )

    assert code == 0
    (command,) = provisioner.commands
    assert command.limits == {Tier.DATA_READ: TierLimitOverride(ratePerMinute=300, burst=400)}
    assert printed["ran"]["limits"] == {"data-read": {"ratePerMinute": 300, "burst": 400}}


def test_set_limits_with_a_rate_but_no_burst_is_an_error_naming_burst(
    capsys: pytest.CaptureFixture[str], provisioner: RecordingProvisioner
) -> None:
    code, printed, error = run_cli(
        capsys, "set-limits", ORG_ID, "--tier", "standard", "--rate-per-minute", "120", *TARGETS["stack"]
    )

    assert (code, printed) == (1, None)
    assert provisioner.commands == []
    assert [problem["field"] for problem in error["error"]["errors"]] == ["burst"]


def test_set_limits_clear_with_a_burst_is_an_error_not_a_silently_ignored_flag(
    capsys: pytest.CaptureFixture[str], provisioner: RecordingProvisioner
) -> None:
    code, printed, error = run_cli(
        capsys, "set-limits", ORG_ID, "--tier", "standard", "--clear", "--burst", "10", *TARGETS["stack"]
    )

    assert (code, printed) == (1, None)
    assert provisioner.commands == []
    assert [problem["field"] for problem in error["error"]["errors"]] == ["burst"]


@pytest.mark.parametrize(
    ("rate", "burst"),
    [("0", "10"), ("120", "0"), ("600001", "10"), ("120", "100001")],
    ids=["no-rate", "no-burst", "rate-too-high", "burst-too-high"],
)
def test_set_limits_out_of_range_is_an_error_before_anything_runs(
    capsys: pytest.CaptureFixture[str], provisioner: RecordingProvisioner, rate: str, burst: str
) -> None:
    argv = ["set-limits", ORG_ID, "--tier", "standard", "--rate-per-minute", rate, "--burst", burst]

    code, printed, error = run_cli(capsys, *argv, *TARGETS["stack"])

    assert (code, printed) == (1, None)
    assert provisioner.commands == []
    assert error["error"]["detail"] == "invalid arguments"


@pytest.mark.parametrize(
    "argv",
    [
        ["set-limits", ORG_ID, "--tier", "standard", "--clear", "--rate-per-minute", "120", "--local"],
        ["set-limits", ORG_ID, "--tier", "standard", "--burst", "150", "--local"],
        ["set-limits", ORG_ID, "--tier", "standard", "--local"],
        ["set-limits", ORG_ID, "--tier", "bulk", "--clear", "--local"],
        ["set-limits", ORG_ID, "--clear", "--local"],
        ["set-limits", ORG_ID, "--tier", "standard", "--rate-per-minute", "fast", "--burst", "1", "--local"],
        ["set-limits", ORG_ID, "--tier", "standard", "--clear"],
    ],
    ids=["clear-and-rate", "burst-alone", "neither", "unknown-tier", "no-tier", "not-a-number", "no-target"],
)
def test_set_limits_refuses_malformed_arguments(
    capsys: pytest.CaptureFixture[str], provisioner: RecordingProvisioner, argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["org", *argv])

    assert exited.value.code == 2
    assert provisioner.commands == []
    assert "usage:" in capsys.readouterr().err
