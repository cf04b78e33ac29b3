"""``make dev``: the whole API on http://127.0.0.1:3000 with an embedded AWS (moto) and no Docker.

Start-up: bind the HTTP port (a port in use is a clear error), start moto on a free loopback
port, create the template's resources there, restore the previous run's data, seed the demo org
on first start, write ``seed.json``, then serve. Ctrl-C or SIGTERM stops accepting requests,
lets in-flight ones finish, saves the data and exits.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

from spectra_local.gateway import MAX_PAYLOAD_BYTES, GatewayResponse
from spectra_local.openapi import build_document, render
from spectra_local.schedules import Schedule, scheduled_event
from spectra_local.stack import LocalStack
from spectra_local.state import restore_state, save_state
from spectra_local.template import Template

REGION = "us-east-1"
SEED_FILE = "seed.json"
STACK_FILE = "stack.json"
DEMO_ORG = "demo"
QUEUE_POLL_SECONDS = 1.0

log = logging.getLogger("spectra.local")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def state_directory() -> Path:
    return Path(os.environ.get("SPECTRA_STATE_DIR", ".spectra-local")).resolve()


def configure_local_aws(endpoint_url: str) -> None:
    """Point every boto3 client of this process at the embedded AWS with dummy credentials."""
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # No X-Ray daemon locally; Powertools would otherwise try to emit segments.
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
    )
    os.environ.pop("AWS_PROFILE", None)


@dataclass
class LocalRuntime:
    """The HTTP front door, the embedded AWS and the deployed stack, with their lifecycle."""

    host: str = "127.0.0.1"
    port: int = 3000
    state_dir: Path = field(default_factory=state_directory)
    schedules_enabled: bool = True
    request_log: bool = True
    stack: LocalStack | None = None
    _server: Any = None
    _moto: Any = None
    _openapi: str | None = None
    _seed_document: dict[str, Any] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Bring everything up; returns the seed document (also written to ``seed.json``)."""
        from moto.server import ThreadedMotoServer
        from werkzeug.serving import make_server

        # Bind first: a port in use must fail fast and clearly, before anything is created
        # (werkzeug would print its own message and exit, so probe the port ourselves).
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((self.host, self.port))
        self._server = make_server(self.host, self.port, self, threaded=True)
        self.port = self._server.server_port
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        moto_host, moto_port = self._moto.get_host_and_port()
        endpoint = f"http://{moto_host}:{moto_port}"
        configure_local_aws(endpoint)

        template = Template()
        self.stack = LocalStack.create(template, region=REGION)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        restored_seed = restore_state(self.state_dir, region=REGION)
        if restored_seed is not None:
            self.stack.reattach_usage_identifiers()
        seed = self._seed(endpoint, restored_seed)
        self._seed_document = seed
        (self.state_dir / STACK_FILE).write_text(
            json.dumps({"region": REGION, "resolver": self.stack.resolver.to_json()}), encoding="utf-8"
        )
        (self.state_dir / SEED_FILE).write_text(json.dumps(seed, indent=2), encoding="utf-8")
        if self.schedules_enabled:
            threading.Thread(target=self._run_schedules, name="schedules", daemon=True).start()
        threading.Thread(target=self._deliver_queues, name="event-sources", daemon=True).start()
        return seed

    def serve(self) -> None:
        """Serve until ``stop()`` (or SIGINT/SIGTERM), then save state."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self.save()
            if self._moto is not None:
                self._moto.stop()

    def stop(self) -> None:
        """Stop accepting requests (safe to call from a signal handler or another thread)."""
        if not self._stopping.is_set():
            self._stopping.set()
            threading.Thread(target=self._server.shutdown, name="shutdown", daemon=True).start()

    def save(self) -> None:
        path = save_state(self.state_dir, region=REGION, seed=self._current_seed())
        log.info("state saved to %s", path)

    def _current_seed(self) -> dict[str, Any]:
        """The seed as it is now (``spectra org create --local`` appends orgs to seed.json)."""
        seed_path = self.state_dir / SEED_FILE
        if seed_path.exists():
            current: dict[str, Any] = json.loads(seed_path.read_text(encoding="utf-8"))
            return current
        return self._seed_document

    def _seed(self, endpoint: str, restored_seed: dict[str, Any] | None) -> dict[str, Any]:
        assert self.stack is not None
        orgs: list[dict[str, Any]] = list((restored_seed or {}).get("orgs", []))
        if not orgs:
            created = self.stack.create_org(DEMO_ORG)
            orgs = [{"orgId": created["orgId"], "name": created["name"], "adminKey": created["adminKey"]}]
        return {"apiUrl": f"http://{self.host}:{self.port}", "awsEndpointUrl": endpoint, "orgs": orgs}

    # -- event sources ------------------------------------------------------------------------

    def _deliver_queues(self) -> None:
        """Lambda's SQS pollers: what a queue receives reaches its function within a second."""
        assert self.stack is not None
        while not self._stopping.wait(QUEUE_POLL_SECONDS):
            try:
                self.stack.deliver_queued()
            except Exception:
                log.exception("delivering queued messages failed")

    # -- schedules ----------------------------------------------------------------------------

    def _run_schedules(self) -> None:
        assert self.stack is not None
        entries = []
        for function in self.stack.functions.values():
            for declared in function.spec.schedules:
                expression = str(self.stack.resolver.resolve(declared.get("Schedule", "")))
                if expression and declared.get("Enabled", True) is not False:
                    entries.append((function, str(declared["name"]), Schedule(expression)))
        last_run: dict[str, datetime] = {}
        started = datetime.now(UTC)
        while not self._stopping.wait(15):
            now = datetime.now(UTC)
            for function, name, schedule in entries:
                interval = schedule.interval()
                previous = last_run.get(name, started)
                if interval is not None:
                    due = now - previous >= interval
                else:
                    minute = now.replace(second=0, microsecond=0)
                    due = schedule.matches_minute(minute) and previous < minute
                if due:
                    last_run[name] = now
                    try:
                        function.invoke(scheduled_event(name, region=REGION, when=now))
                        log.info("schedule %s ran %s", name, function.spec.logical_id)
                    except Exception:
                        log.exception("schedule %s failed", name)

    # -- HTTP ---------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        raw_path = str(environ.get("PATH_INFO", "/"))
        response = self._handle(environ, method, raw_path)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if self.request_log:
            print(
                f"{method} {raw_path} {response.status} {elapsed_ms:.1f}ms "
                f"org={response.org_id or '-'} request={response.headers.get('x-amzn-RequestId', '-')}",
                file=sys.stderr,
                flush=True,
            )
        status_line = f"{response.status} {_reason(response.status)}"
        headers = [(k, v) for k, v in response.headers.items()]
        headers.append(("Content-Length", str(len(response.body))))
        start_response(status_line, headers)
        return [response.body]

    def _handle(self, environ: dict[str, Any], method: str, raw_path: str) -> GatewayResponse:
        assert self.stack is not None
        gateway = self.stack.gateway
        try:
            path = raw_path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return gateway.error_response("BAD_REQUEST_PARAMETERS", raw_path)
        if method == "GET" and path in {"/v2/openapi.json", "/docs", "/docs/"}:
            return self._documentation(path)
        length_header = environ.get("CONTENT_LENGTH") or "0"
        try:
            length = int(length_header)
        except ValueError:
            return gateway.error_response("BAD_REQUEST_BODY", path)
        if length > MAX_PAYLOAD_BYTES:
            return gateway.error_response("REQUEST_TOO_LARGE", path)
        body = environ["wsgi.input"].read(length) if length > 0 else None
        headers = [(_header_name(key), str(value)) for key, value in environ.items() if _is_header(key)]
        query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        source_ip = str(environ.get("REMOTE_ADDR", "127.0.0.1"))
        try:
            response = gateway.request(method, path, headers=headers, query=query, body=body, source_ip=source_ip)
        except Exception:  # the runtime itself must survive anything a request does
            log.exception("request failed inside the local gateway")
            return gateway.error_response("DEFAULT_5XX", path)
        return response

    def _documentation(self, path: str) -> GatewayResponse:
        assert self.stack is not None
        if self._openapi is None:
            self._openapi = render(build_document(self.stack))
        if path == "/v2/openapi.json":
            return GatewayResponse(200, {"Content-Type": "application/json"}, self._openapi.encode("utf-8"))
        assets = Path(generate_swagger_html.__code__.co_filename).parent
        html = generate_swagger_html(
            self._openapi,
            (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
            (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
            "",
            None,
            persist_authorization=True,
        )
        return GatewayResponse(200, {"Content-Type": "text/html; charset=utf-8"}, html.encode("utf-8"))


def _is_header(key: str) -> bool:
    return key.startswith("HTTP_") or key in {"CONTENT_TYPE", "CONTENT_LENGTH"}


def _header_name(key: str) -> str:
    name = key[5:] if key.startswith("HTTP_") else key
    return "-".join(part.capitalize() for part in name.split("_"))


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def configure_logging(*, request_log: bool = True) -> None:
    """Runtime messages and the one-line request log on stderr; AWS SDK chatter off."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO if request_log else logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the runtime prints its own request log
    # Functions without business metrics yet would warn on every invocation.
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def main() -> int:
    configure_logging()
    port = int(os.environ.get("SPECTRA_PORT", "3000"))
    schedules = os.environ.get("SPECTRA_SCHEDULES", "on").lower() not in {"off", "0", "false", "no"}
    runtime = LocalRuntime(port=port, schedules_enabled=schedules)
    started = time.perf_counter()
    try:
        seed = runtime.start()
    except OSError as error:
        print(
            f"spectra: cannot listen on 127.0.0.1:{port}: {error.strerror or error}. "
            f"Stop whatever uses it or set SPECTRA_PORT.",
            file=sys.stderr,
        )
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: runtime.stop())
    demo = seed["orgs"][0]
    print(
        f"Spectra local runtime ready in {time.perf_counter() - started:.1f}s\n"
        f"  API:      {seed['apiUrl']}/v2   (docs: {seed['apiUrl']}/docs)\n"
        f"  org:      {demo['name']} {demo['orgId']}\n"
        f"  admin key: {demo['adminKey']}\n"
        f"  AWS:      {seed['awsEndpointUrl']} (embedded moto)\n"
        f"  state:    {runtime.state_dir} (seed.json)\n"
        f"Try: curl -s -H 'X-Api-Key: {demo['adminKey']}' {seed['apiUrl']}/v2/organization",
        flush=True,
    )
    runtime.serve()
    print("Spectra local runtime stopped; state saved.", flush=True)
    return 0
