"""The emulated API Gateway: what happens before and after a function runs."""

from __future__ import annotations

from typing import Any

from spectra_local.stack import LocalStack


def _crash(event: Any) -> Any:
    raise RuntimeError("boom")


def test_crashing_function_is_a_502_problem_and_the_gateway_survives(stack: LocalStack) -> None:
    org = stack.create_org("crash")
    organization = stack.function("organization")
    original = organization.invoke
    organization.invoke = _crash  # type: ignore[method-assign]
    failed = stack.request("GET", "/v2/organization", key=org["adminKey"])
    organization.invoke = original  # type: ignore[method-assign]
    assert failed.status == 502
    assert failed.headers["Content-Type"] == "application/problem+json"
    assert b"boom" not in failed.body
    assert stack.request("GET", "/v2/organization", key=org["adminKey"]).status == 200


def test_authorizer_failure_is_a_500_problem(stack: LocalStack) -> None:
    org = stack.create_org("authorizer-crash")
    authorizer = stack.function("authorizer")
    original = authorizer.invoke
    authorizer.invoke = _crash  # type: ignore[method-assign]
    response = stack.request("GET", "/v2/organization", key=org["adminKey"])
    authorizer.invoke = original  # type: ignore[method-assign]
    assert response.status == 500
    assert response.json()["code"] == "internal_error"


def test_authorizer_result_is_cached_per_key_and_source_ip(stack: LocalStack) -> None:
    org = stack.create_org("cache")
    for _ in range(3):
        stack.request("GET", "/v2/organization", key=org["adminKey"], source_ip="198.51.100.1")
    assert stack.gateway.authorizer_calls == 1
    stack.request("GET", "/v2/organization", key=org["adminKey"], source_ip="198.51.100.2")
    assert stack.gateway.authorizer_calls == 2


def test_authorizer_ttl_comes_from_the_template(stack: LocalStack) -> None:
    assert stack.gateway.authorizer is not None
    assert stack.gateway.authorizer.ttl_seconds == int(stack.template.parameter_defaults()["AuthorizerTtlSeconds"])
    assert stack.gateway.authorizer.header_sources == ("X-Api-Key",)


def test_proxy_event_carries_what_api_gateway_sends(stack: LocalStack) -> None:
    org = stack.create_org("event")
    seen: dict[str, Any] = {}
    organization = stack.function("organization")
    original = organization.invoke

    def capture(event: Any) -> Any:
        seen.update(event)
        return original(event)

    organization.invoke = capture  # type: ignore[method-assign]
    stack.request("GET", "/v2/organization", key=org["adminKey"], query={"a": ["1", "2"]}, source_ip="192.0.2.7")
    organization.invoke = original  # type: ignore[method-assign]
    assert seen["resource"] == "/v2/organization"
    assert seen["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert seen["queryStringParameters"] == {"a": "2"}
    context = seen["requestContext"]
    assert context["identity"]["sourceIp"] == "192.0.2.7"
    assert context["authorizer"]["orgId"] == org["orgId"]
    assert context["requestId"]
    assert context["stage"]


def test_non_utf8_body_is_sent_base64_encoded(stack: LocalStack) -> None:
    org = stack.create_org("binary")
    response = stack.request(
        "POST", "/v2/api-keys", key=org["adminKey"], body=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert response.json()["code"] == "malformed_body"
