"""``/v2/definitions/metrics``: every route, as a client calls it through API Gateway.

The race tests go below HTTP on purpose: the local gateway runs one request at a time (a
Lambda container does too), so two creates can only overlap in the repository, as two
containers' would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from moto.dynamodb.models import DynamoDBBackend

from spectra.errors import Conflict
from spectra.identifiers import new_prefixed_id
from spectra.metric_values import Aggregation, DataType
from spectra.models.definitions import CreateMetricRequest, Metric
from spectra.repositories.definitions import MetricRepository
from spectra.tenancy import keys
from spectra_local.stack import LocalStack
from tests.integration.definition_factories import (
    METRIC_SCHEMA_PATH,
    METRICS_PATH,
    RECORD_STAMPS,
    THING_TYPES_PATH,
    TOKEN_MANGLERS,
    UNKNOWN_METRIC_ID,
    delete,
    error_fields,
    get,
    is_iso,
    key_with,
    list_all,
    list_page,
    make_metric,
    make_metrics,
    metric_body,
    metric_path,
    metric_service,
    operator,
    raw_record,
    restore,
    thing_type_body,
)
from tests.integration.factories import Org, assert_problem, scope

METRIC_FIELDS = {
    "metricId",
    "name",
    "displayName",
    "dataType",
    "defaultAggregation",
    "unitLabel",
    "description",
    "tags",
    "enumValues",
    "isDeleted",
    *RECORD_STAMPS,
}
NUMERIC = {"Last", "First", "Count", "Avg", "Sum"}
ORDERED = {"Last", "First", "Count"}
ON_OFF = [{"code": 0, "label": "Off"}, {"code": 1, "label": "On"}]


def post_metric(stack: LocalStack, caller: str, body: Any, **headers: str) -> Any:
    return stack.request("POST", METRICS_PATH, key=caller, json_body=body, headers=headers)


def put_metric(stack: LocalStack, caller: str, metric_id: str, body: Any) -> Any:
    return stack.request("PUT", metric_path(metric_id), key=caller, json_body=body)


def listed_ids(stack: LocalStack, caller: str, **query: Any) -> list[str]:
    return list_all(stack, caller, METRICS_PATH, "metricId", **query)


def without_request_details(problem: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k not in {"requestId", "instance"}}


# -- create -----------------------------------------------------------------------------------


def test_create_returns_201_with_location_and_the_metric(stack: LocalStack, org: Org) -> None:
    body = metric_body("Supply temperature", displayName="Supply", unitLabel="°C", tags=["hvac"])

    response = post_metric(stack, org.admin_key, body)

    assert response.status == 201
    metric = response.json()
    assert response.headers["Location"] == metric_path(metric["metricId"])
    assert metric.keys() >= METRIC_FIELDS
    assert {k: metric[k] for k in body} == body
    assert metric["metricId"].startswith("mdef_")
    assert (metric["isDeleted"], metric["createdBy"], metric["updatedBy"]) == (
        False,
        org.admin_key_id,
        org.admin_key_id,
    )
    assert is_iso(metric["createdAt"])
    assert metric["createdAt"] == metric["updatedAt"]
    assert [event["event"] for event in metric["history"]] == ["created"]
    assert get(stack, org.admin_key, metric_path(metric["metricId"])).json() == metric


def test_schema_lists_every_data_type_with_its_aggregations(stack: LocalStack, org: Org) -> None:
    response = get(stack, org.admin_key, METRIC_SCHEMA_PATH)

    assert response.status == 200
    rules = {rule["dataType"]: rule for rule in response.json()["dataTypes"]}
    assert {t: set(rule["aggregations"]) for t, rule in rules.items()} == {
        "Int": NUMERIC,
        "Double": NUMERIC,
        "String": ORDERED,
        "Bool": ORDERED,
        "Json": ORDERED,
    }
    assert set(rules["Int"]["enumAggregations"]) == ORDERED
    assert all(rules[t]["enumAggregations"] is None for t in ("Double", "String", "Bool", "Json"))


def test_create_accepts_exactly_the_pairs_the_schema_lists(stack: LocalStack, org: Org) -> None:
    schema = get(stack, org.admin_key, METRIC_SCHEMA_PATH).json()["dataTypes"]
    valid = {(rule["dataType"], aggregation) for rule in schema for aggregation in rule["aggregations"]}

    accepted = {
        (data_type, aggregation)
        for data_type in ("Int", "Double", "String", "Bool", "Json")
        for aggregation in sorted(NUMERIC)
        if post_metric(stack, org.admin_key, metric_body(data_type=data_type, aggregation=aggregation)).status == 201
    }

    assert accepted == valid


def test_create_refuses_an_aggregation_the_type_does_not_allow(stack: LocalStack, org: Org) -> None:
    pairs: list[tuple[str, str, dict[str, Any]]] = [
        ("String", "Avg", {}),
        ("Bool", "Sum", {}),
        ("Json", "Avg", {}),
        ("Int", "Avg", {"enumValues": ON_OFF}),
        ("Int", "Sum", {"enumValues": ON_OFF}),
    ]

    refused = {
        (data_type, aggregation, bool(extra)): error_fields(
            post_metric(stack, org.admin_key, metric_body(data_type=data_type, aggregation=aggregation, **extra))
        )
        for data_type, aggregation, extra in pairs
    }

    assert set(map(tuple, refused.values())) == {("defaultAggregation",)}, refused


def test_enum_values_are_for_int_metrics_only(stack: LocalStack, org: Org) -> None:
    refused = {
        data_type: error_fields(
            post_metric(stack, org.admin_key, metric_body(data_type=data_type, aggregation="Last", enumValues=ON_OFF))
        )
        for data_type in ("Double", "String", "Bool", "Json")
    }
    kept = make_metric(stack, org.admin_key, data_type="Int", aggregation="Last", enumValues=ON_OFF)

    assert refused == {key: ["enumValues"] for key in ("Double", "String", "Bool", "Json")}
    assert get(stack, org.admin_key, metric_path(kept["metricId"])).json()["enumValues"] == ON_OFF


# One row per rule: the change to a valid Int/Last body, and the field errors[] must name.
INVALID_FIELDS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "empty name": ({"name": ""}, ["name"]),
    "blank name": ({"name": "   "}, ["name"]),
    "long name": ({"name": "x" * 101}, ["name"]),
    "numeric name": ({"name": 42}, ["name"]),
    "null name": ({"name": None}, ["name"]),
    "long displayName": ({"displayName": "x" * 201}, ["displayName"]),
    "long description": ({"description": "x" * 2001}, ["description"]),
    "long unitLabel": ({"unitLabel": "x" * 51}, ["unitLabel"]),
    "tags not a list": ({"tags": "hvac"}, ["tags"]),
    "long tag": ({"tags": ["x" * 65]}, ["tags[0]"]),
    "too many tags": ({"tags": [f"t{n}" for n in range(51)]}, ["tags"]),
    "unknown dataType": ({"dataType": "Float"}, ["dataType"]),
    "unknown aggregation": ({"defaultAggregation": "Median"}, ["defaultAggregation"]),
    "enum code out of range": ({"enumValues": [{"code": 2**31, "label": "Big"}]}, ["enumValues[0].code"]),
    "fractional enum code": ({"enumValues": [{"code": 1.5, "label": "Half"}]}, ["enumValues[0].code"]),
    "empty enum label": ({"enumValues": [{"code": 1, "label": ""}]}, ["enumValues[0].label"]),
    "unknown enum field": ({"enumValues": [{"code": 1, "label": "On", "colour": "green"}]}, ["enumValues[0].colour"]),
    "repeated enum code": ({"enumValues": [{"code": 1, "label": "On"}, {"code": 1, "label": "Run"}]}, ["enumValues"]),
    "orgId": ({"orgId": "0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11"}, ["orgId"]),
    "metricId": ({"metricId": UNKNOWN_METRIC_ID}, ["metricId"]),
}


def test_each_invalid_field_is_400_naming_it(stack: LocalStack, org: Org) -> None:
    base = metric_body(data_type="Int", aggregation="Last")

    named = {
        case: error_fields(post_metric(stack, org.admin_key, {**base, **change}))
        for case, (change, _) in INVALID_FIELDS.items()
    }

    assert named == {case: fields for case, (_, fields) in INVALID_FIELDS.items()}


def test_each_missing_required_field_is_400_naming_it(stack: LocalStack, org: Org) -> None:
    required = ("name", "dataType", "defaultAggregation")

    named = {
        missing: error_fields(
            post_metric(stack, org.admin_key, {k: v for k, v in metric_body().items() if k != missing})
        )
        for missing in required
    }

    assert named == {missing: [missing] for missing in required}


def test_invalid_body_lists_every_problem(stack: LocalStack, org: Org) -> None:
    body = {"name": "x" * 101, "dataType": "Float", "defaultAggregation": "Median", "tags": "a", "colour": "red"}

    fields = error_fields(post_metric(stack, org.admin_key, body))

    assert sorted(fields) == sorted(["name", "dataType", "defaultAggregation", "tags", "colour"])


def test_refused_creates_leave_the_list_unchanged(stack: LocalStack, org: Org) -> None:
    existing = make_metric(stack, org.admin_key, "Pressure")
    refused = [
        metric_body("Level", data_type="String", aggregation="Sum"),
        metric_body("Level", enumValues=ON_OFF),
        metric_body("PRESSURE"),
        {**metric_body("Level"), "colour": "red"},
    ]

    statuses = [post_metric(stack, org.admin_key, body).status for body in refused]

    assert statuses == [400, 400, 409, 400]
    assert listed_ids(stack, org.admin_key, status="all") == [existing["metricId"]]


# -- unique names -----------------------------------------------------------------------------


def test_name_is_unique_in_the_org_case_insensitively(stack: LocalStack, org: Org) -> None:
    first = make_metric(stack, org.admin_key, "Pressure")

    for second in ("Pressure", "pressure", "PRESSURE", "  pRessure "):
        assert_problem(post_metric(stack, org.admin_key, metric_body(second)), 409, "conflict")
    assert listed_ids(stack, org.admin_key) == [first["metricId"]]


def test_same_name_in_another_org_is_independent(stack: LocalStack, org: Org, other_org: Org) -> None:
    make_metric(stack, org.admin_key, "Pressure")

    assert post_metric(stack, other_org.admin_key, metric_body("Pressure")).status == 201


@pytest.fixture
def atomic_moto_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB runs each transaction atomically; moto does not lock, so give it a lock.

    Without it two overlapping moto transactions can both pass their conditions (and a failing
    one restores a table snapshot over the other's write), which DynamoDB never does.
    """
    lock = threading.Lock()
    original = DynamoDBBackend.transact_write_items

    def atomic(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        with lock:
            original(self, transact_items)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", atomic)


@pytest.mark.usefixtures("atomic_moto_transactions")
def test_concurrent_creates_of_one_name_let_exactly_one_win(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = metric_service(stack)
    context = operator(org)
    both_validated = threading.Barrier(2)
    write = MetricRepository.create

    def write_together(self: MetricRepository, org_context: Any, record: Mapping[str, Any]) -> None:
        both_validated.wait(timeout=10)  # both creates passed validation; now both write
        write(self, org_context, record)

    monkeypatch.setattr(MetricRepository, "create", write_together)

    def create(name: str) -> Metric | Conflict:
        request = CreateMetricRequest(name=name, dataType=DataType.DOUBLE, defaultAggregation=Aggregation.AVG)
        try:
            return service.create(context, request)
        except Conflict as conflict:
            return conflict

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(create, ["Boiler temperature", "BOILER TEMPERATURE"]))

    winners = [o for o in outcomes if isinstance(o, Metric)]
    assert len(winners) == 1
    assert sum(isinstance(o, Conflict) for o in outcomes) == 1
    assert listed_ids(stack, org.admin_key, name="boiler") == [winners[0].metricId]


def test_create_landing_between_validation_and_write_wins_and_the_other_is_409(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = MetricRepository.create
    rival_id = new_prefixed_id("mdef")

    def rival_writes_first(self: MetricRepository, org_context: Any, record: Mapping[str, Any]) -> None:
        monkeypatch.setattr(MetricRepository, "create", write)
        write(self, org_context, {**record, "metricId": rival_id, "name": str(record["name"]).upper()})
        write(self, org_context, record)

    monkeypatch.setattr(MetricRepository, "create", rival_writes_first)

    response = post_metric(stack, org.admin_key, metric_body("Boiler temperature"))

    assert_problem(response, 409, "conflict")
    assert listed_ids(stack, org.admin_key) == [rival_id]
    guard = raw_record(stack, keys.metric_name_guard_key(operator(org), "Boiler Temperature"))
    assert guard is not None
    assert guard["metricId"] == rival_id


# -- Idempotency-Key --------------------------------------------------------------------------


def test_idempotent_retry_returns_the_same_metric_and_creates_one(stack: LocalStack, org: Org) -> None:
    body = metric_body("Energy")

    first = post_metric(stack, org.admin_key, body, **{"Idempotency-Key": "metric-1"})
    retry = post_metric(stack, org.admin_key, body, **{"Idempotency-Key": "metric-1"})

    assert (first.status, retry.status) == (201, 201)
    assert retry.json() == first.json()
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert listed_ids(stack, org.admin_key) == [first.json()["metricId"]]


def test_idempotency_key_reused_with_another_body_is_409(stack: LocalStack, org: Org) -> None:
    post_metric(stack, org.admin_key, metric_body("Energy"), **{"Idempotency-Key": "metric-1"})

    response = post_metric(stack, org.admin_key, metric_body("Power"), **{"Idempotency-Key": "metric-1"})

    assert_problem(response, 409, "idempotency_key_reused")
    assert len(listed_ids(stack, org.admin_key)) == 1


# -- get --------------------------------------------------------------------------------------


def test_unknown_malformed_and_foreign_metric_ids_get_the_same_404(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign = make_metric(stack, other_org.admin_key)["metricId"]
    ids = {"unknown": UNKNOWN_METRIC_ID, "malformed": "mdef_nope", "template-id": "not-a-metric", "foreign": foreign}

    problems = {
        name: assert_problem(get(stack, org.admin_key, metric_path(i)), 404, "not_found") for name, i in ids.items()
    }

    assert len({json.dumps(without_request_details(p), sort_keys=True) for p in problems.values()}) == 1
    assert other_org.org_id not in json.dumps(problems)


def test_writes_to_another_orgs_metric_are_404_and_change_nothing(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign = make_metric(stack, other_org.admin_key)
    writes = [("PUT", None, {"displayName": "Mine"}), ("DELETE", None, None), ("POST", "restore", None)]

    for method, action, body in writes:
        response = stack.request(method, metric_path(foreign["metricId"], action), key=org.admin_key, json_body=body)
        assert_problem(response, 404, "not_found")

    assert get(stack, other_org.admin_key, metric_path(foreign["metricId"])).json() == foreign


# -- put --------------------------------------------------------------------------------------


def test_put_replaces_the_mutable_fields(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key, displayName="Temp", unitLabel="C", tags=["old"], description="d")
    change = {"displayName": "Air temperature", "unitLabel": "°C", "tags": ["hvac", "air"], "description": "Room air"}

    response = put_metric(stack, org.admin_key, metric["metricId"], change)

    assert response.status == 200
    assert {k: response.json()[k] for k in change} == change
    assert get(stack, org.admin_key, metric_path(metric["metricId"])).json() == response.json()


def test_put_replaces_so_omitted_mutable_fields_are_cleared(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key, displayName="Temp", unitLabel="C", tags=["old"])

    updated = put_metric(stack, org.admin_key, metric["metricId"], {"description": "only this"}).json()

    assert (updated["displayName"], updated["unitLabel"], updated["tags"]) == (None, None, [])


def test_put_records_who_changed_it_and_when(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key)
    editor = key_with(stack, org, scope("write", "DEFINITION/Metric"))

    updated = put_metric(stack, editor.secret, metric["metricId"], {"displayName": "Renamed"}).json()

    assert (updated["createdBy"], updated["updatedBy"]) == (org.admin_key_id, editor.key_id)
    assert updated["createdAt"] == metric["createdAt"]
    assert updated["updatedAt"] >= metric["updatedAt"]
    assert [(e["event"], e["by"]) for e in updated["history"]] == [
        ("created", org.admin_key_id),
        ("updated", editor.key_id),
    ]


def test_put_may_repeat_the_immutable_fields_unchanged(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key, "Voltage", data_type="Double", aggregation="Last")
    body = {"name": "Voltage", "dataType": "Double", "defaultAggregation": "Last", "displayName": "Mains"}

    response = put_metric(stack, org.admin_key, metric["metricId"], body)

    assert response.status == 200
    assert response.json()["displayName"] == "Mains"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Current"}, "name"),
        ({"name": "voltage"}, "name"),
        ({"dataType": "Int"}, "dataType"),
        ({"defaultAggregation": "Avg"}, "defaultAggregation"),
    ],
    ids=["name", "name-case", "dataType", "defaultAggregation"],
)
def test_put_changing_an_immutable_field_is_400_naming_it(
    stack: LocalStack, org: Org, change: dict[str, str], field: str
) -> None:
    metric = make_metric(stack, org.admin_key, "Voltage", data_type="Double", aggregation="Last")

    response = put_metric(stack, org.admin_key, metric["metricId"], {**change, "displayName": "Mains"})

    assert error_fields(response) == [field]
    assert get(stack, org.admin_key, metric_path(metric["metricId"])).json() == metric


def test_put_changing_every_immutable_field_names_each(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key, "Voltage", data_type="Double", aggregation="Last")

    response = put_metric(
        stack, org.admin_key, metric["metricId"], {"name": "Amps", "dataType": "Int", "defaultAggregation": "Sum"}
    )

    assert sorted(error_fields(response)) == ["dataType", "defaultAggregation", "name"]


def test_put_may_relabel_and_append_enum_codes(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key, data_type="Int", aggregation="Last", enumValues=ON_OFF)
    values = [{"code": 0, "label": "Stopped"}, {"code": 1, "label": "Running"}, {"code": 2, "label": "Fault"}]

    response = put_metric(stack, org.admin_key, metric["metricId"], {"enumValues": values})

    assert response.status == 200
    assert get(stack, org.admin_key, metric_path(metric["metricId"])).json()["enumValues"] == values


def test_put_removing_an_enum_code_is_400(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key, data_type="Int", aggregation="Last", enumValues=ON_OFF)
    attempts = {
        "one-dropped": [{"code": 1, "label": "On"}],
        "all-replaced": [{"code": 5, "label": "X"}],
        "omitted": None,
    }

    named = {
        case: error_fields(put_metric(stack, org.admin_key, metric["metricId"], {"enumValues": values}))
        for case, values in attempts.items()
    }

    assert named == {key: ["enumValues"] for key in attempts}
    assert get(stack, org.admin_key, metric_path(metric["metricId"])).json()["enumValues"] == ON_OFF


def test_put_adding_enum_values_must_suit_the_type_and_aggregation(stack: LocalStack, org: Org) -> None:
    double = make_metric(stack, org.admin_key, data_type="Double", aggregation="Last")
    summed = make_metric(stack, org.admin_key, data_type="Int", aggregation="Sum")
    counted = make_metric(stack, org.admin_key, data_type="Int", aggregation="Count")

    named = [
        error_fields(put_metric(stack, org.admin_key, m["metricId"], {"enumValues": ON_OFF})) for m in (double, summed)
    ]

    assert named == [["enumValues"], ["defaultAggregation"]]
    assert put_metric(stack, org.admin_key, counted["metricId"], {"enumValues": ON_OFF}).status == 200


def test_put_on_a_deleted_metric_is_404(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key)
    delete(stack, org.admin_key, metric_path(metric["metricId"]))

    response = put_metric(stack, org.admin_key, metric["metricId"], {"displayName": "Back?"})

    assert_problem(response, 404, "not_found")


# -- delete and restore -----------------------------------------------------------------------


def test_delete_is_204_and_the_metric_is_gone_from_reads(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key)

    response = stack.request("DELETE", metric_path(metric["metricId"]), key=org.admin_key)

    assert (response.status, response.body) == (204, b"")
    assert_problem(get(stack, org.admin_key, metric_path(metric["metricId"])), 404, "not_found")
    assert listed_ids(stack, org.admin_key) == []


def test_delete_keeps_the_record_in_the_table(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key, "Kept")

    delete(stack, org.admin_key, metric_path(metric["metricId"]))

    stored = raw_record(stack, keys.metric_key(operator(org), metric["metricId"]))
    assert stored is not None
    assert (stored["name"], stored["isDeleted"], stored["deletedBy"]) == ("Kept", True, org.admin_key_id)
    assert is_iso(stored["deletedAt"])


def test_list_status_filter_picks_active_deleted_or_all(stack: LocalStack, org: Org) -> None:
    kept, deleted = make_metrics(stack, org.admin_key, 2)
    delete(stack, org.admin_key, metric_path(deleted))

    listed = {
        status: sorted(listed_ids(stack, org.admin_key, status=status)) for status in ("active", "deleted", "all")
    }

    assert listed == {"active": [kept], "deleted": [deleted], "all": sorted([kept, deleted])}


def test_deleted_metric_is_listed_with_who_deleted_it_and_when(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key)
    delete(stack, org.admin_key, metric_path(metric["metricId"]))

    (item,) = list_page(stack, org.admin_key, METRICS_PATH, status="deleted")["items"]

    assert (item["isDeleted"], item["deletedBy"], item["updatedBy"]) == (True, org.admin_key_id, org.admin_key_id)
    assert is_iso(item["deletedAt"])
    assert [e["event"] for e in item["history"]] == ["created", "deleted"]


def test_restore_brings_the_metric_back(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key)
    delete(stack, org.admin_key, metric_path(metric["metricId"]))

    response = restore(stack, org.admin_key, metric_path(metric["metricId"]))

    assert response.status == 200
    restored = response.json()
    assert (restored["isDeleted"], restored["deletedAt"], restored["deletedBy"]) == (False, None, None)
    assert get(stack, org.admin_key, metric_path(metric["metricId"])).json() == restored
    assert listed_ids(stack, org.admin_key) == [metric["metricId"]]


def test_delete_and_restore_are_recorded_in_history(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key)
    restorer = key_with(stack, org, scope("write", f"DEFINITION/Metric/{metric['metricId']}"))
    delete(stack, org.admin_key, metric_path(metric["metricId"]))

    restored = restore(stack, restorer.secret, metric_path(metric["metricId"])).json()

    assert [(e["event"], e["by"]) for e in restored["history"]] == [
        ("created", org.admin_key_id),
        ("deleted", org.admin_key_id),
        ("restored", restorer.key_id),
    ]
    assert all(is_iso(e["at"]) for e in restored["history"])
    assert restored["updatedBy"] == restorer.key_id


def test_restore_of_an_active_metric_returns_it_unchanged(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key)

    response = restore(stack, org.admin_key, metric_path(metric["metricId"]))

    assert (response.status, response.json()) == (200, metric)


def test_delete_releases_the_name(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key, "Pressure")
    delete(stack, org.admin_key, metric_path(metric["metricId"]))

    assert post_metric(stack, org.admin_key, metric_body("PRESSURE")).status == 201


def test_restore_is_409_when_the_name_was_taken_meanwhile(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key, "Pressure")
    delete(stack, org.admin_key, metric_path(metric["metricId"]))
    taker = make_metric(stack, org.admin_key, "pressure")

    response = restore(stack, org.admin_key, metric_path(metric["metricId"]))

    assert_problem(response, 409, "conflict")
    assert listed_ids(stack, org.admin_key, status="deleted") == [metric["metricId"]]
    assert get(stack, org.admin_key, metric_path(taker["metricId"])).json() == taker


def test_delete_or_restore_of_a_missing_metric_is_404(stack: LocalStack, org: Org) -> None:
    deleted = make_metric(stack, org.admin_key)["metricId"]
    delete(stack, org.admin_key, metric_path(deleted))

    assert_problem(stack.request("DELETE", metric_path(deleted), key=org.admin_key), 404, "not_found")
    for metric_id in (UNKNOWN_METRIC_ID, "mdef_nope"):
        assert_problem(stack.request("DELETE", metric_path(metric_id), key=org.admin_key), 404, "not_found")
        assert_problem(restore(stack, org.admin_key, metric_path(metric_id)), 404, "not_found")


def test_deleted_metric_cannot_be_bound_to_a_new_thing_type(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key)
    delete(stack, org.admin_key, metric_path(metric["metricId"]))

    response = stack.request(
        "POST", THING_TYPES_PATH, key=org.admin_key, json_body=thing_type_body(metric_ids=[metric["metricId"]])
    )

    assert error_fields(response) == ["metricIds[0]"]


# -- list -------------------------------------------------------------------------------------


def test_list_pages_through_five_metrics_in_three_pages(stack: LocalStack, org: Org) -> None:
    created = make_metrics(stack, org.admin_key, 5)
    pages: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(3):
        pages.append(
            list_page(stack, org.admin_key, METRICS_PATH, limit=2, **({"continuationToken": token} if token else {}))
        )
        token = pages[-1]["continuationToken"]

    assert [(len(p["items"]), p["hasMore"], p["continuationToken"] is not None) for p in pages] == [
        (2, True, True),
        (2, True, True),
        (1, False, False),
    ]
    listed = [item["metricId"] for page in pages for item in page["items"]]
    assert sorted(listed) == sorted(created)


def test_page_limit_is_an_alias_of_limit(stack: LocalStack, org: Org) -> None:
    make_metrics(stack, org.admin_key, 3)

    by_page_limit = listed_ids(stack, org.admin_key, pageLimit=2)

    assert by_page_limit == listed_ids(stack, org.admin_key, limit=2)
    assert len(list_page(stack, org.admin_key, METRICS_PATH, pageLimit=2)["items"]) == 2


def test_invalid_paging_or_filter_is_400_naming_it(stack: LocalStack, org: Org) -> None:
    queries: dict[str, dict[str, Any]] = {
        "limit zero": {"limit": 0},
        "limit over 100": {"limit": 101},
        "pageLimit zero": {"pageLimit": 0},
        "limit not a number": {"limit": "ten"},
        "limit and pageLimit disagree": {"limit": 2, "pageLimit": 3},
        "unknown status": {"status": "gone"},
        "unknown dataType": {"dataType": "Float"},
        "empty name": {"name": ""},
        "long name": {"name": "x" * 101},
    }

    named = {case: error_fields(get(stack, org.admin_key, METRICS_PATH, **query)) for case, query in queries.items()}

    assert named == {case: list(query)[:1] for case, query in queries.items()}


def test_token_reused_with_another_filter_is_400(stack: LocalStack, org: Org) -> None:
    make_metrics(stack, org.admin_key, 3)
    token = list_page(stack, org.admin_key, METRICS_PATH, limit=1)["continuationToken"]

    for other_query in ({"dataType": "Double"}, {"status": "all"}, {"name": "metric"}):
        response = get(stack, org.admin_key, METRICS_PATH, limit=1, continuationToken=token, **other_query)
        assert_problem(response, 400, "invalid_continuation_token")
    assert get(stack, org.admin_key, METRICS_PATH, limit=2, continuationToken=token).status == 200


def test_tampered_token_is_400(stack: LocalStack, org: Org) -> None:
    make_metrics(stack, org.admin_key, 2)
    token = list_page(stack, org.admin_key, METRICS_PATH, limit=1)["continuationToken"]

    for mangle in TOKEN_MANGLERS.values():
        response = get(stack, org.admin_key, METRICS_PATH, limit=1, continuationToken=mangle(token))
        assert_problem(response, 400, "invalid_continuation_token")


def test_token_of_another_org_is_400(stack: LocalStack, org: Org, other_org: Org) -> None:
    make_metrics(stack, other_org.admin_key, 2)
    make_metrics(stack, org.admin_key, 2)
    foreign = list_page(stack, other_org.admin_key, METRICS_PATH, limit=1)["continuationToken"]

    response = get(stack, org.admin_key, METRICS_PATH, limit=1, continuationToken=foreign)

    assert_problem(response, 400, "invalid_continuation_token")


def test_token_of_another_definition_list_is_400(stack: LocalStack, org: Org) -> None:
    make_metrics(stack, org.admin_key, 2)
    for _ in range(2):
        stack.request("POST", THING_TYPES_PATH, key=org.admin_key, json_body=thing_type_body())
    token = list_page(stack, org.admin_key, THING_TYPES_PATH, limit=1)["continuationToken"]

    response = get(stack, org.admin_key, METRICS_PATH, limit=1, continuationToken=token)

    assert_problem(response, 400, "invalid_continuation_token")


def test_list_filters_by_name_contains_case_insensitively(stack: LocalStack, org: Org) -> None:
    boiler = make_metric(stack, org.admin_key, "Boiler temperature")["metricId"]
    room = make_metric(stack, org.admin_key, "Room TEMPERATURE")["metricId"]
    make_metric(stack, org.admin_key, "Humidity")

    assert sorted(listed_ids(stack, org.admin_key, name="Temp")) == sorted([boiler, room])


def test_name_filter_pages_with_its_own_tokens(stack: LocalStack, org: Org) -> None:
    wanted = [make_metric(stack, org.admin_key, f"Zone {n} temperature")["metricId"] for n in range(3)]
    make_metrics(stack, org.admin_key, 3, prefix="Humidity")

    assert sorted(listed_ids(stack, org.admin_key, name="temperature", limit=1)) == sorted(wanted)


def test_list_filters_by_data_type(stack: LocalStack, org: Org) -> None:
    types = ("Int", "Double", "String")
    ids = {t: make_metric(stack, org.admin_key, data_type=t, aggregation="Last")["metricId"] for t in types}

    assert {t: listed_ids(stack, org.admin_key, dataType=t) for t in types} == {t: [ids[t]] for t in types}


def test_list_shows_only_the_callers_org(stack: LocalStack, org: Org, other_org: Org) -> None:
    make_metrics(stack, other_org.admin_key, 2)
    mine = make_metric(stack, org.admin_key)["metricId"]

    assert listed_ids(stack, org.admin_key, status="all") == [mine]


# -- scopes -----------------------------------------------------------------------------------


def test_key_with_read_on_one_metric_lists_only_that_metric(stack: LocalStack, org: Org) -> None:
    first, *_ = make_metrics(stack, org.admin_key, 3)
    reader = key_with(stack, org, scope("read", f"DEFINITION/Metric/{first}"))

    assert listed_ids(stack, reader.secret) == [first]


def test_listing_without_a_metric_scope_is_403(stack: LocalStack, org: Org) -> None:
    make_metrics(stack, org.admin_key, 1)
    callers = [
        key_with(stack, org, scope("read", "THING/#/#")),
        key_with(stack, org, scope("read", "DEFINITION/Template")),
        key_with(stack, org, scope("admin", "ORGANIZATION")),
    ]

    for caller in callers:
        assert_problem(get(stack, caller.secret, METRICS_PATH), 403, "forbidden_scope")


def test_key_with_read_on_one_metric_cannot_read_another(stack: LocalStack, org: Org) -> None:
    mine, theirs = make_metrics(stack, org.admin_key, 2)
    reader = key_with(stack, org, scope("read", f"DEFINITION/Metric/{mine}"))

    assert get(stack, reader.secret, metric_path(mine)).status == 200
    assert_problem(get(stack, reader.secret, metric_path(theirs)), 403, "forbidden_scope")
    assert get(stack, reader.secret, METRIC_SCHEMA_PATH).status == 200


def test_read_key_cannot_write(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key)
    reader = key_with(stack, org, scope("read", "DEFINITION"))
    writes = [
        ("POST", METRICS_PATH, metric_body("Read only")),
        ("PUT", metric_path(metric["metricId"]), {"displayName": "Read only"}),
        ("DELETE", metric_path(metric["metricId"]), None),
        ("POST", metric_path(metric["metricId"], "restore"), None),
    ]

    for method, path, body in writes:
        assert_problem(stack.request(method, path, key=reader.secret, json_body=body), 403, "forbidden_scope")

    assert listed_ids(stack, org.admin_key, status="all") == [metric["metricId"]]
    assert get(stack, org.admin_key, metric_path(metric["metricId"])).json() == metric


def test_key_with_write_on_one_metric_changes_only_that_metric(stack: LocalStack, org: Org) -> None:
    mine, theirs = make_metrics(stack, org.admin_key, 2)
    writer = key_with(stack, org, scope("write", f"DEFINITION/Metric/{mine}"))

    assert put_metric(stack, writer.secret, mine, {"displayName": "Mine"}).status == 200
    assert_problem(put_metric(stack, writer.secret, theirs, {"displayName": "Mine"}), 403, "forbidden_scope")
    assert_problem(stack.request("DELETE", metric_path(theirs), key=writer.secret), 403, "forbidden_scope")


def test_key_with_write_on_one_metric_cannot_create_metrics(stack: LocalStack, org: Org) -> None:
    (mine,) = make_metrics(stack, org.admin_key, 1)
    writer = key_with(stack, org, scope("write", f"DEFINITION/Metric/{mine}"))

    response = post_metric(stack, writer.secret, metric_body("Sneaky"))

    assert_problem(response, 403, "forbidden_scope")
    assert listed_ids(stack, org.admin_key) == [mine]
