"""The local runtime as a client sees it: HTTP on localhost, real keys, API Gateway behaviour."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningRuntime, free_port, start_runtime

pytestmark = pytest.mark.e2e


def test_seeded_demo_key_reads_its_organization(runtime: RunningRuntime) -> None:
    response = runtime.request("GET", "/v2/organization", key=runtime.demo_key)
    assert response.status == 200
    assert response.json()["orgId"] == runtime.seed["orgs"][0]["orgId"]
    assert response.json()["name"] == "demo"


def test_seed_file_names_api_and_aws_endpoints(runtime: RunningRuntime) -> None:
    seed = runtime.seed
    assert seed["apiUrl"] == runtime.url
    assert seed["awsEndpointUrl"].startswith("http://127.0.0.1:")


@pytest.mark.parametrize("key", [None, "not-a-key", "spx_ad_00000000-0000-4000-8000-000000000000_x"])
def test_missing_or_bad_key_is_401_problem(runtime: RunningRuntime, key: str | None) -> None:
    response = runtime.request("GET", "/v2/organization", key=key)
    assert response.status == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "unauthorized"


def test_second_org_cannot_see_first_orgs_keys(runtime: RunningRuntime) -> None:
    first_key_id = runtime.seed["orgs"][0]["adminKey"].split("_")[2]
    second = runtime.spectra("org", "create", "--name", "second")
    response = runtime.request("GET", f"/v2/api-keys/{first_key_id}", key=second["adminKey"])
    assert response.status == 404
    assert runtime.seed["orgs"][0]["orgId"] not in response.body.decode()
    listed = runtime.request("GET", "/v2/api-keys", key=second["adminKey"]).json()["items"]
    assert [item["keyId"] for item in listed] == [second["adminKeyId"]]


def test_unknown_route_is_404_problem(runtime: RunningRuntime) -> None:
    response = runtime.request("GET", "/v2/no-such-thing", key=runtime.demo_key)
    assert response.status == 404
    assert response.json()["code"] == "not_found"


def test_unsupported_method_gets_api_gateway_status(runtime: RunningRuntime) -> None:
    response = runtime.request("PROPFIND", "/v2/organization", key=runtime.demo_key)
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"


def test_body_over_ten_megabytes_is_413(runtime: RunningRuntime) -> None:
    body = b"{" + b" " * (10 * 1024 * 1024) + b"}"
    response = runtime.request("POST", "/v2/api-keys", key=runtime.demo_key, body=body)
    assert response.status == 413
    assert response.json()["code"] == "payload_too_large"


def test_openapi_document_and_docs_are_served(runtime: RunningRuntime) -> None:
    document = runtime.request("GET", "/v2/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert "/v2/api-keys" in document["paths"]
    docs = runtime.request("GET", "/docs")
    assert docs.status == 200
    assert b"swagger" in docs.body.lower()


def test_request_log_names_method_path_status_and_org(runtime: RunningRuntime) -> None:
    runtime.request("GET", "/v2/organization", key=runtime.demo_key)
    org_id = runtime.seed["orgs"][0]["orgId"]
    lines = runtime.log_path.read_text(errors="replace").splitlines()
    assert any(line.startswith("GET /v2/organization 200 ") and f"org={org_id}" in line for line in lines)


def test_restart_keeps_acknowledged_data(tmp_path: Path) -> None:
    first = start_runtime(tmp_path / "state")
    created = first.request(
        "POST",
        "/v2/api-keys",
        key=first.demo_key,
        json_body={"name": "survives restart", "scopes": [{"action": "read", "resourceFilter": ""}]},
    )
    assert created.status == 201
    assert first.stop() == 0

    second = start_runtime(tmp_path / "state")
    try:
        assert second.seed["orgs"] == first.seed["orgs"]
        new_key = created.json()["key"]
        assert second.request("GET", "/v2/organization", key=new_key).status == 200
        names = [item["name"] for item in second.request("GET", "/v2/api-keys", key=second.demo_key).json()["items"]]
        assert "survives restart" in names
    finally:
        second.stop()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        port = free_port()
        busy.bind(("127.0.0.1", port))
        busy.listen()
        completed = subprocess.run(
            [sys.executable, "-m", "spectra_local"],
            env={"SPECTRA_PORT": str(port), "SPECTRA_STATE_DIR": str(tmp_path), "PATH": ""},
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert completed.returncode == 2
    assert b"cannot listen" in completed.stderr
    assert b"Traceback" not in completed.stderr
