"""Every file under events/ runs against its function under moto with the expected outcome.

This is what keeps ``sam local invoke FUNCTION -e events/<function>/<scenario>.json`` working:
the API events carry a realistic authorizer context for a fixed org and key, which the fixture
below stores (profile and key hash) before each invocation. A new event file without a row in
``EXPECTED`` fails the suite, and so does a function without any event file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spectra.auth.credentials import ApiKeyCredential
from spectra.auth.scopes import Action, ResourceFilter, Scope
from spectra.deployment import organization_repository
from spectra.models.common import to_iso, utc_now
from spectra.platform_secrets import platform_secret
from spectra.services.api_keys import new_key_record
from spectra.tenancy.context import OrgContext
from spectra_local.functions import function_environment
from spectra_local.stack import LocalStack
from spectra_local.template import REPO_ROOT

EVENTS = REPO_ROOT / "events"
EVENT_ORG_ID = "6f1c2a8e-0d5b-4c1e-9a7f-3b2d1e0c9a84"


def _status(expected: int) -> Callable[[Any], None]:
    def check(result: Any) -> None:
        assert result["statusCode"] == expected, result.get("body")
        if expected >= 400:
            headers = {**(result.get("headers") or {}), **(result.get("multiValueHeaders") or {})}
            assert headers["Content-Type"] in ("application/problem+json", ["application/problem+json"])

    return check


def _allowed(result: Any) -> None:
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert result["context"]["orgId"] == EVENT_ORG_ID


def _created_org(result: Any) -> None:
    assert result["name"] == "Acme Utilities"
    assert result["adminKey"].startswith("spx_ad_")


def _lists_event_org(result: Any) -> None:
    assert EVENT_ORG_ID in {org["orgId"] for org in result["items"]}


def _suspended(result: Any) -> None:
    assert result["status"] == "Suspended"


UNAUTHORIZED = "Unauthorized"
EXAMPLE_SECRET_PREFIX = "whsec_example"
"""Every secret value in the integrations event files starts so; no response may show one."""


def _without_secrets(expected: int) -> Callable[[Any], None]:
    def check(result: Any) -> None:
        _status(expected)(result)
        assert EXAMPLE_SECRET_PREFIX not in (result.get("body") or "")

    return check


def _created_integration(result: Any) -> None:
    _without_secrets(201)(result)
    assert json.loads(result["body"])["secretPropertyNames"] == ["signingSecret"]


def _retention_pass_complete(result: Any) -> None:
    assert result["complete"] is True, result
    assert result["orgsFailed"] == 0


def _standard_plan_limits(result: Any) -> None:
    _status(200)(result)
    body = json.loads(result["body"])
    assert body["plan"] == "standard"
    assert [tier["tier"] for tier in body["tiers"]] == ["standard", "data-read"]
    assert result["multiValueHeaders"]["RateLimit-Limit"] == ["100"]


def _on_professional_plan(result: Any) -> None:
    assert result["plan"] == "professional", result


def _identifier_attached(result: Any) -> None:
    assert result == {"batchItemFailures": []}
    profile = organization_repository().get(OrgContext.for_operator(EVENT_ORG_ID))
    assert profile is not None
    assert profile["usageApiKeyId"]


def _audit_chain_valid(result: Any) -> None:
    assert result["statusCode"] == 200, result.get("body")
    assert json.loads(result["body"])["valid"] is True


EXPECTED: dict[str, Callable[[Any], None] | str] = {
    "authorizer/valid-admin-key.json": _allowed,
    "authorizer/unknown-key.json": UNAUTHORIZED,
    "authorizer/missing-key.json": UNAUTHORIZED,
    "api_keys/create-key.json": _status(201),
    "api_keys/create-key-invalid-scope.json": _status(400),
    "api_keys/list-keys.json": _status(200),
    "api_keys/get-key.json": _status(200),
    "api_keys/get-unknown-key.json": _status(404),
    "api_keys/rename-key.json": _status(200),
    "api_keys/rotate-key.json": _status(200),
    "api_keys/revoke-last-admin-key.json": _status(409),
    "organization/get-organization.json": _status(200),
    "organization/get-settings.json": _status(200),
    "organization/get-limits.json": _standard_plan_limits,
    "organization/list-audit-events.json": _status(200),
    "organization/verify-audit-events.json": _audit_chain_valid,
    "organization/shorten-retention.json": _status(200),
    "organization/retention-out-of-range.json": _status(400),
    "definitions/create-metric.json": _status(201),
    "definitions/create-metric-invalid-aggregation.json": _status(400),
    "definitions/list-metrics.json": _status(200),
    "definitions/get-metric-schema.json": _status(200),
    "definitions/get-unknown-metric.json": _status(404),
    "definitions/create-thing-type.json": _status(201),
    "definitions/create-thing-type-unknown-metric.json": _status(400),
    "definitions/list-templates.json": _status(200),
    "definitions/create-template-invalid-pointer.json": _status(400),
    "places/create-site.json": _status(201),
    "places/create-site-invalid-latitude.json": _status(400),
    "places/list-sites.json": _status(200),
    "places/get-unknown-site.json": _status(404),
    "places/create-fleet.json": _status(201),
    "things/list-things.json": _status(200),
    "things/get-unknown-thing.json": _status(404),
    "things/create-thing-in-unknown-site.json": _status(404),
    "things/create-thing-unknown-field.json": _status(400),
    "telemetry_ingest/frames-for-unknown-thing.json": _status(404),
    "telemetry_ingest/frames-without-metrics.json": _status(400),
    "telemetry_ingest/columns-for-unknown-thing.json": _status(404),
    "telemetry_query/thing-events-binned-for-unknown-thing.json": _status(404),
    "telemetry_query/thing-events-raw-window-over-24-hours.json": _status(400),
    "telemetry_query/recent-events-for-unknown-thing.json": _status(404),
    "telemetry_query/summary-for-unknown-thing.json": _status(404),
    "telemetry_query/site-timeseries-for-unknown-site.json": _status(404),
    "telemetry_query/fleet-timeseries-without-bins.json": _status(400),
    "integrations/get-mapping.json": _status(200),
    "integrations/create-webhook.json": _created_integration,
    "integrations/create-unknown-type.json": _without_secrets(400),
    "integrations/list-integrations.json": _status(200),
    "integrations/get-unknown-integration.json": _status(404),
    "integrations/patch-secret-properties.json": _without_secrets(400),
    "integrations/replace-secrets-of-unknown-integration.json": _without_secrets(404),
    "integrations/map-thing-of-unknown-integration.json": _status(404),
    "retention/scheduled.json": _retention_pass_complete,
    "provisioning/create-org.json": _created_org,
    "provisioning/list-orgs.json": _lists_event_org,
    "provisioning/suspend-org.json": _suspended,
    "provisioning/set-plan.json": _on_professional_plan,
    "usage_identifiers/attach-identifier.json": _identifier_attached,
}

EVENT_FILES = sorted(str(path.relative_to(EVENTS)) for path in EVENTS.glob("*/*.json"))


def _seed_event_org(stack: LocalStack) -> None:
    """Store the org and admin key that the API event files' authorizer context names."""
    admin_event = json.loads((EVENTS / "authorizer/valid-admin-key.json").read_text())
    credential = ApiKeyCredential.parse(admin_event["headers"]["X-Api-Key"])
    org = OrgContext.for_operator(EVENT_ORG_ID)
    now = utc_now()
    environment = dict(stack.environment("api_keys"))
    with function_environment(environment):
        profile = {
            "entity": "Organization",
            "orgId": EVENT_ORG_ID,
            "name": "Event files org",
            "plan": "standard",
            "status": "Active",
            "telemetryRetentionDays": 365,
            "createdAt": to_iso(now),
            "updatedAt": to_iso(now),
        }
        key = new_key_record(
            org,
            credential,
            pepper=platform_secret(environment["API_KEY_PEPPER_SECRET_ARN"]),
            name="Event files admin key",
            scopes=[Scope(Action.ALL, ResourceFilter(()))],
            allowed_ip_cidrs=[],
            expires_at=None,
            org_profile=profile,
            now=now,
        )
        organization_repository().create(org, profile, key)


def test_every_function_has_an_event_file(stack: LocalStack) -> None:
    folders = {spec.name for spec in stack.template.functions().values()}
    with_events = {Path(name).parts[0] for name in EVENT_FILES}
    assert folders <= with_events, f"functions without events/: {sorted(folders - with_events)}"


def test_every_event_file_has_an_expected_outcome() -> None:
    assert set(EVENT_FILES) == set(EXPECTED), "add a row to EXPECTED for each event file"


@pytest.mark.parametrize("name", EVENT_FILES)
def test_event_file_runs_against_its_function(stack: LocalStack, name: str) -> None:
    _seed_event_org(stack)
    event = json.loads((EVENTS / name).read_text())
    function = stack.function(Path(name).parts[0])
    expected = EXPECTED[name]
    if isinstance(expected, str):
        with pytest.raises(Exception, match=expected):
            function.invoke(event)
        return
    expected(function.invoke(event))
