"""``/v2/integrations``: every route, as a client calls it through API Gateway, and the secrets as
Secrets Manager holds them.

Every test runs under ``no_secret_escapes``: each response (body and headers) and each log line
and printed metric of the test is kept, and none may contain a secret value the test wrote
(they all carry ``CANARY``), whether the request succeeded, was refused or failed half-way.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spectra.tenancy.context import OrgContext
from spectra.tenancy.keys import integration_key
from spectra_local.gateway import GatewayResponse
from spectra_local.stack import LocalStack
from tests.integration.definition_factories import TOKEN_MANGLERS, error_fields, is_iso, list_all, list_page, raw_record
from tests.integration.factories import Org, assert_problem, captured_logs, counting_calls, scope
from tests.integration.integration_factories import (
    CANARY,
    CATALOG_PATH,
    INTEGRATION_RECORD_FIELDS,
    INTEGRATIONS_PATH,
    MAPPINGS_PATH,
    describe_secret,
    failing,
    function_records_client,
    function_secrets_client,
    integration_path,
    make_integration,
    make_mapping,
    mapping_body,
    mapping_path,
    mqtt_body,
    org_secrets,
    post_integration,
    post_mapping,
    put_secrets,
    resource_policy,
    secret_name,
    secret_properties_path,
    secret_text,
    stored_secret_values,
    telematics_body,
    webhook_body,
)
from tests.integration.place_factories import (
    UNKNOWN_ID,
    key_with,
    make_fleet,
    make_site,
    make_thing,
    make_type,
    patch,
    read,
    table_items,
)

RECORD_STAMPS = {"createdAt", "updatedAt", "createdBy", "updatedBy"}
OPERATOR_ROLE_ARN = "arn:aws:iam::123456789012:role/spectra-operator"


@pytest.fixture(autouse=True)
def no_secret_escapes(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[None]:
    """Keep every response, log line and printed line of the test; none may carry a secret value."""
    said: list[str] = []
    send = stack.request

    def recorded(method: str, path: str, **kwargs: Any) -> GatewayResponse:
        response = send(method, path, **kwargs)
        said.append(f"{method} {path} -> {response.body.decode('utf-8', 'replace')} {json.dumps(response.headers)}")
        return response

    monkeypatch.setattr(stack, "request", recorded)
    logs = io.StringIO()
    with captured_logs(logs):
        yield
    printed = capsys.readouterr()
    texts = [*said, logs.getvalue(), printed.out, printed.err]
    leaks = [text[max(0, text.index(CANARY) - 300) : text.index(CANARY) + 60] for text in texts if CANARY in text]
    assert leaks == [], "a secret value escaped"


# -- helpers ----------------------------------------------------------------------------------


def get(stack: LocalStack, caller: str, path: str, **query: Any) -> GatewayResponse:
    return stack.request("GET", path, key=caller, query=query)


def delete(stack: LocalStack, caller: str, path: str) -> GatewayResponse:
    return stack.request("DELETE", path, key=caller)


def integration_ids(stack: LocalStack, caller: str, **query: Any) -> list[str]:
    return sorted(list_all(stack, caller, INTEGRATIONS_PATH, "integrationId", **query))


def mapping_ids(stack: LocalStack, caller: str, **query: Any) -> list[str]:
    return sorted(list_all(stack, caller, MAPPINGS_PATH, "mappingId", **query))


def make_device(stack: LocalStack, caller: str, type_name: str = "Van") -> dict[str, Any]:
    """A thing (of a new type ``type_name``, in a new site) to map integrations to."""
    type_id = make_type(stack, caller, type_name)["thingTypeId"]
    site_id = make_site(stack, caller)["siteId"]
    return make_thing(stack, caller, "Site", site_id, type_id)


def record_of(stack: LocalStack, org: Org, integration_id: str) -> dict[str, Any] | None:
    """The integration's stored record, as the table holds it."""
    return raw_record(stack, integration_key(OrgContext.for_operator(org.org_id), integration_id))


def current_version(name: str) -> str:
    stages = describe_secret(name)["VersionIdsToStages"]
    [current] = [version for version, labels in stages.items() if "AWSCURRENT" in labels]
    return str(current)


def assert_nothing_stored(stack: LocalStack, org: Org) -> None:
    """No integration, and no secret in use: a discarded one only waits out its recovery window."""
    assert integration_ids(stack, org.admin_key) == []
    assert [secret for secret in org_secrets(stack, org.org_id) if not secret.get("DeletedDate")] == []


def secrets_in(value: Any) -> list[str]:
    """Every secret value (a canaried string) anywhere in a request body."""
    if isinstance(value, str):
        return [value] if CANARY in value else []
    if isinstance(value, dict):
        return [s for item in value.values() for s in secrets_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in secrets_in(item)]
    return []


def assert_problem_hides(response: GatewayResponse, status: int, *secrets: str) -> dict[str, Any]:
    """A problem whose text holds none of ``secrets`` (the autouse scan checks it again)."""
    problem = assert_problem(response, status)
    text = response.body.decode("utf-8")
    assert all(secret not in text for secret in secrets), text
    assert CANARY not in text
    return problem


# -- the catalog ------------------------------------------------------------------------------


def test_catalog_lists_types_per_direction_with_each_propertys_rules(stack: LocalStack, org: Org) -> None:
    response = get(stack, org.admin_key, CATALOG_PATH)

    assert response.status == 200, response.body
    catalog = response.json()
    assert catalog.keys() == {"types"}
    for entry in catalog["types"]:
        assert entry.keys() == {"direction", "type", "displayName", "properties"}
        assert entry["direction"] in {"INGRESS", "EGRESS"}
        assert entry["displayName"]
        for spec in entry["properties"]:
            assert spec.keys() == {"name", "required", "editable", "secret"}
            assert all(isinstance(spec[rule], bool) for rule in ("required", "editable", "secret"))
    kinds = {(entry["direction"], entry["type"]): entry for entry in catalog["types"]}
    assert {"INGRESS", "EGRESS"} == {direction for direction, _type in kinds}
    webhook = {spec["name"]: spec for spec in kinds[("EGRESS", "Webhook")]["properties"]}
    assert webhook["signingSecret"] == {"name": "signingSecret", "required": True, "editable": True, "secret": True}
    assert webhook["url"]["secret"] is False
    telematics = {spec["name"]: spec for spec in kinds[("INGRESS", "Telematics")]["properties"]}
    assert telematics["accountId"]["editable"] is False


def test_catalog_is_open_to_any_valid_key(stack: LocalStack, org: Org) -> None:
    reader = key_with(stack, org, scope("read", "THING/Van/#"))

    response = get(stack, reader.secret, CATALOG_PATH)

    assert response.status == 200, response.body
    assert len(response.json()["types"]) >= 2


def test_every_type_in_the_catalog_can_be_created_with_its_required_properties(stack: LocalStack, org: Org) -> None:
    """The catalog is what create validates against: its required properties are enough."""
    catalog = get(stack, org.admin_key, CATALOG_PATH).json()["types"]
    samples = {"providerUrl": "https://p.example.com", "url": "https://h.example.com", "brokerHost": "mqtt.example.com"}

    for entry in catalog:
        required = [p for p in entry["properties"] if p["required"]]
        body = {
            "integrationName": f"{entry['type']} sample",
            "integrationDirection": entry["direction"],
            "integrationType": entry["type"],
            "properties": {p["name"]: samples.get(p["name"], "acct-1") for p in required if not p["secret"]},
            "secretProperties": {p["name"]: secret_text(p["name"]) for p in required if p["secret"]},
        }
        created = make_integration(stack, org.admin_key, body)
        assert created["secretPropertyNames"] == sorted(body["secretProperties"])


# -- create -----------------------------------------------------------------------------------


def test_create_returns_201_with_location_and_the_integration_without_secret_values(
    stack: LocalStack, org: Org
) -> None:
    body = webhook_body(metaData={"team": "ops"})

    response = post_integration(stack, org.admin_key, body)

    assert response.status == 201, response.body
    created = response.json()
    assert response.headers["Location"] == integration_path(created["integrationId"])
    assert created.keys() == INTEGRATION_RECORD_FIELDS
    assert created["integrationName"] == body["integrationName"]
    assert (created["integrationDirection"], created["integrationType"]) == ("EGRESS", "Webhook")
    assert created["properties"] == body["properties"]
    assert created["metaData"] == {"team": "ops"}
    assert created["secretPropertyNames"] == ["signingSecret"]
    assert created["secretsUpdatedAt"] == created["createdAt"] == created["updatedAt"]
    assert is_iso(created["createdAt"])
    assert created["createdBy"] == created["updatedBy"] == org.admin_key_id


def test_get_reads_the_integration_back_with_secret_names_only(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key, telematics_body())

    found = read(stack, org.admin_key, integration_path(created["integrationId"]))

    assert found == created
    assert found["secretPropertyNames"] == ["apiKey"]


def test_secret_is_named_under_the_orgs_path_encrypted_with_the_platform_key_and_tagged(
    stack: LocalStack, org: Org
) -> None:
    created = make_integration(stack, org.admin_key)
    integration_id = created["integrationId"]

    [secret] = org_secrets(stack, org.org_id)

    assert secret["Name"] == secret_name(stack, org.org_id, integration_id)
    assert secret["Name"] == f"spectra/dev/orgs/{org.org_id}/integrations/{integration_id}"
    assert secret["KmsKeyId"] == stack.environment("integrations")["PLATFORM_KEY_ARN"]
    tags = {tag["Key"]: tag["Value"] for tag in secret["Tags"]}
    assert tags["org"] == org.org_id
    assert tags["integration"] == integration_id


def test_secret_holds_exactly_the_secret_properties_as_json(stack: LocalStack, org: Org) -> None:
    body = webhook_body()
    created = make_integration(stack, org.admin_key, body)

    stored = stored_secret_values(secret_name(stack, org.org_id, created["integrationId"]))

    assert stored == body["secretProperties"]


def test_secret_policy_denies_every_call_without_tls(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key)

    policy = resource_policy(secret_name(stack, org.org_id, created["integrationId"]))

    statements = {statement["Sid"]: statement for statement in policy["Statement"]}
    assert set(statements) == {"WriterNeverReads", "TlsOnly"}  # no VPC endpoint configured
    tls_only = statements["TlsOnly"]
    assert tls_only["Effect"] == "Deny"
    assert tls_only["Principal"] == "*"
    assert tls_only["Action"] == "secretsmanager:*"
    assert tls_only["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_secret_policy_denies_reads_to_the_role_that_writes_it(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key)

    policy = resource_policy(secret_name(stack, org.org_id, created["integrationId"]))

    [writer] = [s for s in policy["Statement"] if s["Sid"] == "WriterNeverReads"]
    assert writer["Effect"] == "Deny"
    assert set(writer["Action"]) == {"secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"}
    role_arn = stack.environment("integrations")["INTEGRATION_SECRETS_ROLE_ARN"]
    assert writer["Condition"] == {"ArnEquals": {"aws:PrincipalArn": role_arn}}


def test_secret_policy_also_denies_calls_outside_the_vpc_endpoint_once_one_is_configured(
    stack: LocalStack, org: Org
) -> None:
    function = stack.function("integrations")
    function.environment = {**function.environment, "SECRETS_VPC_ENDPOINT_ID": "vpce-0a1b2c3d4e5f60718"}
    created = make_integration(stack, org.admin_key)

    policy = resource_policy(secret_name(stack, org.org_id, created["integrationId"]))

    statements = {statement["Sid"]: statement for statement in policy["Statement"]}
    assert statements["TlsOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    endpoint_only = statements["ThroughTheVpcEndpointOnly"]
    assert (endpoint_only["Effect"], endpoint_only["Principal"]) == ("Deny", "*")
    assert endpoint_only["Condition"]["StringNotEquals"] == {"aws:SourceVpce": "vpce-0a1b2c3d4e5f60718"}
    assert endpoint_only["Condition"]["ArnNotLike"] == {"aws:PrincipalArn": OPERATOR_ROLE_ARN}


def test_record_keeps_secret_names_time_and_version_never_a_value(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key)
    name = secret_name(stack, org.org_id, created["integrationId"])

    record = record_of(stack, org, created["integrationId"])

    assert record is not None
    assert record["secretPropertyNames"] == ["signingSecret"]
    assert record["secretsUpdatedAt"] == created["secretsUpdatedAt"]
    assert record["secretVersionId"] == current_version(name)
    assert CANARY not in json.dumps(table_items(stack), default=str)


def test_integration_without_secrets_stores_no_secret(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key, mqtt_body())

    assert created["secretPropertyNames"] == []
    assert created.get("secretsUpdatedAt") is None
    assert org_secrets(stack, org.org_id) == []


def test_resources_name_places_and_things_of_the_org(stack: LocalStack, org: Org) -> None:
    thing = make_device(stack, org.admin_key)
    fleet = make_fleet(stack, org.admin_key)
    resources = [
        {"path": f"PLACE/Site/{thing['placeId']}/THING/Van/{thing['thingId']}", "metadata": {"role": "primary"}},
        {"path": f"THING/Van/{thing['thingId']}", "metadata": {}},
        {"path": f"PLACE/Fleet/{fleet['fleetId']}", "metadata": {}},
    ]

    created = make_integration(stack, org.admin_key, telematics_body(resources=resources))

    assert created["resources"] == resources


# Bad creates: (case, change to a valid Webhook body, the field the problem names). Secret values
# appear in most of them; no problem may echo one, and nothing may be stored.
LONG_SECRET = secret_text("long") + "x" * 4096
INVALID_CREATES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown-type", {"integrationType": "Fax"}, "integrationType"),
    ("type-of-the-other-direction", {"integrationDirection": "INGRESS"}, "integrationType"),
    ("unknown-direction", {"integrationDirection": "SIDEWAYS"}, "integrationDirection"),
    ("missing-required-property", {"properties": {}}, "properties.url"),
    ("unknown-property", {"properties": {"url": "https://h.example.com", "colour": "red"}}, "properties.colour"),
    ("property-in-the-wrong-format", {"properties": {"url": "http://plain.example.com"}}, "properties.url"),
    ("missing-required-secret", {"secretProperties": {}}, "secretProperties.signingSecret"),
    (
        "unknown-secret-name",
        {"secretProperties": {"signingSecret": secret_text(), "password": secret_text("unknown")}},
        "secretProperties.password",
    ),
    (
        "secret-in-properties",
        {"properties": {"url": "https://h.example.com", "signingSecret": secret_text("plain")}},
        "properties.signingSecret",
    ),
    ("secret-value-too-long", {"secretProperties": {"signingSecret": LONG_SECRET}}, "secretProperties.signingSecret"),
    ("secret-value-empty", {"secretProperties": {"signingSecret": ""}}, "secretProperties.signingSecret"),
    ("secret-value-a-number", {"secretProperties": {"signingSecret": 12345}}, "secretProperties.signingSecret"),
    (
        "secret-value-an-object",
        {"secretProperties": {"signingSecret": {"value": secret_text("nested")}}},
        "secretProperties.signingSecret",
    ),
    (
        "secrets-together-over-the-size-limit",
        {"secretProperties": {f"extra{i}": secret_text("bulk") + "y" * 4000 for i in range(6)}},
        "secretProperties",
    ),
    ("secret-properties-not-an-object", {"secretProperties": [secret_text("list")]}, "secretProperties"),
]


@pytest.mark.parametrize(("change", "field"), [c[1:] for c in INVALID_CREATES], ids=[c[0] for c in INVALID_CREATES])
def test_invalid_create_is_400_naming_the_field_storing_nothing_and_echoing_no_secret(
    stack: LocalStack, org: Org, change: dict[str, Any], field: str
) -> None:
    body = webhook_body(**change)

    response = post_integration(stack, org.admin_key, body)

    assert_problem_hides(response, 400, *secrets_in(body))
    fields = error_fields(response)
    assert field in fields, fields
    assert_nothing_stored(stack, org)


def test_resource_of_another_org_is_400_and_nothing_is_stored(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign = make_device(stack, other_org.admin_key)

    response = post_integration(
        stack, org.admin_key, telematics_body(resources=[{"path": f"THING/Van/{foreign['thingId']}"}])
    )

    problem = assert_problem_hides(response, 400)
    assert [error["field"] for error in problem["errors"]] == ["resources[0].path"]
    assert other_org.org_id not in response.body.decode()
    assert_nothing_stored(stack, org)


def test_resources_need_read_access_to_the_things_they_name(stack: LocalStack, org: Org) -> None:
    thing = make_device(stack, org.admin_key, type_name="Van")
    integrations_only = key_with(stack, org, scope("write", "INTEGRATION/INGRESS/Telematics/#"))

    response = post_integration(
        stack, integrations_only.secret, telematics_body(resources=[{"path": f"THING/Van/{thing['thingId']}"}])
    )

    assert_problem(response, 403, "forbidden_scope")


# -- scopes -----------------------------------------------------------------------------------

TELEMATICS_ONLY = "INTEGRATION/INGRESS/Telematics/#"


def test_key_scoped_to_ingress_telematics_creates_telematics(stack: LocalStack, org: Org) -> None:
    scoped = key_with(stack, org, scope("write", TELEMATICS_ONLY))

    response = post_integration(stack, scoped.secret, telematics_body())

    assert response.status == 201, response.body


def test_key_scoped_to_ingress_telematics_cannot_create_an_egress_webhook(stack: LocalStack, org: Org) -> None:
    scoped = key_with(stack, org, scope("write", TELEMATICS_ONLY))
    body = webhook_body()

    response = post_integration(stack, scoped.secret, body)

    assert_problem_hides(response, 403, body["secretProperties"]["signingSecret"])
    assert response.json()["code"] == "forbidden_scope"
    assert_nothing_stored(stack, org)


def test_scoped_key_lists_only_the_integrations_its_scope_covers(stack: LocalStack, org: Org) -> None:
    telematics = make_integration(stack, org.admin_key, telematics_body())
    make_integration(stack, org.admin_key, webhook_body())
    make_integration(stack, org.admin_key, mqtt_body())
    scoped = key_with(stack, org, scope("read", TELEMATICS_ONLY))

    assert integration_ids(stack, scoped.secret) == [telematics["integrationId"]]
    assert integration_ids(stack, scoped.secret, limit=1) == [telematics["integrationId"]]
    assert integration_ids(stack, scoped.secret, integrationDirection="EGRESS") == []


# What a key may attempt on an existing integration: (method, path, body), given its id.
ATTEMPTS: dict[str, Callable[[str], tuple[str, str, Any]]] = {
    "get": lambda i: ("GET", integration_path(i), None),
    "patch": lambda i: ("PATCH", integration_path(i), {"integrationName": "taken over"}),
    "put-secrets": lambda i: ("PUT", secret_properties_path(i), {"secretProperties": {"signingSecret": secret_text()}}),
    "delete": lambda i: ("DELETE", integration_path(i), None),
}


@pytest.mark.parametrize("attempt", sorted(ATTEMPTS))
def test_key_scoped_to_ingress_telematics_cannot_touch_an_egress_webhook(
    stack: LocalStack, org: Org, attempt: str
) -> None:
    webhook = make_integration(stack, org.admin_key)
    name = secret_name(stack, org.org_id, webhook["integrationId"])
    version = current_version(name)
    scoped = key_with(stack, org, scope("write", TELEMATICS_ONLY))
    method, path, body = ATTEMPTS[attempt](webhook["integrationId"])

    response = stack.request(method, path, key=scoped.secret, json_body=body)

    assert_problem(response, 403, "forbidden_scope")
    assert read(stack, org.admin_key, integration_path(webhook["integrationId"])) == webhook
    assert current_version(name) == version


# Writes a key may attempt on an integration: (method, path, body), given the integration's id.
WRITES: dict[str, Callable[[str], tuple[str, str, Any]]] = {
    "create": lambda _i: ("POST", INTEGRATIONS_PATH, webhook_body()),
    "patch": lambda i: ("PATCH", integration_path(i), {"integrationName": "taken over"}),
    "put-secrets": lambda i: ("PUT", secret_properties_path(i), {"secretProperties": {"signingSecret": secret_text()}}),
    "delete": lambda i: ("DELETE", integration_path(i), None),
    "create-mapping": lambda i: ("POST", MAPPINGS_PATH, mapping_body(i, UNKNOWN_ID)),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_read_only_key_cannot_write(stack: LocalStack, org: Org, write: str) -> None:
    webhook = make_integration(stack, org.admin_key)
    name = secret_name(stack, org.org_id, webhook["integrationId"])
    version = current_version(name)
    reader = key_with(stack, org, scope("read"))
    method, path, body = WRITES[write](webhook["integrationId"])

    response = stack.request(method, path, key=reader.secret, json_body=body)

    assert_problem(response, 403, "forbidden_scope")
    assert read(stack, reader.secret, integration_path(webhook["integrationId"])) == webhook
    assert integration_ids(stack, org.admin_key) == [webhook["integrationId"]]
    assert [s["Name"] for s in org_secrets(stack, org.org_id)] == [name]
    assert current_version(name) == version


@pytest.mark.parametrize("attempt", sorted(ATTEMPTS))
def test_other_orgs_integration_is_404_and_stays_unchanged(
    stack: LocalStack, org: Org, other_org: Org, attempt: str
) -> None:
    webhook = make_integration(stack, org.admin_key)
    name = secret_name(stack, org.org_id, webhook["integrationId"])
    version = current_version(name)
    method, path, body = ATTEMPTS[attempt](webhook["integrationId"])

    response = stack.request(method, path, key=other_org.admin_key, json_body=body)

    assert_problem(response, 404, "not_found")
    assert org.org_id not in response.body.decode()
    assert read(stack, org.admin_key, integration_path(webhook["integrationId"])) == webhook
    assert current_version(name) == version
    assert describe_secret(name).get("DeletedDate") is None


def test_other_orgs_list_does_not_show_the_integration(stack: LocalStack, org: Org, other_org: Org) -> None:
    make_integration(stack, org.admin_key)

    assert integration_ids(stack, other_org.admin_key) == []


@pytest.mark.parametrize("integration_id", ["not-a-guid", UNKNOWN_ID])
def test_malformed_or_unknown_integration_id_is_404(stack: LocalStack, org: Org, integration_id: str) -> None:
    assert_problem(get(stack, org.admin_key, integration_path(integration_id)), 404, "not_found")


# -- lists ------------------------------------------------------------------------------------


def test_list_pages_through_every_integration(stack: LocalStack, org: Org) -> None:
    made = sorted(
        make_integration(stack, org.admin_key, mqtt_body(integrationName=f"b{i}"))["integrationId"] for i in range(5)
    )

    first = list_page(stack, org.admin_key, INTEGRATIONS_PATH, limit=2)

    assert len(first["items"]) == 2
    assert first["hasMore"] is True
    assert first["continuationToken"]
    assert integration_ids(stack, org.admin_key, limit=2) == made
    assert integration_ids(stack, org.admin_key, pageLimit=3) == made


def test_list_filters_by_direction_and_type(stack: LocalStack, org: Org) -> None:
    telematics = make_integration(stack, org.admin_key, telematics_body())["integrationId"]
    webhook = make_integration(stack, org.admin_key, webhook_body())["integrationId"]
    mqtt = make_integration(stack, org.admin_key, mqtt_body())["integrationId"]

    assert integration_ids(stack, org.admin_key, integrationDirection="INGRESS") == [telematics]
    assert integration_ids(stack, org.admin_key, integrationDirection="EGRESS") == sorted([webhook, mqtt])
    assert integration_ids(stack, org.admin_key, integrationType="Mqtt", limit=1) == [mqtt]


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"integrationDirection": "SIDEWAYS"}])
def test_invalid_list_query_is_400(stack: LocalStack, org: Org, query: dict[str, Any]) -> None:
    assert_problem(get(stack, org.admin_key, INTEGRATIONS_PATH, **query), 400, "validation_failed")


@pytest.mark.parametrize("mangle", sorted(TOKEN_MANGLERS))
def test_tampered_continuation_token_is_400(stack: LocalStack, org: Org, mangle: str) -> None:
    for _ in range(3):
        make_integration(stack, org.admin_key, mqtt_body())
    token = list_page(stack, org.admin_key, INTEGRATIONS_PATH, limit=1)["continuationToken"]

    response = get(stack, org.admin_key, INTEGRATIONS_PATH, limit=1, continuationToken=TOKEN_MANGLERS[mangle](token))

    assert_problem(response, 400)


def test_continuation_token_of_another_filter_or_org_is_400(stack: LocalStack, org: Org, other_org: Org) -> None:
    for _ in range(3):
        make_integration(stack, org.admin_key, mqtt_body())
        make_integration(stack, other_org.admin_key, mqtt_body())
    token = list_page(stack, org.admin_key, INTEGRATIONS_PATH, limit=1)["continuationToken"]

    other_filter = get(
        stack, org.admin_key, INTEGRATIONS_PATH, limit=1, integrationType="Mqtt", continuationToken=token
    )
    other_org_use = get(stack, other_org.admin_key, INTEGRATIONS_PATH, limit=1, continuationToken=token)

    assert_problem(other_filter, 400)
    assert_problem(other_org_use, 400)


# -- PATCH ------------------------------------------------------------------------------------


def test_patch_changes_name_editable_properties_metadata_and_resources(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)
    editor = key_with(stack, org, scope("write"), name="editor")
    change = {
        "integrationName": "Fleet telematics",
        "properties": {"providerUrl": "https://v2.telematics.example.com", "pollIntervalMinutes": 15},
        "metaData": {"ticket": "OPS-12"},
        "resources": [{"path": f"THING/Van/{thing['thingId']}", "metadata": {}}],
    }

    response = patch(stack, editor.secret, integration_path(created["integrationId"]), change)

    assert response.status == 200, response.body
    updated = response.json()
    assert updated["integrationName"] == "Fleet telematics"
    assert updated["properties"] == {
        "providerUrl": "https://v2.telematics.example.com",
        "accountId": "acct-42",
        "pollIntervalMinutes": 15,
    }
    assert updated["metaData"] == {"ticket": "OPS-12"}
    assert updated["resources"] == change["resources"]
    assert updated["updatedBy"] == editor.key_id
    assert updated["updatedAt"] > created["updatedAt"]
    assert (updated["createdAt"], updated["createdBy"]) == (created["createdAt"], created["createdBy"])
    assert (updated["secretPropertyNames"], updated["secretsUpdatedAt"]) == (["apiKey"], created["secretsUpdatedAt"])
    assert read(stack, org.admin_key, integration_path(created["integrationId"])) == updated


def test_patch_null_removes_an_optional_property(stack: LocalStack, org: Org) -> None:
    body = telematics_body(properties={**telematics_body()["properties"], "pollIntervalMinutes": 5})
    created = make_integration(stack, org.admin_key, body)

    response = patch(
        stack, org.admin_key, integration_path(created["integrationId"]), {"properties": {"pollIntervalMinutes": None}}
    )

    assert response.status == 200, response.body
    assert "pollIntervalMinutes" not in response.json()["properties"]


INVALID_PATCHES: list[tuple[str, dict[str, Any], str]] = [
    ("property-fixed-at-creation", {"properties": {"accountId": "acct-43"}}, "properties.accountId"),
    ("required-property-removed", {"properties": {"providerUrl": None}}, "properties.providerUrl"),
    ("unknown-property", {"properties": {"colour": "red"}}, "properties.colour"),
    ("property-in-the-wrong-format", {"properties": {"providerUrl": "ftp://x"}}, "properties.providerUrl"),
    ("name-null", {"integrationName": None}, "integrationName"),
    ("secret-properties", {"secretProperties": {"apiKey": secret_text("patch")}}, "secretProperties"),
    ("secret-properties-null", {"secretProperties": None}, "secretProperties"),
    ("secret-in-properties", {"properties": {"apiKey": secret_text("patch-plain")}}, "properties.apiKey"),
    ("direction", {"integrationDirection": "EGRESS"}, "integrationDirection"),
    ("resource-path-not-a-thing-or-place", {"resources": [{"path": "ORGANIZATION"}]}, "resources[0].path"),
]


@pytest.mark.parametrize(("change", "field"), [c[1:] for c in INVALID_PATCHES], ids=[c[0] for c in INVALID_PATCHES])
def test_invalid_patch_is_400_changing_nothing_and_echoing_no_secret(
    stack: LocalStack, org: Org, change: dict[str, Any], field: str
) -> None:
    created = make_integration(stack, org.admin_key, telematics_body())
    name = secret_name(stack, org.org_id, created["integrationId"])
    version = current_version(name)

    response = patch(stack, org.admin_key, integration_path(created["integrationId"]), change)

    assert_problem_hides(response, 400, *secrets_in(change))
    assert field in error_fields(response)
    assert read(stack, org.admin_key, integration_path(created["integrationId"])) == created
    assert current_version(name) == version


def test_patch_to_another_orgs_thing_is_400_and_changes_nothing(stack: LocalStack, org: Org, other_org: Org) -> None:
    created = make_integration(stack, org.admin_key, telematics_body())
    foreign = make_device(stack, other_org.admin_key)

    response = patch(
        stack,
        org.admin_key,
        integration_path(created["integrationId"]),
        {"resources": [{"path": f"THING/Van/{foreign['thingId']}"}]},
    )

    assert error_fields(response) == ["resources[0].path"]
    assert other_org.org_id not in response.body.decode()
    assert read(stack, org.admin_key, integration_path(created["integrationId"])) == created


# -- PUT secret-properties --------------------------------------------------------------------


def test_put_secret_properties_writes_a_new_version_holding_exactly_the_new_set(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key, webhook_body())
    name = secret_name(stack, org.org_id, created["integrationId"])
    first_version = current_version(name)
    rotated = {"signingSecret": secret_text("rotated")}

    response = put_secrets(stack, org.admin_key, created["integrationId"], rotated)

    assert response.status == 200, response.body
    updated = response.json()
    assert updated.keys() == INTEGRATION_RECORD_FIELDS
    assert updated["secretPropertyNames"] == ["signingSecret"]
    assert updated["secretsUpdatedAt"] == updated["updatedAt"] > created["secretsUpdatedAt"]
    new_version = current_version(name)
    assert new_version != first_version
    assert stored_secret_values(name) == rotated
    assert describe_secret(name)["VersionIdsToStages"][first_version] == ["AWSPREVIOUS"]
    record = record_of(stack, org, created["integrationId"])
    assert record is not None
    assert record["secretVersionId"] == new_version
    assert read(stack, org.admin_key, integration_path(created["integrationId"])) == updated


def test_put_secret_properties_replaces_the_whole_set(stack: LocalStack, org: Org) -> None:
    created = make_integration(
        stack,
        org.admin_key,
        mqtt_body(secretProperties={"username": secret_text("user"), "password": secret_text("pw")}),
    )
    name = secret_name(stack, org.org_id, created["integrationId"])
    only_password = {"password": secret_text("pw2")}

    response = put_secrets(stack, org.admin_key, created["integrationId"], only_password)

    assert response.status == 200, response.body
    assert response.json()["secretPropertyNames"] == ["password"]
    assert stored_secret_values(name) == only_password


def test_put_secret_properties_on_an_integration_without_a_secret_creates_one(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key, mqtt_body())
    secrets = {"username": secret_text("user")}

    response = put_secrets(stack, org.admin_key, created["integrationId"], secrets)

    assert response.status == 200, response.body
    assert response.json()["secretPropertyNames"] == ["username"]
    name = secret_name(stack, org.org_id, created["integrationId"])
    assert stored_secret_values(name) == secrets
    assert describe_secret(name)["KmsKeyId"] == stack.environment("integrations")["PLATFORM_KEY_ARN"]
    assert [s["Sid"] for s in resource_policy(name)["Statement"]] == ["WriterNeverReads", "TlsOnly"]


INVALID_SECRET_SETS: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown-secret-name",
        {"signingSecret": secret_text(), "apiKey": secret_text("unknown")},
        "secretProperties.apiKey",
    ),
    ("missing-required-secret", {}, "secretProperties.signingSecret"),
    ("value-too-long", {"signingSecret": LONG_SECRET}, "secretProperties.signingSecret"),
    ("value-a-number", {"signingSecret": 7}, "secretProperties.signingSecret"),
    ("value-a-list", {"signingSecret": [secret_text("listed")]}, "secretProperties.signingSecret"),
    (
        "plain-property-as-secret",
        {"signingSecret": secret_text(), "url": "https://h.example.com"},
        "secretProperties.url",
    ),
]


@pytest.mark.parametrize(
    ("secrets", "field"), [c[1:] for c in INVALID_SECRET_SETS], ids=[c[0] for c in INVALID_SECRET_SETS]
)
def test_invalid_secret_set_is_400_keeping_the_old_secret_and_echoing_no_value(
    stack: LocalStack, org: Org, secrets: dict[str, Any], field: str
) -> None:
    body = webhook_body()
    created = make_integration(stack, org.admin_key, body)
    name = secret_name(stack, org.org_id, created["integrationId"])
    version = current_version(name)

    response = put_secrets(stack, org.admin_key, created["integrationId"], secrets)

    assert_problem_hides(response, 400, *secrets_in(secrets))
    assert field in error_fields(response)
    assert current_version(name) == version
    assert stored_secret_values(name) == body["secretProperties"]
    assert read(stack, org.admin_key, integration_path(created["integrationId"])) == created


def test_put_secret_properties_without_the_set_is_400(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key)

    response = stack.request("PUT", secret_properties_path(created["integrationId"]), key=org.admin_key, json_body={})

    assert "secretProperties" in error_fields(response)


def test_failed_rotation_leaves_the_record_and_the_secret_in_step(stack: LocalStack, org: Org) -> None:
    body = webhook_body()
    created = make_integration(stack, org.admin_key, body)
    name = secret_name(stack, org.org_id, created["integrationId"])

    with failing(function_records_client(stack, org), "TransactWriteItems"):
        response = put_secrets(stack, org.admin_key, created["integrationId"], {"signingSecret": secret_text()})

    assert 500 <= response.status < 600
    record = record_of(stack, org, created["integrationId"])
    assert record is not None
    assert record["secretVersionId"] == current_version(name)
    assert stored_secret_values(name) == body["secretProperties"]


# -- DELETE -----------------------------------------------------------------------------------


def test_delete_is_204_and_the_integration_is_gone_at_once(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key)
    path = integration_path(created["integrationId"])

    response = delete(stack, org.admin_key, path)

    assert response.status == 204, response.body
    assert response.body == b""
    assert_problem(get(stack, org.admin_key, path), 404, "not_found")
    assert integration_ids(stack, org.admin_key) == []
    assert_problem(patch(stack, org.admin_key, path, {"integrationName": "back"}), 404, "not_found")
    assert_problem(put_secrets(stack, org.admin_key, created["integrationId"], {"signingSecret": secret_text()}), 404)
    assert_problem(delete(stack, org.admin_key, path), 404, "not_found")
    assert record_of(stack, org, created["integrationId"]) is None


def test_delete_schedules_the_secret_for_deletion_after_a_recovery_window(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key)
    name = secret_name(stack, org.org_id, created["integrationId"])
    client = function_secrets_client(stack, org)

    with counting_calls(client, "DeleteSecret") as calls:
        assert delete(stack, org.admin_key, integration_path(created["integrationId"])).status == 204

    [call] = calls
    assert call.get("ForceDeleteWithoutRecovery") is not True
    assert 7 <= call["RecoveryWindowInDays"] <= 30
    described = describe_secret(name)  # still there: recoverable until the window ends
    deleted_on = described["DeletedDate"]
    assert deleted_on >= datetime.now(UTC) + timedelta(days=7) - timedelta(minutes=1)


def test_delete_still_removes_the_integration_when_its_secret_cannot_be_scheduled(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key)
    name = secret_name(stack, org.org_id, created["integrationId"])

    with failing(function_secrets_client(stack, org), "DeleteSecret"):
        response = delete(stack, org.admin_key, integration_path(created["integrationId"]))

    assert response.status == 204, response.body
    assert integration_ids(stack, org.admin_key) == []
    assert describe_secret(name).get("DeletedDate") is None  # left for an operator (tagged, alarmed)


def test_delete_removes_the_integrations_mappings(stack: LocalStack, org: Org) -> None:
    created = make_integration(stack, org.admin_key, telematics_body())
    kept = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)
    for _ in range(3):
        make_mapping(stack, org.admin_key, created["integrationId"], thing["thingId"])
    survivor = make_mapping(stack, org.admin_key, kept["integrationId"], thing["thingId"])

    assert delete(stack, org.admin_key, integration_path(created["integrationId"])).status == 204

    assert mapping_ids(stack, org.admin_key) == [survivor["mappingId"]]
    assert_problem(get(stack, org.admin_key, MAPPINGS_PATH, integrationId=created["integrationId"]), 404)
    leftovers = [item for item in table_items(stack) if created["integrationId"] in json.dumps(item, default=str)]
    assert leftovers == []  # record, mappings and their guards


# -- all or nothing ---------------------------------------------------------------------------


def test_create_when_the_secret_cannot_be_stored_fails_and_leaves_no_record(stack: LocalStack, org: Org) -> None:
    body = webhook_body()

    with failing(function_secrets_client(stack, org), "CreateSecret") as calls:
        response = post_integration(stack, org.admin_key, body)

    assert len(calls) == 1
    assert 500 <= response.status < 600
    assert_problem_hides(response, response.status, body["secretProperties"]["signingSecret"])
    assert_nothing_stored(stack, org)
    assert [item for item in table_items(stack) if "#INTEGRATIONS#" in item["pk"]] == []


def test_create_when_the_secret_policy_cannot_be_attached_removes_the_secret(stack: LocalStack, org: Org) -> None:
    client = function_secrets_client(stack, org)

    with failing(client, "PutResourcePolicy"), counting_calls(client, "DeleteSecret") as deletes:
        response = post_integration(stack, org.admin_key, webhook_body())

    assert 500 <= response.status < 600
    # Deleted after the shortest recovery window: the role may never skip the window.
    assert [(call.get("ForceDeleteWithoutRecovery"), call.get("RecoveryWindowInDays")) for call in deletes] == [
        (None, 7)
    ]
    assert_nothing_stored(stack, org)


def test_create_when_the_record_cannot_be_written_discards_the_secret(stack: LocalStack, org: Org) -> None:
    secrets = function_secrets_client(stack, org)

    with (
        failing(function_records_client(stack, org), "TransactWriteItems") as writes,
        counting_calls(secrets, "CreateSecret") as creates,
        counting_calls(secrets, "DeleteSecret") as deletes,
    ):
        response = post_integration(stack, org.admin_key, webhook_body())

    assert 500 <= response.status < 600
    assert (len(writes), len(creates)) == (1, 1)
    [discard] = deletes
    assert "ForceDeleteWithoutRecovery" not in discard
    assert discard["RecoveryWindowInDays"] == 7
    assert_nothing_stored(stack, org)


def test_idempotent_retry_of_a_create_stores_one_secret(stack: LocalStack, org: Org) -> None:
    body = webhook_body()
    headers = {"Idempotency-Key": "create-webhook-1"}

    with counting_calls(function_secrets_client(stack, org), "CreateSecret") as creates:
        first = post_integration(stack, org.admin_key, body, **headers)
        retry = post_integration(stack, org.admin_key, body, **headers)

    assert (first.status, retry.status) == (201, 201)
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json() == first.json()
    assert len(creates) == 1
    assert [s["Name"] for s in org_secrets(stack, org.org_id)] == [
        secret_name(stack, org.org_id, first.json()["integrationId"])
    ]
    assert integration_ids(stack, org.admin_key) == [first.json()["integrationId"]]


def test_idempotency_key_reused_with_other_secrets_is_409_and_stores_nothing_more(stack: LocalStack, org: Org) -> None:
    headers = {"Idempotency-Key": "create-webhook-2"}
    first = post_integration(stack, org.admin_key, webhook_body(), **headers)
    other = webhook_body()

    response = post_integration(stack, org.admin_key, other, **headers)

    assert first.status == 201, first.body
    assert_problem_hides(response, 409, other["secretProperties"]["signingSecret"])
    assert len(org_secrets(stack, org.org_id)) == 1


# -- resource mappings ------------------------------------------------------------------------


@pytest.mark.parametrize("resource_type", ["Thing", "Site", "Fleet"])
def test_create_mapping_links_a_remote_id_to_a_resource_of_the_org(
    stack: LocalStack, org: Org, resource_type: str
) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)
    resource_id = {
        "Thing": thing["thingId"],
        "Site": thing["placeId"],
        "Fleet": make_fleet(stack, org.admin_key)["fleetId"],
    }[resource_type]
    body = mapping_body(integration["integrationId"], resource_id, resource_type, metadata={"vin": "WDB123"})

    response = post_mapping(stack, org.admin_key, body)

    assert response.status == 201, response.body
    mapping = response.json()
    assert response.headers["Location"] == mapping_path(mapping["mappingId"])
    assert {k: mapping[k] for k in body} == body
    assert mapping["createdBy"] == org.admin_key_id
    assert is_iso(mapping["createdAt"])
    assert mapping_ids(stack, org.admin_key) == [mapping["mappingId"]]


def test_mapping_carries_every_record_stamp(stack: LocalStack, org: Org) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)

    mapping = make_mapping(stack, org.admin_key, integration["integrationId"], thing["thingId"])

    assert mapping.keys() >= RECORD_STAMPS


def test_a_new_mappings_location_reads_it_back_for_its_org_only(stack: LocalStack, org: Org, other_org: Org) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)
    mapping = make_mapping(stack, org.admin_key, integration["integrationId"], thing["thingId"])
    location = f"/v2/integrations/resource-mappings/{mapping['mappingId']}"

    response = get(stack, org.admin_key, location)

    assert response.status == 200, response.body
    assert response.json() == mapping
    assert_problem(get(stack, other_org.admin_key, location), 404, "not_found")


@pytest.mark.parametrize("resource_type", ["Thing", "Site", "Fleet"])
def test_mapping_to_another_orgs_resource_is_404_and_nothing_is_stored(
    stack: LocalStack, org: Org, other_org: Org, resource_type: str
) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    foreign = make_device(stack, other_org.admin_key)
    resource_id = {
        "Thing": foreign["thingId"],
        "Site": foreign["placeId"],
        "Fleet": make_fleet(stack, other_org.admin_key)["fleetId"],
    }[resource_type]

    response = post_mapping(
        stack, org.admin_key, mapping_body(integration["integrationId"], resource_id, resource_type)
    )

    assert_problem(response, 404, "not_found")
    assert other_org.org_id not in response.body.decode()
    assert mapping_ids(stack, org.admin_key) == []
    assert mapping_ids(stack, other_org.admin_key) == []


def test_mapping_for_another_orgs_integration_is_404(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign = make_integration(stack, other_org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)

    response = post_mapping(stack, org.admin_key, mapping_body(foreign["integrationId"], thing["thingId"]))

    assert_problem(response, 404, "not_found")
    assert mapping_ids(stack, org.admin_key) == []
    assert mapping_ids(stack, other_org.admin_key) == []


def test_mapping_a_resource_of_the_wrong_type_is_404(stack: LocalStack, org: Org) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)

    response = post_mapping(stack, org.admin_key, mapping_body(integration["integrationId"], thing["thingId"], "Site"))

    assert_problem(response, 404, "not_found")


def test_same_remote_id_twice_for_an_integration_is_409(stack: LocalStack, org: Org) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)
    body = mapping_body(integration["integrationId"], thing["thingId"])
    assert post_mapping(stack, org.admin_key, body).status == 201

    assert_problem(post_mapping(stack, org.admin_key, body), 409, "conflict")
    assert len(mapping_ids(stack, org.admin_key)) == 1


@pytest.mark.parametrize(
    "change",
    [{"resourceType": "Level"}, {"externalId": ""}, {"resourceId": ""}, {"extra": 1}, {"integrationId": "x" * 65}],
    ids=["resource-type", "empty-external-id", "empty-resource-id", "unknown-field", "integration-id-too-long"],
)
def test_invalid_mapping_is_400(stack: LocalStack, org: Org, change: dict[str, Any]) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)

    response = post_mapping(
        stack, org.admin_key, {**mapping_body(integration["integrationId"], thing["thingId"]), **change}
    )

    assert_problem(response, 400, "validation_failed")
    assert mapping_ids(stack, org.admin_key) == []


def test_mappings_list_by_integration_and_page(stack: LocalStack, org: Org) -> None:
    first = make_integration(stack, org.admin_key, telematics_body())["integrationId"]
    second = make_integration(stack, org.admin_key, telematics_body())["integrationId"]
    thing = make_device(stack, org.admin_key)["thingId"]
    of_first = sorted(make_mapping(stack, org.admin_key, first, thing)["mappingId"] for _ in range(3))
    of_second = [make_mapping(stack, org.admin_key, second, thing)["mappingId"]]

    page = list_page(stack, org.admin_key, MAPPINGS_PATH, integrationId=first, limit=2)

    assert (len(page["items"]), page["hasMore"]) == (2, True)
    assert mapping_ids(stack, org.admin_key, integrationId=first, limit=2) == of_first
    assert mapping_ids(stack, org.admin_key, integrationId=second) == of_second
    assert mapping_ids(stack, org.admin_key, limit=1) == sorted(of_first + of_second)


def test_mappings_of_another_orgs_integration_are_404(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign = make_integration(stack, other_org.admin_key, telematics_body())
    make_mapping(
        stack, other_org.admin_key, foreign["integrationId"], make_device(stack, other_org.admin_key)["thingId"]
    )

    assert_problem(get(stack, org.admin_key, MAPPINGS_PATH, integrationId=foreign["integrationId"]), 404, "not_found")
    assert mapping_ids(stack, org.admin_key) == []


def test_delete_mapping_is_204_and_it_is_gone(stack: LocalStack, org: Org) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)
    body = mapping_body(integration["integrationId"], thing["thingId"])
    mapping = post_mapping(stack, org.admin_key, body).json()

    response = delete(stack, org.admin_key, mapping_path(mapping["mappingId"]))

    assert response.status == 204, response.body
    assert mapping_ids(stack, org.admin_key) == []
    assert_problem(delete(stack, org.admin_key, mapping_path(mapping["mappingId"])), 404, "not_found")
    assert post_mapping(stack, org.admin_key, body).status == 201  # the remote id is free again


def test_other_org_cannot_delete_a_mapping(stack: LocalStack, org: Org, other_org: Org) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    mapping = make_mapping(
        stack, org.admin_key, integration["integrationId"], make_device(stack, org.admin_key)["thingId"]
    )

    response = delete(stack, other_org.admin_key, mapping_path(mapping["mappingId"]))

    assert_problem(response, 404, "not_found")
    assert org.org_id not in response.body.decode()
    assert mapping_ids(stack, org.admin_key) == [mapping["mappingId"]]


def test_scoped_key_sees_and_changes_only_mappings_of_integrations_in_its_scope(stack: LocalStack, org: Org) -> None:
    telematics = make_integration(stack, org.admin_key, telematics_body())
    webhook = make_integration(stack, org.admin_key, webhook_body())
    thing = make_device(stack, org.admin_key)["thingId"]
    visible = make_mapping(stack, org.admin_key, telematics["integrationId"], thing)
    hidden = make_mapping(stack, org.admin_key, webhook["integrationId"], thing)
    scoped = key_with(stack, org, scope("write", TELEMATICS_ONLY), scope("read", "THING/#/#"))

    assert mapping_ids(stack, scoped.secret) == [visible["mappingId"]]
    assert_problem(delete(stack, scoped.secret, mapping_path(hidden["mappingId"])), 403, "forbidden_scope")
    assert_problem(post_mapping(stack, scoped.secret, mapping_body(webhook["integrationId"], thing)), 403)
    assert post_mapping(stack, scoped.secret, mapping_body(telematics["integrationId"], thing)).status == 201
    assert hidden["mappingId"] in mapping_ids(stack, org.admin_key)


def test_mapping_needs_read_access_to_the_resource(stack: LocalStack, org: Org) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key, type_name="Van")
    integrations_only = key_with(stack, org, scope("write", TELEMATICS_ONLY), scope("read", "THING/Truck/#"))

    response = post_mapping(
        stack, integrations_only.secret, mapping_body(integration["integrationId"], thing["thingId"])
    )

    assert_problem(response, 403, "forbidden_scope")
    assert mapping_ids(stack, org.admin_key) == []


def test_each_test_body_factory_writes_distinct_canaried_secrets() -> None:
    """Guards the leak scan: the values it looks for are distinct and all carry the canary."""
    values = [webhook_body()["secretProperties"]["signingSecret"], telematics_body()["secretProperties"]["apiKey"]]

    assert len(set(values)) == 2
    assert all(CANARY in value for value in values)


# -- races ------------------------------------------------------------------------------------


def test_of_two_overlapping_rotations_the_one_the_record_names_is_current(stack: LocalStack, org: Org) -> None:
    """A stages its values; B rotates completely meanwhile; A's record update then loses. The
    secret's current version is B's, as the record says, never the original or A's."""
    created = make_integration(stack, org.admin_key, webhook_body())
    name = secret_name(stack, org.org_id, created["integrationId"])
    client = function_secrets_client(stack, org)
    first, second = {"signingSecret": secret_text("first")}, {"signingSecret": secret_text("second")}
    answers: list[GatewayResponse] = []
    started: list[bool] = []

    def rotate_meanwhile(**_: Any) -> None:
        if not started:  # once: B's own PutSecretValue passes through here too
            started.append(True)
            answers.append(put_secrets(stack, org.admin_key, created["integrationId"], second))

    client.meta.events.register("after-call.secrets-manager.PutSecretValue", rotate_meanwhile)
    try:
        loser = put_secrets(stack, org.admin_key, created["integrationId"], first)
    finally:
        client.meta.events.unregister("after-call.secrets-manager.PutSecretValue", rotate_meanwhile)

    [winner] = answers
    assert winner.status == 200, winner.body
    assert_problem(loser, 409, "conflict")
    record = record_of(stack, org, created["integrationId"])
    assert record is not None
    assert record["secretVersionId"] == current_version(name)
    assert stored_secret_values(name) == second


def test_a_mapping_created_while_its_integration_is_deleted_goes_with_it(stack: LocalStack, org: Org) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)
    make_mapping(stack, org.admin_key, integration["integrationId"], thing["thingId"])
    client = function_records_client(stack, org)
    sneaked: list[GatewayResponse] = []
    started: list[bool] = []

    def map_meanwhile(**_: Any) -> None:
        if not started:  # once, right after the cascade removed the existing mapping
            started.append(True)
            body = mapping_body(integration["integrationId"], thing["thingId"], externalId="late")
            sneaked.append(post_mapping(stack, org.admin_key, body))

    client.meta.events.register("after-call.dynamodb.TransactWriteItems", map_meanwhile)
    try:
        response = delete(stack, org.admin_key, integration_path(integration["integrationId"]))
    finally:
        client.meta.events.unregister("after-call.dynamodb.TransactWriteItems", map_meanwhile)

    assert sneaked[0].status == 201, sneaked[0].body
    assert response.status == 204, response.body
    mapping_id = sneaked[0].json()["mappingId"]
    assert_problem(get(stack, org.admin_key, mapping_path(mapping_id)), 404, "not_found")
    assert get(stack, org.admin_key, "/v2/integrations/resource-mappings").json()["items"] == []


def test_an_integration_maps_at_most_its_limit_of_remote_ids(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spectra.repositories import integrations as repository

    monkeypatch.setattr(repository, "MAX_MAPPINGS_PER_INTEGRATION", 2)
    integration = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)
    for external_id in ("one", "two"):
        make_mapping(stack, org.admin_key, integration["integrationId"], thing["thingId"], externalId=external_id)

    third = post_mapping(stack, org.admin_key, mapping_body(integration["integrationId"], thing["thingId"]))

    assert_problem(third, 409, "conflict")
    # Deleting one frees a place (the count follows deletes too).
    first_id = get(stack, org.admin_key, "/v2/integrations/resource-mappings").json()["items"][0]["mappingId"]
    assert delete(stack, org.admin_key, mapping_path(first_id)).status == 204
    again = post_mapping(stack, org.admin_key, mapping_body(integration["integrationId"], thing["thingId"]))
    assert again.status == 201, again.body


# -- mapped resources -------------------------------------------------------------------------


def test_a_mapped_thing_cannot_be_deleted_until_its_mappings_are(stack: LocalStack, org: Org) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    thing = make_device(stack, org.admin_key)
    mapping = make_mapping(stack, org.admin_key, integration["integrationId"], thing["thingId"])
    thing_path = f"/v2/things/{thing['thingId']}"

    problem = assert_problem(delete(stack, org.admin_key, thing_path), 409, "conflict")

    assert problem["blockedBy"] == {"resourceMappings": 1}
    assert delete(stack, org.admin_key, mapping_path(mapping["mappingId"])).status == 204
    assert delete(stack, org.admin_key, thing_path).status == 204


@pytest.mark.parametrize("place_type", ["Site", "Fleet"])
def test_a_mapped_place_cannot_be_deleted_until_its_integration_is(
    stack: LocalStack, org: Org, place_type: str
) -> None:
    integration = make_integration(stack, org.admin_key, telematics_body())
    place = make_site(stack, org.admin_key) if place_type == "Site" else make_fleet(stack, org.admin_key)
    place_id = place["siteId"] if place_type == "Site" else place["fleetId"]
    body = mapping_body(integration["integrationId"], place_id, resource_type=place_type)
    assert post_mapping(stack, org.admin_key, body).status == 201
    place_path = f"/v2/{place_type.lower()}s/{place_id}"

    problem = assert_problem(delete(stack, org.admin_key, place_path), 409, "conflict")

    assert problem["blockedBy"] == {"resourceMappings": 1}
    # Deleting the integration takes its mappings, and their counts on the place, with it.
    assert delete(stack, org.admin_key, integration_path(integration["integrationId"])).status == 204
    assert delete(stack, org.admin_key, place_path).status == 204
