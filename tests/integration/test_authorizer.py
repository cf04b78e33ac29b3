"""The REQUEST authorizer, through the emulated API Gateway and invoked directly."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from spectra.auth.credentials import ApiKeyCredential, KeyType
from spectra_local.stack import LocalStack
from tests.integration.factories import (
    ACCOUNT_ID,
    ORGANIZATION_PATH,
    Org,
    assert_problem,
    authorize,
    counting_calls,
    create_key,
    expire_authorizer_caches,
    expire_key,
    future,
    make_org,
    revoke,
    rotate,
    scope,
    secret_part,
    stored_key_record,
    unknown_key,
    usage_identifier_value,
)


def get_org(stack: LocalStack, key: str | None, source_ip: str = "127.0.0.1") -> int:
    return stack.request("GET", ORGANIZATION_PATH, key=key, source_ip=source_ip).status


def _flip(text: str, index: int) -> str:
    """``text`` with the character at ``index`` replaced by another base62 character."""
    position = index % len(text)
    replacement = "A" if text[position] != "A" else "B"
    return text[:position] + replacement + text[position + 1 :]


_VALID = unknown_key()
MALFORMED_KEYS = {
    "not a key": "hello",
    "bad checksum": _flip(_VALID, -1),
    "secret changed": _flip(_VALID, -10),
    "truncated": _VALID[:-3],
    "unknown type code": _VALID.replace("spx_ad_", "spx_zz_", 1),
    "upper-case key id": _VALID[:8] + _VALID[8:44].upper() + _VALID[44:],
    "trailing garbage": _VALID + "x",
}


# -- accepted ---------------------------------------------------------------------------------


def test_valid_admin_key_reads_its_organization(stack: LocalStack, org: Org) -> None:
    response = stack.request("GET", ORGANIZATION_PATH, key=org.admin_key)

    assert response.status == 200
    assert response.json()["orgId"] == org.org_id


# -- refused: 401 -----------------------------------------------------------------------------


def test_missing_key_header_is_401(stack: LocalStack, org: Org) -> None:
    response = stack.request("GET", ORGANIZATION_PATH)

    assert_problem(response, 401, "unauthorized")
    assert "X-Api-Key" in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("presented", MALFORMED_KEYS.values(), ids=MALFORMED_KEYS.keys())
def test_malformed_key_is_401(stack: LocalStack, org: Org, presented: str) -> None:
    assert_problem(stack.request("GET", ORGANIZATION_PATH, key=presented), 401, "unauthorized")


def test_malformed_keys_are_refused_without_a_store_read(stack: LocalStack) -> None:
    module = stack.function("authorizer").load()

    with counting_calls(module.dynamodb, "Query") as queries:
        for presented in MALFORMED_KEYS.values():
            stack.request("GET", ORGANIZATION_PATH, key=presented)

    assert stack.gateway.authorizer_calls == len(MALFORMED_KEYS)
    assert queries == []


def test_unknown_key_id_is_401(stack: LocalStack, org: Org) -> None:
    assert_problem(stack.request("GET", ORGANIZATION_PATH, key=unknown_key()), 401, "unauthorized")


def test_wrong_secret_for_a_real_key_id_is_401(stack: LocalStack, org: Org) -> None:
    forged = ApiKeyCredential.generate(KeyType.ADMIN, org.admin_key_id).reveal()

    assert_problem(stack.request("GET", ORGANIZATION_PATH, key=forged), 401, "unauthorized")


def test_key_presented_with_another_type_code_is_401(stack: LocalStack, org: Org) -> None:
    admin = ApiKeyCredential.parse(org.admin_key)
    as_external = ApiKeyCredential(KeyType.EXTERNAL, admin.key_id, admin.secret).reveal()

    assert get_org(stack, as_external) == 401


def test_revoked_key_is_401(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)
    assert get_org(stack, key.secret) == 200
    assert revoke(stack, org.admin_key, key.key_id).status == 200
    expire_authorizer_caches(stack)

    assert_problem(stack.request("GET", ORGANIZATION_PATH, key=key.secret), 401, "unauthorized")


def test_revoked_key_keeps_working_until_the_cached_decision_expires(stack: LocalStack, org: Org) -> None:
    """API Gateway's documented behaviour: a cached Allow is reused for the authorizer TTL."""
    key = create_key(stack, org.admin_key)
    assert get_org(stack, key.secret) == 200
    revoke(stack, org.admin_key, key.key_id)

    assert get_org(stack, key.secret) == 200
    expire_authorizer_caches(stack)
    assert get_org(stack, key.secret) == 401


def test_expired_key_is_401(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key, expires_at=future(3600))
    assert get_org(stack, key.secret) == 200
    expire_key(stack, org.org_id, key.key_id)
    expire_authorizer_caches(stack)

    assert_problem(stack.request("GET", ORGANIZATION_PATH, key=key.secret), 401, "unauthorized")


def test_suspended_org_keys_are_401(stack: LocalStack, org: Org) -> None:
    stack.provision({"action": "suspend_org", "orgId": org.org_id})
    expire_authorizer_caches(stack)

    assert_problem(stack.request("GET", ORGANIZATION_PATH, key=org.admin_key), 401, "unauthorized")


def test_resumed_org_keys_work_again(stack: LocalStack, org: Org) -> None:
    stack.provision({"action": "suspend_org", "orgId": org.org_id})
    expire_authorizer_caches(stack)
    assert get_org(stack, org.admin_key) == 401
    stack.provision({"action": "resume_org", "orgId": org.org_id})
    expire_authorizer_caches(stack)

    assert get_org(stack, org.admin_key) == 200


def test_suspension_reaches_keys_created_after_the_org(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)
    stack.provision({"action": "suspend_org", "orgId": org.org_id})
    expire_authorizer_caches(stack)

    assert get_org(stack, key.secret) == 401


# -- source IP allow-lists --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidrs", "source_ip", "status"),
    [
        (["203.0.113.0/24"], "203.0.113.7", 200),
        (["203.0.113.0/24"], "198.51.100.1", 403),
        (["203.0.113.7"], "203.0.113.7", 200),
        (["203.0.113.7"], "203.0.113.8", 403),
        (["2001:db8::/32"], "2001:db8:1::5", 200),
        (["2001:db8::/32"], "2001:db9::5", 403),
        (["2001:db8::/32"], "203.0.113.7", 403),
        (["10.0.0.0/8", "2001:db8::/32"], "10.20.30.40", 200),
    ],
    ids=["v4-inside", "v4-outside", "v4-address", "v4-other-address", "v6-inside", "v6-outside", "v4-vs-v6", "mixed"],
)
def test_ip_allow_list_decides_by_source_ip(
    stack: LocalStack, org: Org, cidrs: list[str], source_ip: str, status: int
) -> None:
    key = create_key(stack, org.admin_key, allowed_ip_cidrs=cidrs)

    assert get_org(stack, key.secret, source_ip=source_ip) == status


def test_request_from_outside_the_allow_list_is_403_problem(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key, allowed_ip_cidrs=["203.0.113.0/24"])

    response = stack.request("GET", ORGANIZATION_PATH, key=key.secret, source_ip="198.51.100.1")

    assert_problem(response, 403, "forbidden")


def test_ip_denied_decision_does_not_leak_to_an_allowed_ip(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key, allowed_ip_cidrs=["203.0.113.0/24"])
    assert get_org(stack, key.secret, source_ip="198.51.100.1") == 403

    assert get_org(stack, key.secret, source_ip="203.0.113.9") == 200


# -- rotation ---------------------------------------------------------------------------------


def test_rotated_key_new_secret_works(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)
    new_secret = rotate(stack, org.admin_key, key.key_id).json()["key"]
    expire_authorizer_caches(stack)

    assert get_org(stack, new_secret) == 200


def test_rotated_key_new_secret_works_immediately(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)
    assert get_org(stack, key.secret) == 200
    new_secret = rotate(stack, org.admin_key, key.key_id).json()["key"]

    assert get_org(stack, new_secret) == 200


def test_rotated_key_old_secret_works_within_grace(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)
    rotate(stack, org.admin_key, key.key_id, grace_seconds=600)
    expire_authorizer_caches(stack)

    assert get_org(stack, key.secret) == 200


def test_rotated_key_old_secret_fails_without_grace(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)
    rotate(stack, org.admin_key, key.key_id, grace_seconds=0)
    expire_authorizer_caches(stack)

    assert get_org(stack, key.secret) == 401


def test_rotated_key_old_secret_fails_after_grace(stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    key = create_key(stack, org.admin_key)
    rotate(stack, org.admin_key, key.key_id, grace_seconds=60)
    authorizer = stack.function("authorizer").load().authorizer
    monkeypatch.setattr(authorizer, "_clock", lambda: time.time() + 120)
    expire_authorizer_caches(stack)

    assert get_org(stack, key.secret) == 401


# -- caching and store reads ------------------------------------------------------------------


def test_warm_gateway_cache_does_not_invoke_the_authorizer(stack: LocalStack, org: Org) -> None:
    get_org(stack, org.admin_key)
    calls_after_first = stack.gateway.authorizer_calls

    get_org(stack, org.admin_key)

    assert stack.gateway.authorizer_calls == calls_after_first


def test_cold_cache_reads_the_store_once_per_key(stack: LocalStack, org: Org) -> None:
    module = stack.function("authorizer").load()
    calls_before = stack.gateway.authorizer_calls

    with counting_calls(module.dynamodb, "Query") as queries:
        get_org(stack, org.admin_key)

    assert stack.gateway.authorizer_calls == calls_before + 1
    assert [q["IndexName"] for q in queries] == ["credentials"]


def test_warm_authorizer_does_not_read_the_store(stack: LocalStack, org: Org) -> None:
    module = stack.function("authorizer").load()
    get_org(stack, org.admin_key, source_ip="203.0.113.1")
    calls_before = stack.gateway.authorizer_calls

    with counting_calls(module.dynamodb, "Query") as queries:
        get_org(stack, org.admin_key, source_ip="203.0.113.2")  # new IP: API Gateway asks again

    assert stack.gateway.authorizer_calls == calls_before + 1
    assert queries == []


def test_find_credential_runs_once_for_many_requests(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    authorizer = stack.function("authorizer").load().authorizer
    looked_up: list[str] = []
    find: Callable[[str], object] = authorizer._find_credential

    def counting_find(key_id: str) -> object:
        looked_up.append(key_id)
        return find(key_id)

    monkeypatch.setattr(authorizer, "_find_credential", counting_find)

    for source_ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        get_org(stack, org.admin_key, source_ip=source_ip)

    assert looked_up == [org.admin_key_id]


@dataclass
class _FakeClock:
    offset: float = 0.0

    def wall(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def test_revocation_takes_effect_within_twice_the_authorizer_ttl(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.gateway.authorizer is not None
    ttl = stack.gateway.authorizer.ttl_seconds
    clock = _FakeClock()
    monkeypatch.setattr("spectra_local.gateway.time", SimpleNamespace(time=clock.wall, monotonic=clock.monotonic))
    monkeypatch.setattr(stack.function("authorizer").load().authorizer, "_clock", clock.wall)
    key = create_key(stack, org.admin_key)
    assert get_org(stack, key.secret, source_ip="203.0.113.1") == 200
    assert revoke(stack, org.admin_key, key.key_id).status == 200

    # API Gateway's decision cache and the warm authorizer's record cache each last the TTL,
    # which is what template.yaml promises: within twice AuthorizerTtlSeconds.
    clock.offset = 2 * ttl + 2
    assert get_org(stack, key.secret, source_ip="203.0.113.2") == 401
    assert get_org(stack, key.secret, source_ip="203.0.113.1") == 401


# -- the authorizer's own response ------------------------------------------------------------


def test_allow_policy_covers_every_route_of_the_stage(stack: LocalStack, org: Org) -> None:
    statements = authorize(stack, org.admin_key)["policyDocument"]["Statement"]

    assert statements == [
        {
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": [f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:local/local/*/*"],
        }
    ]


def test_ip_denied_policy_is_an_explicit_deny_for_the_stage(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key, allowed_ip_cidrs=["203.0.113.0/24"])

    statements = authorize(stack, key.secret, source_ip="198.51.100.1")["policyDocument"]["Statement"]

    assert [(s["Effect"], s["Resource"]) for s in statements] == [
        ("Deny", [f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:local/local/*/*"])
    ]


def test_authorizer_context_names_org_key_type_scopes_plan_and_limits(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key, scopes=[scope("read", "THING/Battery/#")], allowed_ip_cidrs=["127.0.0.0/8"])

    output = authorize(stack, key.secret)

    assert output["principalId"] == key.key_id
    assert output["context"] == {
        "orgId": org.org_id,
        "keyId": key.key_id,
        "keyType": "external",
        "scopes": json.dumps([scope("read", "THING/Battery/#")], separators=(",", ":")),
        "plan": "standard",
        "limitOverrides": "{}",
        "allowedIpCidrs": '["127.0.0.0/8"]',
        "expiresAt": "",
    }


def test_authorizer_returns_the_orgs_usage_identifier_key(stack: LocalStack) -> None:
    metered = make_org(stack, "Metered Org")

    output = authorize(stack, metered.admin_key)

    assert output["usageIdentifierKey"] == usage_identifier_value(metered.org_id)


def test_authorizer_raises_unauthorized_for_a_missing_key(stack: LocalStack) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        stack.function("authorizer").invoke(
            {"type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:1:a/s/GET/x", "headers": {}}
        )


# -- what a refusal says ----------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    status: int
    request: Callable[[LocalStack, Org], tuple[str, str]]  # -> (presented key, key id)


def _revoked(stack: LocalStack, org: Org) -> tuple[str, str]:
    key = create_key(stack, org.admin_key)
    revoke(stack, org.admin_key, key.key_id)
    return key.secret, key.key_id


def _expired(stack: LocalStack, org: Org) -> tuple[str, str]:
    key = create_key(stack, org.admin_key, expires_at=future())
    expire_key(stack, org.org_id, key.key_id)
    return key.secret, key.key_id


def _wrong_secret(stack: LocalStack, org: Org) -> tuple[str, str]:
    return ApiKeyCredential.generate(KeyType.ADMIN, org.admin_key_id).reveal(), org.admin_key_id


def _ip_denied(stack: LocalStack, org: Org) -> tuple[str, str]:
    key = create_key(stack, org.admin_key, allowed_ip_cidrs=["2001:db8::/32"])
    return key.secret, key.key_id


REFUSALS = {
    "revoked": Refusal(401, _revoked),
    "expired": Refusal(401, _expired),
    "wrong-secret": Refusal(401, _wrong_secret),
    "ip-denied": Refusal(403, _ip_denied),
}


@pytest.mark.parametrize("refusal", REFUSALS.values(), ids=REFUSALS.keys())
def test_refusal_body_holds_neither_the_key_nor_its_hash(stack: LocalStack, org: Org, refusal: Refusal) -> None:
    presented, key_id = refusal.request(stack, org)
    stored = stored_key_record(stack, org.org_id, key_id)
    expire_authorizer_caches(stack)

    response = stack.request("GET", ORGANIZATION_PATH, key=presented, source_ip="198.51.100.1")

    assert_problem(response, refusal.status)
    text = response.body.decode("utf-8") + json.dumps(response.headers)
    for secret in (presented, secret_part(presented), stored["secretHash"], org.admin_key):
        assert secret not in text
