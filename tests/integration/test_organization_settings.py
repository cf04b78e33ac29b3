"""``/organization/settings``: the telemetry retention window and what changing it means."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from spectra.models.common import from_iso
from spectra_local.stack import LocalStack
from tests.integration.factories import Org, assert_problem, create_key, scope

SETTINGS = "/v2/organization/settings"


def test_retention_defaults_to_365_days(stack: LocalStack, org: Org) -> None:
    response = stack.request("GET", SETTINGS, key=org.admin_key)
    assert response.status == 200
    assert response.json() == {"telemetryRetentionDays": 365}


def test_shortening_retention_states_the_purge_cutoff(stack: LocalStack, org: Org) -> None:
    response = stack.request("PATCH", SETTINGS, key=org.admin_key, json_body={"telemetryRetentionDays": 30})

    change = response.json()
    assert response.status == 200
    assert (change["telemetryRetentionDays"], change["previousTelemetryRetentionDays"]) == (30, 365)
    cutoff, effective = from_iso(change["purgeCutoff"]), from_iso(change["effectiveFrom"])
    assert effective - cutoff == timedelta(days=30)
    assert "purged" in change["message"]
    assert stack.request("GET", SETTINGS, key=org.admin_key).json() == {"telemetryRetentionDays": 30}
    assert stack.request("GET", "/v2/organization", key=org.admin_key).json()["telemetryRetentionDays"] == 30


def test_lengthening_retention_has_no_cutoff(stack: LocalStack, org: Org) -> None:
    change = stack.request("PATCH", SETTINGS, key=org.admin_key, json_body={"telemetryRetentionDays": 3650}).json()
    assert change["purgeCutoff"] is None
    assert change["previousTelemetryRetentionDays"] == 365
    assert isinstance(from_iso(change["effectiveFrom"]), datetime)


@pytest.mark.parametrize("days", [0, 3651, -1, "ninety", None, 1.5])
def test_retention_outside_1_to_3650_days_is_400(stack: LocalStack, org: Org, days: object) -> None:
    response = stack.request("PATCH", SETTINGS, key=org.admin_key, json_body={"telemetryRetentionDays": days})
    problem = assert_problem(response, 400, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["telemetryRetentionDays"]


def test_unknown_setting_is_400(stack: LocalStack, org: Org) -> None:
    body = {"telemetryRetentionDays": 30, "orgId": org.org_id}
    assert_problem(stack.request("PATCH", SETTINGS, key=org.admin_key, json_body=body), 400, "validation_failed")


def test_settings_need_an_admin_scope(stack: LocalStack, org: Org) -> None:
    reader = create_key(stack, org.admin_key, scopes=[scope("read")]).secret
    assert_problem(stack.request("GET", SETTINGS, key=reader), 403, "forbidden_scope")
    body = {"telemetryRetentionDays": 1}
    assert_problem(stack.request("PATCH", SETTINGS, key=reader, json_body=body), 403, "forbidden_scope")


def test_each_org_has_its_own_retention(stack: LocalStack, org: Org, other_org: Org) -> None:
    stack.request("PATCH", SETTINGS, key=org.admin_key, json_body={"telemetryRetentionDays": 7})
    assert stack.request("GET", SETTINGS, key=other_org.admin_key).json() == {"telemetryRetentionDays": 365}
