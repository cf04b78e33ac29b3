"""``spectra schedule run``: only scheduled functions, and a failed or refused run said as such."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws

from spectra_cli import main as cli

STACK = ["--stack", "spectra-dev", "--region", "us-east-1"]
DEPLOYED_NAME = "spectra-dev-retention"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, Any]:
    """Run ``spectra`` and parse what it printed: exit code, stdout and stderr JSON."""
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, json.loads(captured.out or "null"), json.loads(captured.err or "null")


@pytest.fixture
def lambda_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """The Lambda client the CLI makes, stubbed; the stack resolves ``retention`` to its name."""
    with mock_aws():
        client = boto3.client("lambda", region_name="us-east-1")

        def session_client(_session: boto3.Session, service: str, *_args: Any, **_kwargs: Any) -> Any:
            assert service == "lambda", f"the CLI asked for a {service} client"
            return client

        monkeypatch.setattr(boto3.Session, "client", session_client)
        monkeypatch.setattr(
            cli, "scheduled_function_name", lambda _session, _stack, function: f"spectra-dev-{function}"
        )
        with Stubber(client) as stubber:
            yield stubber
            stubber.assert_no_pending_responses()


def invoked(payload: Any, **response: Any) -> dict[str, Any]:
    body = json.dumps(payload).encode("utf-8")
    return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body)), **response}


@pytest.mark.parametrize("function", ["places", "no_such_function"])
@pytest.mark.parametrize("target", [["--local"], STACK], ids=["local", "stack"])
def test_a_function_without_a_schedule_is_refused(
    capsys: pytest.CaptureFixture[str], function: str, target: list[str]
) -> None:
    code, printed, error = run_cli(capsys, "schedule", "run", function, *target)

    assert (code, printed) == (2, None)
    assert repr(function) in error["error"]["detail"]
    assert "no schedule" in error["error"]["detail"]


def test_a_scheduled_run_prints_the_functions_result(capsys: pytest.CaptureFixture[str], lambda_stub: Stubber) -> None:
    lambda_stub.add_response("invoke", invoked({"complete": True}), {"FunctionName": DEPLOYED_NAME, "Payload": ANY})

    code, printed, _ = run_cli(capsys, "schedule", "run", "retention", *STACK)

    assert (code, printed) == (0, {"function": DEPLOYED_NAME, "result": {"complete": True}})


def test_a_scheduled_run_that_fails_exits_1_with_the_functions_error(
    capsys: pytest.CaptureFixture[str], lambda_stub: Stubber
) -> None:
    failure = {"errorType": "RetentionFailed", "errorMessage": "1 organization(s) failed; see the logs"}
    lambda_stub.add_response("invoke", invoked(failure, FunctionError="Unhandled"))

    code, printed, error = run_cli(capsys, "schedule", "run", "retention", *STACK)

    assert (code, printed) == (1, None)
    detail = error["error"]["detail"]
    assert detail.startswith(f"{DEPLOYED_NAME} failed")
    assert json.loads(detail.partition("failed: ")[2]) == failure


def test_a_scheduled_run_refused_for_concurrency_says_the_function_is_already_running(
    capsys: pytest.CaptureFixture[str], lambda_stub: Stubber
) -> None:
    lambda_stub.add_client_error("invoke", service_error_code="TooManyRequestsException", http_status_code=429)

    code, printed, error = run_cli(capsys, "schedule", "run", "retention", *STACK)

    assert (code, printed) == (1, None)
    assert "already running" in error["error"]["detail"]
    assert DEPLOYED_NAME in error["error"]["detail"]
