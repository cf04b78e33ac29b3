"""API Gateway (REST, Lambda proxy) emulated in-process from the template.

Routes come from the functions' ``Api`` events, the authorizer and its TTL from the API's
``Auth`` section, and API Gateway's own errors from its ``GatewayResponses``. A request goes
through the same steps as on AWS: route match (unknown → MISSING_AUTHENTICATION_TOKEN), the
REQUEST authorizer (cached per identity source for the TTL; missing identity → 401, exception
"Unauthorized" → 401, Deny → 403, other failures → 500), the usage plan of the usage
identifier it returned (``spectra_local.usage_plans``: 403 without one, 429 over its throttle
or quota), then the proxy event to the function.
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

from spectra_local.functions import LocalFunction
from spectra_local.template import Template
from spectra_local.usage_plans import UsagePlanEmulator

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
SUPPORTED_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    org_id: str | None = None  # the authorizer's org, for the runtime's request log

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Route:
    method: str
    resource: str
    pattern: re.Pattern[str]
    function: str  # logical id


def _route_pattern(resource: str) -> re.Pattern[str]:
    parts = []
    for segment in resource.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(f"(?P<{segment[1:-2]}>.+)")
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "/?$")


@dataclass
class _CachedPolicy:
    output: dict[str, Any] | None
    error: str | None
    stored_at: float


@dataclass
class AuthorizerConfig:
    function: str
    header_sources: tuple[str, ...]
    context_sources: tuple[str, ...]
    ttl_seconds: int


@dataclass
class Gateway:
    """The REST API of one template, calling ``functions`` (by logical id) in-process."""

    template: Template
    functions: Mapping[str, LocalFunction]
    stage: str = "local"
    region: str = "us-east-1"
    api_id: str = "local"
    routes: list[Route] = field(default_factory=list)
    authorizer: AuthorizerConfig | None = None
    usage_plans: UsagePlanEmulator | None = None
    """Set when the API requires an API key (usage identifier) on its methods."""
    gateway_responses: dict[str, Any] = field(default_factory=dict)
    _policy_cache: dict[tuple[str, ...], _CachedPolicy] = field(default_factory=dict)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock)
    authorizer_calls: int = 0

    def __post_init__(self) -> None:
        for logical_id, spec in self.template.functions().items():
            for event in spec.api_events:
                self.routes.append(Route(event.method, event.path, _route_pattern(event.path), logical_id))
        # static segments before parameters, as API Gateway prefers the most specific match
        self.routes.sort(key=lambda r: (r.resource.count("{"), -len(r.resource)))
        apis = self.template.of_type("AWS::Serverless::Api")
        api = next(iter(apis.values()))["Properties"]
        self.gateway_responses = api.get("GatewayResponses", {})
        auth = api.get("Auth", {})
        if auth.get("ApiKeyRequired") and self.usage_plans is None:
            region = self.region
            self.usage_plans = UsagePlanEmulator(lambda: boto3.client("apigateway", region_name=region))
        name = auth.get("DefaultAuthorizer")
        if name:
            definition = auth["Authorizers"][name]
            function_ref = definition["FunctionArn"]["Fn::GetAtt"][0]
            identity = definition.get("Identity", {})
            ttl = identity.get("ReauthorizeEvery", 300)
            if isinstance(ttl, dict) and "Ref" in ttl:
                ttl = self.template.parameter_defaults().get(ttl["Ref"], 300)
            self.authorizer = AuthorizerConfig(
                function=function_ref,
                header_sources=tuple(identity.get("Headers", [])),
                context_sources=tuple(identity.get("Context", [])),
                ttl_seconds=int(ttl),
            )

    def clear_authorizer_cache(self) -> None:
        with self._cache_lock:
            self._policy_cache.clear()

    # -- request ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        query: Mapping[str, Sequence[str]] | None = None,
        body: bytes | None = None,
        source_ip: str = "127.0.0.1",
    ) -> GatewayResponse:
        """Serve one request as API Gateway would."""
        request_id = str(uuid.uuid4())
        context = {"requestId": request_id, "path": f"/{self.stage}{path}"}
        header_pairs = list(headers.items() if isinstance(headers, Mapping) else (headers or []))
        method = method.upper()
        if method not in SUPPORTED_METHODS:
            return self._gateway_error("MISSING_AUTHENTICATION_TOKEN", context)
        if body is not None and len(body) > MAX_PAYLOAD_BYTES:
            return self._gateway_error("REQUEST_TOO_LARGE", context)
        route, path_parameters = self._match(method, path)
        if route is None:
            return self._gateway_error("MISSING_AUTHENTICATION_TOKEN", context)

        single_headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in header_pairs:
            single_headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        query = query or {}
        request_context = {
            "resourcePath": route.resource,
            "httpMethod": method,
            "path": f"/{self.stage}{path}",
            "stage": self.stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": "123456789012",
            "apiId": self.api_id,
            "protocol": "HTTP/1.1",
            "domainName": "127.0.0.1",
            "identity": {"sourceIp": source_ip, "userAgent": single_headers.get("User-Agent", "")},
        }
        event: dict[str, Any] = {
            "resource": route.resource,
            "path": path,
            "httpMethod": method,
            "headers": single_headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": {k: list(v) for k, v in query.items()} or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": request_context,
            "body": None,
            "isBase64Encoded": False,
        }
        if body:
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode("ascii")
                event["isBase64Encoded"] = True

        if self.authorizer is not None:
            denied = self._authorize(route, event, context)
            if denied is not None:
                return denied
        try:
            result = self.functions[route.function].invoke(event)
        except Exception:  # a crashing function is a 502 from API Gateway, never a dead runtime
            return self._gateway_error("INTEGRATION_FAILURE", context)
        response = self._proxy_response(result, context)
        authorizer = event["requestContext"].get("authorizer") or {}
        return dataclasses.replace(response, org_id=authorizer.get("orgId"))

    def error_response(self, response_type: str, path: str) -> GatewayResponse:
        """One of API Gateway's own responses (for requests that never reach a route)."""
        return self._gateway_error(response_type, {"requestId": str(uuid.uuid4()), "path": f"/{self.stage}{path}"})

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            match = route.pattern.match(path)
            if match and route.method in {method, "ANY"}:
                return route, match.groupdict()
        return None, {}

    # -- authorizer ---------------------------------------------------------------------------

    def _authorize(self, route: Route, event: dict[str, Any], context: dict[str, Any]) -> GatewayResponse | None:
        assert self.authorizer is not None
        headers = {k.lower(): v for k, v in (event["headers"] or {}).items()}
        identity: list[str] = []
        for header in self.authorizer.header_sources:
            value = headers.get(header.lower())
            if not value:
                return self._gateway_error("UNAUTHORIZED", context)
            identity.append(value)
        for source in self.authorizer.context_sources:
            value = event["requestContext"]
            for part in source.split("."):
                value = value.get(part, {}) if isinstance(value, dict) else {}
            identity.append(str(value))
        method_arn = (
            f"arn:aws:execute-api:{self.region}:123456789012:{self.api_id}/{self.stage}/"
            f"{event['httpMethod']}{event['path']}"
        )
        cache_key = tuple(identity)
        now = time.monotonic()
        with self._cache_lock:
            cached = self._policy_cache.get(cache_key)
        if cached is None or now - cached.stored_at >= self.authorizer.ttl_seconds:
            cached = self._invoke_authorizer(event, method_arn, now)
            if self.authorizer.ttl_seconds > 0:
                with self._cache_lock:
                    self._policy_cache[cache_key] = cached
        if cached.error == "Unauthorized":
            return self._gateway_error("UNAUTHORIZED", context)
        if cached.error is not None or cached.output is None:
            return self._gateway_error("AUTHORIZER_FAILURE", context)
        if not _policy_allows(cached.output.get("policyDocument", {}), method_arn):
            return self._gateway_error("ACCESS_DENIED", context)
        if self.usage_plans is not None:
            refused = self.usage_plans.refused(cached.output.get("usageIdentifierKey"))
            if refused is not None:
                return self._gateway_error(refused, context)
        authorizer_context = dict(cached.output.get("context") or {})
        authorizer_context["principalId"] = cached.output.get("principalId")
        authorizer_context["integrationLatency"] = 0
        event["requestContext"]["authorizer"] = authorizer_context
        context["authorizer"] = authorizer_context
        return None

    def _invoke_authorizer(self, event: dict[str, Any], method_arn: str, now: float) -> _CachedPolicy:
        assert self.authorizer is not None
        self.authorizer_calls += 1
        authorizer_event = {
            "type": "REQUEST",
            "methodArn": method_arn,
            **{k: event[k] for k in ("resource", "path", "httpMethod", "headers", "multiValueHeaders")},
            "queryStringParameters": event["queryStringParameters"] or {},
            "multiValueQueryStringParameters": event["multiValueQueryStringParameters"] or {},
            "pathParameters": event["pathParameters"] or {},
            "stageVariables": {},
            "requestContext": event["requestContext"],
        }
        try:
            output = self.functions[self.authorizer.function].invoke(authorizer_event)
        except Exception as error:  # the authorizer's own failure, as API Gateway sees it
            return _CachedPolicy(output=None, error=str(error) or "error", stored_at=now)
        if not isinstance(output, dict) or "policyDocument" not in output:
            return _CachedPolicy(output=None, error="malformed authorizer response", stored_at=now)
        return _CachedPolicy(output=output, error=None, stored_at=now)

    # -- responses ----------------------------------------------------------------------------

    def _gateway_error(self, response_type: str, context: Mapping[str, Any]) -> GatewayResponse:
        definition = self.gateway_responses.get(response_type)
        if definition is None:
            fallback = (
                "DEFAULT_5XX" if response_type in {"AUTHORIZER_FAILURE", "INTEGRATION_FAILURE"} else "DEFAULT_4XX"
            )
            definition = self.gateway_responses.get(fallback, {})
        status = int(definition.get("StatusCode", 500))
        headers = {
            name: str(value).strip("'")
            for name, value in (definition.get("ResponseParameters", {}).get("Headers", {}) or {}).items()
        }
        template = (definition.get("ResponseTemplates") or {}).get("application/json", "")
        body = re.sub(r"\$context\.([A-Za-z.]+)", lambda m: str(_lookup(context, m.group(1))), template)
        headers.setdefault("Content-Type", "application/json")
        headers["x-amzn-RequestId"] = str(context["requestId"])
        headers["x-amzn-ErrorType"] = response_type
        return GatewayResponse(status=status, headers=headers, body=body.encode("utf-8"))

    def _proxy_response(self, result: Any, context: Mapping[str, Any]) -> GatewayResponse:
        if not isinstance(result, dict) or "statusCode" not in result:
            return self._gateway_error("INTEGRATION_FAILURE", context)
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[str(name)] = ", ".join(str(v) for v in values)
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
        headers["x-amzn-RequestId"] = str(context["requestId"])
        return GatewayResponse(status=int(result["statusCode"]), headers=headers, body=body)


def _lookup(context: Mapping[str, Any], dotted: str) -> Any:
    value: Any = context
    for part in dotted.split("."):
        value = value.get(part, "") if isinstance(value, Mapping) else ""
    return value


def _policy_allows(policy: Mapping[str, Any], method_arn: str) -> bool:
    """IAM-style evaluation of the authorizer's policy for this method ARN (explicit Deny wins)."""
    allowed = False
    for statement in policy.get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if not any(fnmatch.fnmatchcase(method_arn, resource) for resource in resources):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed
