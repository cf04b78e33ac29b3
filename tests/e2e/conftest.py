"""End-to-end fixtures: the local runtime (``python -m spectra_local``) on a free port, over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from spectra_local.template import REPO_ROOT

START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RunningRuntime:
    """A local runtime process and what it seeded."""

    process: subprocess.Popen[bytes]
    port: int
    state_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def seed(self) -> dict[str, Any]:
        seed: dict[str, Any] = json.loads((self.state_dir / "seed.json").read_text())
        return seed

    @property
    def demo_key(self) -> str:
        return str(self.seed["orgs"][0]["adminKey"])

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> HttpResponse:
        all_headers = dict(headers or {})
        if query:
            path = f"{path}?{urllib.parse.urlencode(query, doseq=True)}"
        if key is not None:
            all_headers["X-Api-Key"] = key
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=all_headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
                return HttpResponse(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return HttpResponse(error.code, dict(error.headers), error.read())

    def spectra(self, *args: str) -> dict[str, Any]:
        """Run the operator CLI against this runtime (``--local``) and parse its JSON."""
        completed = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "spectra_cli.main", *args, "--local"],
            env={**os.environ, "SPECTRA_STATE_DIR": str(self.state_dir)},
            capture_output=True,
            check=True,
            timeout=60,
        )
        result: dict[str, Any] = json.loads(completed.stdout)
        return result

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def start_runtime(state_dir: Path, port: int | None = None) -> RunningRuntime:
    port = port or free_port()
    log_path = state_dir.parent / f"runtime-{port}.log"
    seed = state_dir / "seed.json"
    launched = time.time()
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "spectra_local"],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "SPECTRA_PORT": str(port),
            "SPECTRA_STATE_DIR": str(state_dir),
            "SPECTRA_SCHEDULES": "off",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    runtime = RunningRuntime(process=process, port=port, state_dir=state_dir, log_path=log_path)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"runtime exited early:\n{log_path.read_text(errors='replace')}")
        if seed.exists() and seed.stat().st_mtime >= launched - 1:  # (re)written once ready
            return runtime
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"runtime not ready in {START_TIMEOUT_SECONDS}s:\n{log_path.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    """One runtime shared by a test module (each module gets its own state)."""
    running = start_runtime(tmp_path_factory.mktemp("spectra-e2e") / "state")
    yield running
    if running.process.poll() is None:
        running.stop()
