"""A whole Spectra deployment in one process: resources, functions and the gateway.

Used by the local runtime (on a moto server) and by the integration tests (under ``mock_aws``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from spectra_local.aws import function_environment, materialize
from spectra_local.event_sources import deliver, queue_sources
from spectra_local.functions import LocalFunction
from spectra_local.gateway import Gateway, GatewayResponse
from spectra_local.template import IntrinsicResolver, Template

LOCAL_CONTROL_PLANE_CALLS_PER_SECOND = 1_000


def reset_process_caches() -> None:
    """Forget what the layer caches per container (settings, sessions, secrets, persistence).

    A local stack that is rebuilt in the same process (each integration test) must not reuse a
    previous stack's secrets or clients, just as a new Lambda container would not.
    """
    from aws_lambda_powertools.utilities import parameters

    from spectra import config, deployment
    from spectra.http import idempotency

    parameters.clear_caches()  # type: ignore[no-untyped-call]
    config.get_settings.cache_clear()
    # Every per-container object the layer builds (deployment's cached factories) and the
    # idempotency store: all of them, so a new factory is never left stale by mistake.
    factories = [getattr(deployment, name) for name in dir(deployment)]
    for cached in [f for f in factories if hasattr(f, "cache_clear")] + [
        idempotency._persistence_layer,
        idempotency._config,
    ]:
        cached.cache_clear()


@dataclass
class LocalStack:
    template: Template
    resolver: IntrinsicResolver
    region: str
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    gateway: Gateway = field(init=False)
    _sqs: Any = field(default=None, init=False, repr=False)

    @classmethod
    def create(cls, template: Template | None = None, *, region: str = "us-east-1") -> LocalStack:
        """Create the template's resources in the current AWS endpoint and load its functions."""
        template = template or Template()
        reset_process_caches()
        return cls(template=template, resolver=materialize(template, region=region), region=region)

    @classmethod
    def attach(cls, template: Template, resolver: IntrinsicResolver, *, region: str = "us-east-1") -> LocalStack:
        """Use resources a running local runtime already created (the CLI's ``--local``)."""
        reset_process_caches()
        return cls(template=template, resolver=resolver, region=region)

    def __post_init__(self) -> None:
        for logical_id, spec in self.template.functions().items():
            environment = function_environment(self.template, spec.name, self.resolver)
            environment.setdefault("POWERTOOLS_SERVICE_NAME", spec.name)
            environment["AWS_REGION"] = self.region
            environment["AWS_DEFAULT_REGION"] = self.region
            if "CONTROL_PLANE_CALLS_PER_SECOND" in environment:
                # Pacing protects AWS's per-account API Gateway quotas; moto has none to protect.
                environment["CONTROL_PLANE_CALLS_PER_SECOND"] = str(LOCAL_CONTROL_PLANE_CALLS_PER_SECOND)
            self.functions[logical_id] = LocalFunction(spec=spec, environment=environment)
        self.gateway = Gateway(self.template, self.functions, region=self.region)
        self.queue_sources = queue_sources(self.functions, self.resolver)

    def close(self) -> None:
        """Discard the stack's function containers (the test that built it is over)."""
        for function in self.functions.values():
            function.unload()
        reset_process_caches()

    def deliver_queued(self) -> int:
        """Run the functions fed by SQS on what their queues hold now (Lambda's poller)."""
        if self._sqs is None:
            self._sqs = boto3.client("sqs", region_name=self.region)
        return deliver(self.queue_sources, sqs=self._sqs, region=self.region)

    def reattach_usage_identifiers(self) -> int:
        """After a restore: API Gateway's keys are not part of the saved state, so every org is
        queued for the usage identifier worker, which makes each key again with its old value."""
        from spectra.ratelimits.identifiers import UsageIdentifierRequests

        requests = UsageIdentifierRequests(
            boto3.client("sqs", region_name=self.region), self.environment("provisioning")["USAGE_IDENTIFIER_QUEUE_URL"]
        )
        orgs = self.provision({"action": "list_orgs"})["items"]
        for org in orgs:
            requests.request(str(org["orgId"]))
        self.deliver_queued()
        return len(orgs)

    def function(self, folder: str) -> LocalFunction:
        """The function whose code lives in ``functions/<folder>``."""
        return self.functions[self.template.function_by_folder(folder).logical_id]

    def environment(self, folder: str) -> Mapping[str, str]:
        return self.function(folder).environment

    def provision(self, command: Mapping[str, Any]) -> dict[str, Any]:
        """Run an operator command through the provisioning function."""
        result = self.function("provisioning").invoke({"command": dict(command)})
        if "error" in result:
            raise RuntimeError(json.dumps(result["error"]))
        self.deliver_queued()  # e.g. the new org's usage identifier, as the worker would soon
        return dict(result)

    def create_org(self, name: str, plan: str = "standard") -> dict[str, Any]:
        return self.provision({"action": "create_org", "name": name, "plan": plan})

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
        source_ip: str = "127.0.0.1",
    ) -> GatewayResponse:
        """A request through the gateway, as a client would send it."""
        all_headers = {"User-Agent": "spectra-tests"}
        if key is not None:
            all_headers["X-Api-Key"] = key
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        multi_query = {k: (v if isinstance(v, list) else [str(v)]) for k, v in (query or {}).items()}
        return self.gateway.request(
            method, path, headers=all_headers, query=multi_query, body=body, source_ip=source_ip
        )
