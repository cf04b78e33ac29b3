"""``/v2/api-keys``: every route, as a client calls it through API Gateway."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from spectra.models.common import from_iso
from spectra_local.stack import LocalStack
from tests.integration.factories import (
    API_KEYS_PATH,
    FULL_ACCESS,
    ORGANIZATION_PATH,
    Org,
    assert_problem,
    create_admin_key,
    create_key,
    expire_authorizer_caches,
    expire_key,
    future,
    key_body,
    key_path,
    list_all_key_ids,
    list_keys,
    proxy_event,
    raw_key_item,
    revoke,
    rotate,
    scope,
    secret_part,
)

KEY_RECORD_FIELDS = {
    "keyId",
    "name",
    "type",
    "scopes",
    "allowedIpCidrs",
    "expiresAt",
    "status",
    "createdAt",
    "createdBy",
    "lastUsedAt",
}
NARROW_ADMIN_SCOPES = [scope("admin", "ORGANIZATION"), scope("read", "DEFINITION")]


def post_key(stack: LocalStack, caller: str, body: Any, **headers: str) -> Any:
    return stack.request("POST", API_KEYS_PATH, key=caller, json_body=body, headers=headers)


def patch_key(stack: LocalStack, caller: str, key_id: str, body: Any) -> Any:
    return stack.request("PATCH", key_path(key_id), key=caller, json_body=body)


def make_keys(stack: LocalStack, org: Org, count: int) -> list[str]:
    return [create_key(stack, org.admin_key, name=f"key {n}").key_id for n in range(count)]


def without_request_details(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k not in {"requestId", "instance"}}


def tamper(token: str) -> str:
    body, signature = token.split(".")
    return f"{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{signature}"


# -- create -----------------------------------------------------------------------------------


def test_create_returns_201_with_location_and_the_key(stack: LocalStack, org: Org) -> None:
    response = post_key(stack, org.admin_key, key_body("ingest"))

    assert response.status == 201
    created = response.json()
    assert response.headers["Location"] == f"{API_KEYS_PATH}/{created['keyId']}"
    assert created["key"].startswith(f"spx_ex_{created['keyId']}_")


def test_created_key_has_the_documented_shape(stack: LocalStack, org: Org) -> None:
    created = post_key(stack, org.admin_key, key_body("ingest", scopes=[scope("read", "THING/Battery/#")])).json()

    assert KEY_RECORD_FIELDS | {"key"} <= created.keys()
    assert created["scopes"] == [scope("read", "THING/Battery/#")]
    assert (created["status"], created["type"], created["createdBy"]) == ("Active", "external", org.admin_key_id)


def test_created_key_can_call_the_api(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)

    assert stack.request("GET", ORGANIZATION_PATH, key=key.secret).status == 200


def test_get_never_returns_the_key_again(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)

    record = stack.request("GET", key_path(key.key_id), key=org.admin_key).json()

    assert "key" not in record
    assert key.secret not in json.dumps(record)


def test_list_never_returns_a_key(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)

    page = list_keys(stack, org.admin_key).json()

    assert all("key" not in item and "secretHash" not in item for item in page["items"])
    assert secret_part(key.secret) not in json.dumps(page)


def test_stored_record_holds_only_a_hash_of_the_key(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)

    item = raw_key_item(stack, org.org_id, key.key_id)

    text = json.dumps(item)
    assert secret_part(key.secret) not in text
    assert re.fullmatch(r"[0-9a-f]{64}", item["secretHash"]["S"])


def test_ip_allow_list_is_stored_in_canonical_form(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key, allowed_ip_cidrs=["2001:DB8::/32", "203.0.113.7", "203.0.113.7/32"])

    assert key.record["allowedIpCidrs"] == ["2001:db8::/32", "203.0.113.7/32"]


# -- list -------------------------------------------------------------------------------------


def test_list_pages_through_every_key_once(stack: LocalStack, org: Org) -> None:
    created = make_keys(stack, org, 4)

    listed = list_all_key_ids(stack, org.admin_key, limit=2)

    assert sorted(listed) == sorted([org.admin_key_id, *created])


def test_list_reports_has_more_until_the_last_page(stack: LocalStack, org: Org) -> None:
    make_keys(stack, org, 4)
    pages = []
    token = None
    for _ in range(3):
        query = {"limit": 2, **({"continuationToken": token} if token else {})}
        page = list_keys(stack, org.admin_key, **query).json()
        pages.append((len(page["items"]), page["hasMore"], page["continuationToken"] is not None))
        token = page["continuationToken"]

    assert pages == [(2, True, True), (2, True, True), (1, False, False)]


def test_page_limit_is_an_alias_of_limit(stack: LocalStack, org: Org) -> None:
    make_keys(stack, org, 4)

    assert list_all_key_ids(stack, org.admin_key, pageLimit=2) == list_all_key_ids(stack, org.admin_key, limit=2)
    assert len(list_keys(stack, org.admin_key, pageLimit=2).json()["items"]) == 2


@pytest.mark.parametrize("status", ["Active", "Expired", "Revoked"])
def test_list_filters_by_status(stack: LocalStack, org: Org, status: str) -> None:
    active, expired, revoked = make_keys(stack, org, 3)
    expire_key(stack, org.org_id, expired)
    revoke(stack, org.admin_key, revoked)
    expected = {"Active": {org.admin_key_id, active}, "Expired": {expired}, "Revoked": {revoked}}[status]

    page = list_keys(stack, org.admin_key, status=status).json()

    assert {item["keyId"] for item in page["items"]} == expected
    assert {item["status"] for item in page["items"]} == {status}


def test_list_searches_names_case_insensitively(stack: LocalStack, org: Org) -> None:
    wanted = create_key(stack, org.admin_key, name="Battery INGEST bot").key_id
    create_key(stack, org.admin_key, name="dashboard")

    page = list_keys(stack, org.admin_key, name="ingest").json()

    assert [item["keyId"] for item in page["items"]] == [wanted]


@pytest.mark.parametrize(
    "mangle",
    [tamper, lambda t: t.split(".")[0] + ".AAAA", lambda t: t.replace(".", ""), lambda _t: "not-a-token"],
    ids=["payload-changed", "signature-replaced", "no-signature", "garbage"],
)
def test_tampered_continuation_token_is_400(stack: LocalStack, org: Org, mangle: Any) -> None:
    make_keys(stack, org, 2)
    token = list_keys(stack, org.admin_key, limit=1).json()["continuationToken"]

    response = list_keys(stack, org.admin_key, limit=1, continuationToken=mangle(token))

    assert_problem(response, 400, "invalid_continuation_token")


def test_continuation_token_of_another_org_is_400(stack: LocalStack, org: Org, other_org: Org) -> None:
    make_keys(stack, org, 1)
    make_keys(stack, other_org, 1)
    foreign = list_keys(stack, other_org.admin_key, limit=1).json()["continuationToken"]

    response = list_keys(stack, org.admin_key, limit=1, continuationToken=foreign)

    assert_problem(response, 400, "invalid_continuation_token")


def test_continuation_token_of_another_query_is_400(stack: LocalStack, org: Org) -> None:
    make_keys(stack, org, 2)
    token = list_keys(stack, org.admin_key, limit=1).json()["continuationToken"]

    response = list_keys(stack, org.admin_key, limit=1, status="Active", continuationToken=token)

    assert_problem(response, 400, "invalid_continuation_token")


def test_list_shows_only_the_callers_org(stack: LocalStack, org: Org, other_org: Org) -> None:
    make_keys(stack, other_org, 2)

    assert list_all_key_ids(stack, org.admin_key) == [org.admin_key_id]


# -- get --------------------------------------------------------------------------------------


def test_get_returns_the_key_record(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key, name="reader")

    response = stack.request("GET", key_path(key.key_id), key=org.admin_key)

    assert response.status == 200
    assert {k: v for k, v in response.json().items() if k in KEY_RECORD_FIELDS} == {
        k: v for k, v in key.record.items() if k in KEY_RECORD_FIELDS
    }


def test_unknown_malformed_and_foreign_key_ids_get_the_same_404(stack: LocalStack, org: Org, other_org: Org) -> None:
    ids = {
        "unknown": "0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11",
        "malformed": "not-a-guid",
        "foreign": other_org.admin_key_id,
    }

    problems = {
        name: assert_problem(stack.request("GET", key_path(i), key=org.admin_key), 404, "not_found")
        for name, i in ids.items()
    }

    assert without_request_details(problems["unknown"]) == without_request_details(problems["malformed"])
    assert without_request_details(problems["unknown"]) == without_request_details(problems["foreign"])
    assert other_org.org_id not in json.dumps(problems)


# -- patch ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": "renamed"}, {"name": "renamed"}),
        ({"scopes": [scope("write", "THING/Battery/#")]}, {"scopes": [scope("write", "THING/Battery/#")]}),
        ({"allowedIpCidrs": ["10.0.0.0/8"]}, {"allowedIpCidrs": ["10.0.0.0/8"]}),
        ({"allowedIpCidrs": None}, {"allowedIpCidrs": []}),
        ({"expiresAt": "2099-01-02T03:04:05.000Z"}, {"expiresAt": "2099-01-02T03:04:05.000Z"}),
    ],
    ids=["name", "scopes", "ips", "ips-cleared", "expiry"],
)
def test_patch_changes_a_field(stack: LocalStack, org: Org, change: dict[str, Any], expected: dict[str, Any]) -> None:
    key = create_key(stack, org.admin_key, allowed_ip_cidrs=["203.0.113.0/24"])

    response = patch_key(stack, org.admin_key, key.key_id, change)

    assert response.status == 200
    assert {k: response.json()[k] for k in expected} == expected
    stored = stack.request("GET", key_path(key.key_id), key=org.admin_key).json()
    assert {k: stored[k] for k in expected} == expected


def test_patch_leaves_absent_fields_unchanged(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key, name="keep", allowed_ip_cidrs=["203.0.113.0/24"], expires_at=future())

    updated = patch_key(stack, org.admin_key, key.key_id, {"name": "renamed"}).json()

    assert (updated["allowedIpCidrs"], updated["expiresAt"], updated["scopes"]) == (
        key.record["allowedIpCidrs"],
        key.record["expiresAt"],
        key.record["scopes"],
    )


def test_patch_expires_at_null_clears_the_expiry(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key, expires_at=future())

    updated = patch_key(stack, org.admin_key, key.key_id, {"expiresAt": None}).json()

    assert updated["expiresAt"] is None
    assert stack.request("GET", key_path(key.key_id), key=org.admin_key).json()["expiresAt"] is None


def test_patch_records_who_changed_the_key(stack: LocalStack, org: Org) -> None:
    admin = create_admin_key(stack, org)
    key = create_key(stack, org.admin_key)

    updated = patch_key(stack, admin.secret, key.key_id, {"name": "renamed"}).json()

    assert (updated["createdBy"], updated["updatedBy"]) == (org.admin_key_id, admin.key_id)


def test_patch_revoked_key_is_409(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)
    revoke(stack, org.admin_key, key.key_id)

    assert_problem(patch_key(stack, org.admin_key, key.key_id, {"name": "again"}), 409, "conflict")


# -- revoke -----------------------------------------------------------------------------------


def test_revoke_marks_the_key_revoked(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)

    response = revoke(stack, org.admin_key, key.key_id)

    assert response.status == 200
    assert response.json()["status"] == "Revoked"
    assert response.json()["revokedAt"] is not None


def test_revoking_the_last_active_admin_key_is_409(stack: LocalStack, org: Org) -> None:
    assert_problem(revoke(stack, org.admin_key, org.admin_key_id), 409, "conflict")


def test_one_of_two_admin_keys_can_be_revoked(stack: LocalStack, org: Org) -> None:
    create_admin_key(stack, org)

    assert revoke(stack, org.admin_key, org.admin_key_id).json()["status"] == "Revoked"


def test_expired_admin_key_does_not_count_as_the_last_active_one(stack: LocalStack, org: Org) -> None:
    spare = create_admin_key(stack, org)
    expire_key(stack, org.org_id, spare.key_id)

    assert_problem(revoke(stack, org.admin_key, org.admin_key_id), 409, "conflict")


def test_revoking_a_revoked_key_returns_it_unchanged(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)
    first = revoke(stack, org.admin_key, key.key_id).json()

    again = revoke(stack, org.admin_key, key.key_id)

    assert again.status == 200
    assert again.json() == first


# -- rotate -----------------------------------------------------------------------------------


def test_rotate_issues_a_new_secret_for_the_same_key(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)

    rotated = rotate(stack, org.admin_key, key.key_id, grace_seconds=600).json()

    assert rotated["keyId"] == key.key_id
    assert rotated["key"].startswith(f"spx_ex_{key.key_id}_")
    assert rotated["key"] != key.secret


def test_rotate_reports_the_grace_window(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)

    rotated = rotate(stack, org.admin_key, key.key_id, grace_seconds=600).json()

    window = from_iso(rotated["previousSecretValidUntil"]) - from_iso(rotated["rotatedAt"])
    assert timedelta(seconds=599) <= window <= timedelta(seconds=601)


def test_rotate_without_a_body_keeps_the_old_secret_for_an_hour(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)

    rotated = rotate(stack, org.admin_key, key.key_id).json()

    window = from_iso(rotated["previousSecretValidUntil"]) - from_iso(rotated["rotatedAt"])
    assert timedelta(seconds=3599) <= window <= timedelta(seconds=3601)


def test_rotated_keys_both_work_during_grace(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)
    new_secret = rotate(stack, org.admin_key, key.key_id, grace_seconds=600).json()["key"]
    expire_authorizer_caches(stack)

    statuses = [stack.request("GET", ORGANIZATION_PATH, key=k).status for k in (new_secret, key.secret)]

    assert statuses == [200, 200]


def test_rotate_revoked_key_is_409(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)
    revoke(stack, org.admin_key, key.key_id)

    assert_problem(rotate(stack, org.admin_key, key.key_id), 409, "conflict")


# -- privilege escalation ---------------------------------------------------------------------


def test_external_key_cannot_reach_api_keys(stack: LocalStack, org: Org) -> None:
    writer = create_key(stack, org.admin_key, scopes=[scope("write", "THING/#/#")])

    response = post_key(stack, writer.secret, key_body("escalate", scopes=FULL_ACCESS))

    assert_problem(response, 403, "forbidden_scope")


@pytest.mark.parametrize(
    "requested",
    [[scope("write")], [scope("write", "DEFINITION/#/#")], [scope("read")], [scope("read", "THING/#/#")]],
    ids=["write-all", "write-definitions", "read-all", "read-things"],
)
def test_key_cannot_grant_beyond_its_own_scopes(stack: LocalStack, org: Org, requested: list[dict[str, str]]) -> None:
    narrow = create_admin_key(stack, org, NARROW_ADMIN_SCOPES)

    response = post_key(stack, narrow.secret, key_body("wider", scopes=requested))

    assert_problem(response, 403, "forbidden_scope")


def test_key_can_grant_within_its_own_scopes(stack: LocalStack, org: Org) -> None:
    narrow = create_admin_key(stack, org, NARROW_ADMIN_SCOPES)

    response = post_key(stack, narrow.secret, key_body("narrower", scopes=[scope("read", "DEFINITION/Metric/#")]))

    assert response.status == 201


def test_narrow_admin_key_cannot_create_a_full_admin_key(stack: LocalStack, org: Org) -> None:
    narrow = create_admin_key(stack, org, NARROW_ADMIN_SCOPES)

    response = post_key(stack, narrow.secret, key_body("root", type="admin", scopes=FULL_ACCESS))

    assert_problem(response, 403, "forbidden_scope")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("PATCH", None, {"name": "mine now"}), ("POST", "revoke", None), ("POST", "rotate", None)],
    ids=["patch", "revoke", "rotate"],
)
def test_admin_key_cannot_manage_a_wider_key(
    stack: LocalStack, org: Org, method: str, suffix: str | None, body: Any
) -> None:
    narrow = create_admin_key(stack, org, NARROW_ADMIN_SCOPES)

    response = stack.request(method, key_path(org.admin_key_id, suffix), key=narrow.secret, json_body=body)

    assert_problem(response, 403, "forbidden_scope")


def test_admin_key_cannot_widen_a_key_beyond_its_own_scopes(stack: LocalStack, org: Org) -> None:
    narrow = create_admin_key(stack, org, NARROW_ADMIN_SCOPES)
    key = create_key(stack, narrow.secret, scopes=[scope("read", "DEFINITION/Metric/#")])

    response = patch_key(stack, narrow.secret, key.key_id, {"scopes": [scope("write")]})

    assert_problem(response, 403, "forbidden_scope")


# -- validation -------------------------------------------------------------------------------


def test_org_id_in_the_body_is_refused(stack: LocalStack, org: Org, other_org: Org) -> None:
    response = post_key(stack, org.admin_key, {**key_body(), "orgId": other_org.org_id})

    assert_problem(response, 400, "validation_failed")
    assert list_all_key_ids(stack, other_org.admin_key) == [other_org.admin_key_id]


# -- Idempotency-Key --------------------------------------------------------------------------


def test_idempotent_retry_replays_the_first_response_without_the_secret(stack: LocalStack, org: Org) -> None:
    first = post_key(stack, org.admin_key, key_body("once"), **{"Idempotency-Key": "create-1"})

    retry = post_key(stack, org.admin_key, key_body("once"), **{"Idempotency-Key": "create-1"})

    first_without_secret = {k: v for k, v in first.json().items() if k != "key"}
    assert (retry.status, retry.json()) == (first.status, first_without_secret)
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_idempotent_retry_creates_one_key(stack: LocalStack, org: Org) -> None:
    for _ in range(3):
        post_key(stack, org.admin_key, key_body("once"), **{"Idempotency-Key": "create-1"})

    assert len(list_all_key_ids(stack, org.admin_key)) == 2  # the initial admin key and this one


def test_idempotency_key_reused_with_another_body_is_409(stack: LocalStack, org: Org) -> None:
    post_key(stack, org.admin_key, key_body("once"), **{"Idempotency-Key": "create-1"})

    response = post_key(stack, org.admin_key, key_body("twice"), **{"Idempotency-Key": "create-1"})

    assert_problem(response, 409, "idempotency_key_reused")


def test_same_idempotency_key_in_another_org_is_independent(stack: LocalStack, org: Org, other_org: Org) -> None:
    mine = post_key(stack, org.admin_key, key_body("once"), **{"Idempotency-Key": "create-1"})

    theirs = post_key(stack, other_org.admin_key, key_body("once"), **{"Idempotency-Key": "create-1"})

    assert theirs.status == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["keyId"] != mine.json()["keyId"]
    assert len(list_all_key_ids(stack, other_org.admin_key)) == 2


def test_failed_request_is_not_remembered(stack: LocalStack, org: Org) -> None:
    post_key(stack, org.admin_key, key_body(scopes=[scope("read", "BAD")]), **{"Idempotency-Key": "create-1"})

    response = post_key(stack, org.admin_key, key_body(), **{"Idempotency-Key": "create-1"})

    assert response.status == 201
    assert "Idempotent-Replayed" not in response.headers


# -- routes and error format ------------------------------------------------------------------


def test_wrong_method_reaching_the_function_is_405_with_allow(stack: LocalStack, org: Org) -> None:
    path = key_path(org.admin_key_id)
    event = proxy_event(
        stack,
        org.admin_key,
        "DELETE",
        path,
        resource="/v2/api-keys/{keyId}",
        path_parameters={"keyId": org.admin_key_id},
    )

    result = stack.function("api_keys").invoke(event)

    assert result["statusCode"] == 405
    headers = {k: ", ".join(v) for k, v in result["multiValueHeaders"].items()}
    assert headers["Allow"] == "GET, PATCH"
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(result["body"])["code"] == "method_not_allowed"


def test_every_error_is_problem_json_without_a_traceback(stack: LocalStack, org: Org) -> None:
    responses = [
        post_key(stack, org.admin_key, {"name": "x"}),
        stack.request("GET", key_path("0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11"), key=org.admin_key),
        revoke(stack, org.admin_key, org.admin_key_id),
        list_keys(stack, org.admin_key, continuationToken="x.y"),
        stack.request("GET", API_KEYS_PATH),
        stack.request("GET", "/v2/nothing-here", key=org.admin_key),
        stack.request("POST", API_KEYS_PATH, key=org.admin_key, body=b"{", headers={"Content-Type": "text/plain"}),
    ]

    for response in responses:
        assert_problem(response, response.status)
        text = response.body.decode("utf-8")
        assert 'File "' not in text
        assert "Exception" not in text
