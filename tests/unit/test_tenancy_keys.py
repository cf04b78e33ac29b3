"""Tenancy: every key is org-prefixed and delimited, and the org comes from the authorizer only."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from types import SimpleNamespace
from typing import Any, cast

import pytest

from spectra.auth.credentials import KeyType
from spectra.auth.scopes import Action, Scope
from spectra.errors import Unauthorized
from spectra.identifiers import MalformedId
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext
from tests.unit.factories import guid, make_authorizer_context, make_org_context, scopes_json

ORG = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
KEY = "5f6e7d8c-9b0a-4f1e-8d2c-3b4a5f6e7d8c"

# Every builder of an org-owned key, as (name, build(org) -> every string it writes).
OrgKeyBuilder = Callable[[OrgContext], list[str]]
ORG_KEY_BUILDERS: list[tuple[str, OrgKeyBuilder]] = [
    ("org_prefix", lambda org: [keys.org_prefix(org)]),
    ("org_profile_key.pk", lambda org: [keys.org_profile_key(org)["pk"]]),
    ("api_keys_partition", lambda org: [keys.api_keys_partition(org)]),
    ("api_key_key.pk", lambda org: [keys.api_key_key(org, KEY)["pk"]]),
    ("api_key_set_key.pk", lambda org: [keys.api_key_set_key(org)["pk"]]),
]


def org_context(org_id: str = ORG) -> OrgContext:
    return make_org_context(org_id=org_id)


def unchecked_org(org_id: str) -> OrgContext:
    """An object that looks like an OrgContext but skipped its validation (defence in depth)."""
    return cast(OrgContext, SimpleNamespace(org_id=org_id))


@pytest.mark.parametrize(("name", "build"), ORG_KEY_BUILDERS)
def test_org_key_starts_with_the_org_prefix(name: str, build: OrgKeyBuilder) -> None:
    for key in build(org_context()):
        assert key.startswith(f"ORG#{ORG}#"), name


@pytest.mark.parametrize(("name", "build"), ORG_KEY_BUILDERS)
def test_org_key_ends_with_a_delimiter(name: str, build: OrgKeyBuilder) -> None:
    for key in build(org_context()):
        assert key.endswith("#"), name


@pytest.mark.parametrize(("name", "build"), ORG_KEY_BUILDERS)
def test_org_key_never_starts_with_another_orgs_prefix(name: str, build: OrgKeyBuilder) -> None:
    other = org_context(guid())
    for key in build(org_context()):
        assert not key.startswith(keys.org_prefix(other)), name


@pytest.mark.parametrize(("name", "build"), ORG_KEY_BUILDERS)
def test_org_id_is_followed_by_the_delimiter(name: str, build: OrgKeyBuilder) -> None:
    # A delimiter right after the id means no id can be a string prefix of another org's keys.
    for key in build(org_context()):
        assert key[len("ORG#") + len(ORG)] == "#", name


@pytest.mark.parametrize(("name", "build"), ORG_KEY_BUILDERS)
@pytest.mark.parametrize("bad_org_id", ["acme", "", ORG.upper(), f"{ORG}#PROFILE", f"{ORG[:-1]}"])
def test_org_key_builder_refuses_malformed_org_id(name: str, build: OrgKeyBuilder, bad_org_id: str) -> None:
    with pytest.raises(MalformedId):
        build(unchecked_org(bad_org_id))


def test_org_profile_key() -> None:
    assert keys.org_profile_key(org_context()) == {"pk": f"ORG#{ORG}#PROFILE#", "sk": "PROFILE#"}


def test_org_registry_entry_is_in_the_registry_partition_with_a_delimited_org_id() -> None:
    assert keys.org_registry_entry(org_context()) == {"gsi1pk": "ORGS#", "gsi1sk": f"ORG#{ORG}#"}


def test_api_key_key_delimits_the_key_id() -> None:
    assert keys.api_key_key(org_context(), KEY) == {"pk": f"ORG#{ORG}#APIKEYS#", "sk": f"APIKEY#{KEY}#"}


def test_api_key_set_key() -> None:
    assert keys.api_key_set_key(org_context()) == {"pk": f"ORG#{ORG}#APIKEYS#", "sk": "KEYSET#"}


def test_credential_index_value_delimits_the_key_id() -> None:
    assert keys.credential_index_value(KEY) == f"APIKEY#{KEY}#"


def test_api_keys_of_two_orgs_never_share_a_partition() -> None:
    assert keys.api_key_key(org_context(), KEY)["pk"] != keys.api_key_key(org_context(guid()), KEY)["pk"]


BAD_IDS = ["", "acme", KEY.upper(), f"{KEY}#", f"{KEY}#KEYSET", f"KEYSET#{KEY}", KEY[:-1], f" {KEY}"]


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_api_key_key_refuses_malformed_key_id(bad_id: str) -> None:
    with pytest.raises(MalformedId):
        keys.api_key_key(org_context(), bad_id)


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_credential_index_value_refuses_malformed_key_id(bad_id: str) -> None:
    with pytest.raises(MalformedId):
        keys.credential_index_value(bad_id)


def test_registry_entry_refuses_malformed_org_id() -> None:
    with pytest.raises(MalformedId):
        keys.org_registry_entry(unchecked_org("acme"))


# --- OrgContext.from_authorizer ----------------------------------------------------------------


def test_context_is_built_from_the_authorizer() -> None:
    authorizer = make_authorizer_context(
        orgId=ORG,
        keyId=KEY,
        keyType="admin",
        plan="enterprise",
        scopes=scopes_json(
            [{"action": "write", "resourceFilter": "THING/Battery/#"}, {"action": "admin", "resourceFilter": ""}]
        ),
    )
    context = OrgContext.from_authorizer(authorizer, request_id="req-1", source_ip="203.0.113.7")
    assert context.org_id == ORG
    assert context.key_id == KEY
    assert context.actor == KEY
    assert context.key_type is KeyType.ADMIN
    assert context.plan == "enterprise"
    assert context.request_id == "req-1"
    assert context.source_ip == "203.0.113.7"
    assert context.scopes == (Scope.parse("write", "THING/Battery/#"), Scope.parse("admin", ""))


@pytest.mark.parametrize("plan", [None, ""])
def test_missing_plan_defaults_to_standard(plan: str | None) -> None:
    assert OrgContext.from_authorizer(make_authorizer_context(plan=plan)).plan == "standard"


def test_empty_scope_list_gives_a_context_with_no_scopes() -> None:
    assert OrgContext.from_authorizer(make_authorizer_context(scopes="[]")).scopes == ()


@pytest.mark.parametrize("authorizer", [None, {}])
def test_missing_authorizer_is_unauthorized(authorizer: dict[str, Any] | None) -> None:
    with pytest.raises(Unauthorized):
        OrgContext.from_authorizer(authorizer)


@pytest.mark.parametrize("field", ["orgId", "keyId", "keyType", "scopes"])
def test_missing_field_is_unauthorized(field: str) -> None:
    authorizer = make_authorizer_context()
    del authorizer[field]
    with pytest.raises(Unauthorized):
        OrgContext.from_authorizer(authorizer)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"orgId": "acme"}, id="org not a guid"),
        pytest.param({"orgId": ORG.upper()}, id="org upper-case"),
        pytest.param({"orgId": ""}, id="org empty"),
        pytest.param({"orgId": None}, id="org null"),
        pytest.param({"keyType": "superuser"}, id="unknown key type"),
        pytest.param({"keyType": "ad"}, id="key type code instead of name"),
        pytest.param({"scopes": "not json"}, id="scopes not json"),
        pytest.param({"scopes": ""}, id="scopes empty string"),
        pytest.param({"scopes": "null"}, id="scopes null"),
        pytest.param({"scopes": "42"}, id="scopes a number"),
        pytest.param({"scopes": '{"action": "read", "resourceFilter": ""}'}, id="scopes an object"),
        pytest.param({"scopes": '["read"]'}, id="scope a string"),
        pytest.param({"scopes": '[{"action": "read"}]'}, id="scope without filter"),
        pytest.param({"scopes": '[{"resourceFilter": ""}]'}, id="scope without action"),
        pytest.param({"scopes": '[{"action": "delete", "resourceFilter": ""}]'}, id="unknown action"),
        pytest.param({"scopes": '[{"action": "read", "resourceFilter": "NOPE/#"}]'}, id="bad filter"),
        pytest.param({"scopes": '[{"action": "read", "resourceFilter": 7}]'}, id="filter not a string"),
    ],
)
def test_garbled_authorizer_context_is_unauthorized(overrides: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        OrgContext.from_authorizer(make_authorizer_context(**overrides))


def test_context_cannot_be_built_for_a_non_guid_org() -> None:
    with pytest.raises(Unauthorized):
        make_org_context(org_id="acme")


def test_context_is_immutable() -> None:
    context = org_context()
    with pytest.raises(FrozenInstanceError):
        context.org_id = guid()  # type: ignore[misc]


def test_operator_context_has_full_access_to_its_org_only() -> None:
    context = OrgContext.for_operator(ORG)
    assert context.org_id == ORG
    assert context.key_type is KeyType.ADMIN
    assert [scope.action for scope in context.scopes] == [Action.ALL]
    assert keys.org_prefix(context) == f"ORG#{ORG}#"


def test_scopes_json_round_trip_matches_as_dict() -> None:
    scope = Scope.parse("read", "THING/Battery/#")
    authorizer = make_authorizer_context(scopes=json.dumps([scope.as_dict()]))
    assert OrgContext.from_authorizer(authorizer).scopes == (scope,)
