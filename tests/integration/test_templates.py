"""``/v2/templates``: ingestion templates, revisions, dry runs and soft delete, as a client calls them."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from spectra.tenancy import keys
from spectra_local.stack import LocalStack
from tests.integration.definition_factories import (
    RECORD_STAMPS,
    TEMPLATES_PATH,
    TOKEN_MANGLERS,
    UNKNOWN_METRIC_ID,
    UNKNOWN_TEMPLATE_ID,
    created,
    delete,
    error_fields,
    get,
    is_iso,
    key_with,
    list_all,
    list_page,
    make_metric,
    make_template,
    metric_path,
    operator,
    raw_record,
    restore,
    template_body,
    template_path,
    template_spec,
)
from tests.integration.factories import Org, assert_problem, records_table, scope

TEMPLATE_FIELDS = {
    "templateId",
    "name",
    "target",
    "format",
    "spec",
    "description",
    "tags",
    "revision",
    "isDeleted",
    *RECORD_STAMPS,
}
SAMPLE = {"readings": [{"ts": 1_700_000_000, "kwh": 1.5}, {"ts": 1_700_000_060, "kwh": "2.25"}]}


def post_template(stack: LocalStack, caller: str, body: Any) -> Any:
    return stack.request("POST", TEMPLATES_PATH, key=caller, json_body=body)


def put_template(stack: LocalStack, caller: str, template_id: str, body: Any) -> Any:
    return stack.request("PUT", template_path(template_id), key=caller, json_body=body)


def dry_run(stack: LocalStack, caller: str, template_id: str, payload: Any) -> Any:
    return stack.request("POST", template_path(template_id, "test"), key=caller, json_body={"payload": payload})


def listed_ids(stack: LocalStack, caller: str, **query: Any) -> list[str]:
    return list_all(stack, caller, TEMPLATES_PATH, "templateId", **query)


def template_of(stack: LocalStack, caller: str, template_id: str) -> dict[str, Any]:
    response = get(stack, caller, template_path(template_id))
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


def org_definition_items(stack: LocalStack, org: Org) -> str:
    """Every stored item of the org except its API keys (whose lastUsedAt moves on each call)."""
    items: list[dict[str, Any]] = []
    for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=records_table(stack)):
        items.extend(
            i for i in page["Items"] if i["pk"]["S"].startswith(f"ORG#{org.org_id}#") and "APIKEYS#" not in i["pk"]["S"]
        )
    return json.dumps(sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"])), sort_keys=True)


# -- create -----------------------------------------------------------------------------------


def test_create_returns_201_with_revision_1_and_the_defaults(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key)
    body = template_body(metric["metricId"], description="Meter export v1", tags=["meters"])

    response = post_template(stack, org.admin_key, body)

    assert response.status == 201
    template = response.json()
    assert response.headers["Location"] == template_path(template["templateId"])
    assert template.keys() >= TEMPLATE_FIELDS
    assert {k: template[k] for k in body} == body
    assert (template["target"], template["format"], template["revision"]) == ("ThingData", "JsonPointer", 1)
    assert (template["isDeleted"], template["createdBy"]) == (False, org.admin_key_id)
    assert [e["event"] for e in template["history"]] == ["created"]
    assert template_of(stack, org.admin_key, template["templateId"]) == template


def test_pointers_are_kept_exactly_as_written(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    spec = template_spec(
        [("/a~1b/c d", metric_id)], records_pointer="", timestamp_pointer="/meta/~0t", timestamp_format="iso8601"
    )

    template = created(post_template(stack, org.admin_key, {"name": "Escapes", "spec": spec}))

    assert template["spec"] == spec


# One row per rule: a change to a valid body, and the fields errors[] must name.
def invalid_bodies(metric_id: str) -> dict[str, tuple[dict[str, Any], list[str]]]:
    def spec(**changes: Any) -> dict[str, Any]:
        return {"spec": {**template_spec([("/kwh", metric_id)]), **changes}}

    def mapping(**changes: Any) -> dict[str, Any]:
        return spec(mappings=[{"pointer": "/kwh", "metricId": metric_id, **changes}])

    return {
        "records pointer without slash": (spec(recordsPointer="readings"), ["spec.recordsPointer"]),
        "bad escape in timestamp pointer": (
            spec(timestamp={"pointer": "/a~2", "format": "epochMillis"}),
            ["spec.timestamp.pointer"],
        ),
        "mapping pointer without slash": (mapping(pointer="kwh"), ["spec.mappings[0].pointer"]),
        "pointer too long": (mapping(pointer="/" + "x" * 500), ["spec.mappings[0].pointer"]),
        "unknown timestamp format": (
            spec(timestamp={"pointer": "/ts", "format": "epochNanos"}),
            ["spec.timestamp.format"],
        ),
        "timestamp missing": ({"spec": {"mappings": [{"pointer": "/kwh", "metricId": metric_id}]}}, ["spec.timestamp"]),
        "no mappings": (spec(mappings=[]), ["spec.mappings"]),
        "malformed metric id": (mapping(metricId="kwh"), ["spec.mappings[0].metricId"]),
        "unknown spec field": (spec(colour="red"), ["spec.colour"]),
        "unknown mapping field": (mapping(unit="kWh"), ["spec.mappings[0].unit"]),
        "spec missing": ({"spec": None}, ["spec"]),
        "empty name": ({"name": ""}, ["name"]),
        "long name": ({"name": "x" * 201}, ["name"]),
        "long description": ({"description": "x" * 2001}, ["description"]),
        "unknown target": ({"target": "Events"}, ["target"]),
        "unknown format": ({"format": "XPath"}, ["format"]),
        "unknown field": ({"revision": 5}, ["revision"]),
    }


def test_each_invalid_field_is_400_naming_it(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    table = invalid_bodies(metric_id)

    named = {
        case: error_fields(post_template(stack, org.admin_key, {**template_body(metric_id), **change}))
        for case, (change, _) in table.items()
    }

    assert named == {case: fields for case, (_, fields) in table.items()}


def test_invalid_spec_lists_every_problem(stack: LocalStack, org: Org) -> None:
    spec = template_spec([("kwh", "nope"), ("/v", UNKNOWN_METRIC_ID)], records_pointer="r", timestamp_format="ns")

    fields = error_fields(post_template(stack, org.admin_key, {"name": "", "spec": spec}))

    assert sorted(fields) == sorted(
        [
            "name",
            "spec.recordsPointer",
            "spec.timestamp.format",
            "spec.mappings[0].pointer",
            "spec.mappings[0].metricId",
        ]
    )


def test_unknown_foreign_and_deleted_metrics_are_400_listing_each(stack: LocalStack, org: Org, other_org: Org) -> None:
    known = make_metric(stack, org.admin_key)["metricId"]
    foreign = make_metric(stack, other_org.admin_key)["metricId"]
    deleted = make_metric(stack, org.admin_key)["metricId"]
    delete(stack, org.admin_key, metric_path(deleted))
    spec = template_spec([("/a", UNKNOWN_METRIC_ID), ("/b", known), ("/c", foreign), ("/d", deleted)])

    response = post_template(stack, org.admin_key, {"name": "Refs", "spec": spec})

    assert error_fields(response) == [
        "spec.mappings[0].metricId",
        "spec.mappings[2].metricId",
        "spec.mappings[3].metricId",
    ]
    assert other_org.org_id not in response.body.decode("utf-8")


def test_refused_creates_leave_the_list_unchanged(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    existing = make_template(stack, org.admin_key, metric_id)["templateId"]
    refused = [
        template_body(UNKNOWN_METRIC_ID),
        {**template_body(metric_id), "target": "Events"},
        {"name": "Bad pointer", "spec": template_spec([("kwh", metric_id)])},
    ]

    statuses = [post_template(stack, org.admin_key, body).status for body in refused]

    assert statuses == [400, 400, 400]
    assert listed_ids(stack, org.admin_key, status="all") == [existing]


# -- get --------------------------------------------------------------------------------------


def test_unknown_malformed_and_foreign_templates_are_404_everywhere(
    stack: LocalStack, org: Org, other_org: Org
) -> None:
    foreign_metric = make_metric(stack, other_org.admin_key)["metricId"]
    foreign = make_template(stack, other_org.admin_key, foreign_metric)
    calls = [
        ("GET", None, None),
        ("PUT", None, template_body(foreign_metric)),
        ("DELETE", None, None),
        ("POST", "restore", None),
        ("POST", "test", {"payload": SAMPLE}),
    ]

    for template_id in (UNKNOWN_TEMPLATE_ID, "not-a-guid", foreign["templateId"]):
        for method, action, body in calls:
            response = stack.request(method, template_path(template_id, action), key=org.admin_key, json_body=body)
            assert_problem(response, 404, "not_found")

    assert template_of(stack, other_org.admin_key, foreign["templateId"]) == foreign


# -- put --------------------------------------------------------------------------------------


def test_put_replaces_the_template_and_bumps_its_revision(stack: LocalStack, org: Org) -> None:
    first, second = make_metric(stack, org.admin_key)["metricId"], make_metric(stack, org.admin_key)["metricId"]
    template = make_template(stack, org.admin_key, first, tags=["v1"])
    change = {
        "name": "Meter export v2",
        "spec": template_spec([("/kwh", first), ("/kvarh", second)], timestamp_format="epochMillis"),
        "description": "with reactive energy",
        "tags": ["v2"],
    }

    response = put_template(stack, org.admin_key, template["templateId"], change)

    assert response.status == 200
    updated = response.json()
    assert {k: updated[k] for k in change} == change
    assert (updated["revision"], updated["createdAt"], updated["updatedBy"]) == (
        2,
        template["createdAt"],
        org.admin_key_id,
    )
    assert [e["event"] for e in updated["history"]] == ["created", "revision 2"]
    assert template_of(stack, org.admin_key, template["templateId"]) == updated


def test_every_put_bumps_the_revision_and_may_repeat_target_and_format(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    template = make_template(stack, org.admin_key, metric_id)

    bodies = [
        template_body(metric_id),
        template_body(metric_id, target="ThingData", format="JsonPointer"),
        template_body(metric_id, name="Same again"),
    ]

    revisions = [put_template(stack, org.admin_key, template["templateId"], b).json()["revision"] for b in bodies]

    assert revisions == [2, 3, 4]


def test_put_validates_like_create_and_keeps_the_revision(stack: LocalStack, org: Org, other_org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    template = make_template(stack, org.admin_key, metric_id)
    foreign = make_metric(stack, other_org.admin_key)["metricId"]
    changes: dict[str, tuple[dict[str, Any], list[str]]] = {
        "target changed": ({**template_body(metric_id), "target": "Events"}, ["target"]),
        "format changed": ({**template_body(metric_id), "format": "XPath"}, ["format"]),
        "invalid pointer": (
            {"name": "x", "spec": template_spec([("kwh", metric_id)])},
            ["spec.mappings[0].pointer"],
        ),
        "unknown metric": (template_body(UNKNOWN_METRIC_ID), ["spec.mappings[0].metricId"]),
        "foreign metric": (template_body(foreign), ["spec.mappings[0].metricId"]),
        "spec omitted": ({"name": "No spec"}, ["spec"]),
        "unknown field": ({**template_body(metric_id), "revision": 9}, ["revision"]),
    }

    named = {
        case: error_fields(put_template(stack, org.admin_key, template["templateId"], body))
        for case, (body, _) in changes.items()
    }

    assert named == {case: fields for case, (_, fields) in changes.items()}
    assert template_of(stack, org.admin_key, template["templateId"]) == template


def test_put_refuses_a_metric_deleted_since_creation(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    template = make_template(stack, org.admin_key, metric_id)
    delete(stack, org.admin_key, metric_path(metric_id))

    response = put_template(stack, org.admin_key, template["templateId"], template_body(metric_id, name="Renamed"))

    assert error_fields(response) == ["spec.mappings[0].metricId"]


# -- dry run ----------------------------------------------------------------------------------


def test_dry_run_maps_the_sample_and_reports(stack: LocalStack, org: Org) -> None:
    metric = make_metric(stack, org.admin_key, "Energy")
    template = make_template(stack, org.admin_key, metric["metricId"])

    response = dry_run(stack, org.admin_key, template["templateId"], SAMPLE)

    assert response.status == 200
    assert response.json() == {
        "records": [
            {"timestamp": 1_700_000_000_000, "metrics": {"Energy": 1.5}},
            {"timestamp": 1_700_000_060_000, "metrics": {"Energy": 2.25}},
        ],
        "report": {
            "recordsParsed": 2,
            "readingsWritten": 2,
            "metricValuesWritten": 2,
            "recordsSkipped": [],
            "metricsSkippedNotOnType": [],
            "fieldsSkippedMissing": [],
            "fieldsInvalid": [],
        },
    }


def test_dry_run_reports_what_it_skips(stack: LocalStack, org: Org) -> None:
    energy = make_metric(stack, org.admin_key, "Energy")["metricId"]
    count = make_metric(stack, org.admin_key, "Pulses", data_type="Int", aggregation="Sum")["metricId"]
    spec = template_spec([("/kwh", energy), ("/pulses", count)])
    template = created(post_template(stack, org.admin_key, {"name": "Two", "spec": spec}))
    payload = {
        "readings": [
            {"ts": 1_700_000_000, "kwh": 1.5, "pulses": 3},
            {"ts": 1_700_000_060, "kwh": 2.0},
            {"ts": 1_700_000_120, "kwh": 2.5, "pulses": 4.5},
            {"kwh": 3.0, "pulses": 5},
            {"ts": "soon", "kwh": 3.0},
            {"ts": 1_700_000_240, "other": 1},
        ]
    }

    body = dry_run(stack, org.admin_key, template["templateId"], payload).json()

    assert [r["metrics"] for r in body["records"]] == [{"Energy": 1.5, "Pulses": 3}, {"Energy": 2.0}, {"Energy": 2.5}]
    report = body["report"]
    assert (report["recordsParsed"], report["readingsWritten"], report["metricValuesWritten"]) == (6, 3, 4)
    assert [(s["index"], s["reason"].split(":")[0]) for s in report["recordsSkipped"]] == [
        (3, "timestamp missing"),
        (4, "timestamp invalid"),
        (5, "no mapped values"),
    ]
    assert [(f["index"], f["pointer"]) for f in report["fieldsSkippedMissing"]] == [
        (1, "/pulses"),
        (5, "/kwh"),
        (5, "/pulses"),
    ]
    assert [(f["index"], f["pointer"], f["metricId"]) for f in report["fieldsInvalid"]] == [(2, "/pulses", count)]


@pytest.mark.parametrize(
    ("timestamp_format", "value"),
    [
        ("epochMillis", 1_700_000_000_123),
        ("epochMillis", "1700000000123"),
        ("epochSeconds", 1_700_000_000.123),
        ("iso8601", "2023-11-14T22:13:20.123Z"),
        ("iso8601", "2023-11-15T00:13:20.123+02:00"),
    ],
    ids=["millis", "millis-text", "seconds", "iso-z", "iso-offset"],
)
def test_dry_run_reads_each_timestamp_format(stack: LocalStack, org: Org, timestamp_format: str, value: Any) -> None:
    metric_id = make_metric(stack, org.admin_key, "Energy")["metricId"]
    spec = template_spec([("/kwh", metric_id)], records_pointer="", timestamp_format=timestamp_format)
    template = created(post_template(stack, org.admin_key, {"name": "Formats", "spec": spec}))

    result = dry_run(stack, org.admin_key, template["templateId"], [{"ts": value, "kwh": 1}]).json()

    assert [r["timestamp"] for r in result["records"]] == [1_700_000_000_123]


def test_dry_run_skips_an_out_of_range_epoch_seconds_timestamp(stack: LocalStack, org: Org) -> None:
    template = make_template(stack, org.admin_key, make_metric(stack, org.admin_key)["metricId"])

    response = dry_run(stack, org.admin_key, template["templateId"], {"readings": [{"ts": 1e308, "kwh": 1}]})

    assert response.status == 200, response.body
    assert [s["reason"].split(":")[0] for s in response.json()["report"]["recordsSkipped"]] == ["timestamp invalid"]


def test_dry_run_takes_a_single_record_object(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key, "Energy")["metricId"]
    spec = template_spec([("/kwh", metric_id)], records_pointer="/reading")
    template = created(post_template(stack, org.admin_key, {"name": "One", "spec": spec}))

    body = dry_run(stack, org.admin_key, template["templateId"], {"reading": {"ts": 1_700_000_000, "kwh": 4}}).json()

    assert body["records"] == [{"timestamp": 1_700_000_000_000, "metrics": {"Energy": 4.0}}]


def test_dry_run_writes_nothing(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    template = make_template(stack, org.admin_key, metric_id)
    before = org_definition_items(stack, org)

    assert dry_run(stack, org.admin_key, template["templateId"], SAMPLE).status == 200

    assert org_definition_items(stack, org) == before
    assert template_of(stack, org.admin_key, template["templateId"]) == template


def test_dry_run_with_an_unusable_payload_is_400(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    template = make_template(stack, org.admin_key, metric_id)
    path = template_path(template["templateId"], "test")

    refused = {
        "records pointer finds nothing": dry_run(stack, org.admin_key, template["templateId"], {"rows": []}),
        "records pointer finds a number": dry_run(stack, org.admin_key, template["templateId"], {"readings": 5}),
        "no payload": stack.request("POST", path, key=org.admin_key, json_body={}),
        "unknown field": stack.request("POST", path, key=org.admin_key, json_body={"payload": SAMPLE, "dryRun": True}),
    }

    assert {case: error_fields(r) for case, r in refused.items()} == {
        "records pointer finds nothing": ["payload"],
        "records pointer finds a number": ["payload"],
        "no payload": ["payload"],
        "unknown field": ["dryRun"],
    }


def test_dry_run_skips_a_metric_deleted_since_creation(stack: LocalStack, org: Org) -> None:
    kept = make_metric(stack, org.admin_key, "Energy")["metricId"]
    gone = make_metric(stack, org.admin_key, "Power")["metricId"]
    spec = template_spec([("/kwh", kept), ("/kw", gone)])
    template = created(post_template(stack, org.admin_key, {"name": "Two", "spec": spec}))
    delete(stack, org.admin_key, metric_path(gone))

    body = dry_run(stack, org.admin_key, template["templateId"], {"readings": [{"ts": 1, "kwh": 1, "kw": 2}]}).json()

    assert [r["metrics"] for r in body["records"]] == [{"Energy": 1.0}]
    assert body["report"]["metricsSkippedNotOnType"] == [gone]


def test_dry_run_needs_read_on_the_template_only(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    mine, theirs = (make_template(stack, org.admin_key, metric_id)["templateId"] for _ in range(2))
    reader = key_with(stack, org, scope("read", f"DEFINITION/Template/{mine}"))

    assert dry_run(stack, reader.secret, mine, SAMPLE).status == 200
    assert_problem(dry_run(stack, reader.secret, theirs, SAMPLE), 403, "forbidden_scope")


# -- delete and restore -----------------------------------------------------------------------


def test_delete_is_204_and_the_template_is_gone(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    template = make_template(stack, org.admin_key, metric_id)

    response = stack.request("DELETE", template_path(template["templateId"]), key=org.admin_key)

    assert response.status == 204
    assert_problem(get(stack, org.admin_key, template_path(template["templateId"])), 404, "not_found")
    assert_problem(dry_run(stack, org.admin_key, template["templateId"], SAMPLE), 404, "not_found")
    assert_problem(put_template(stack, org.admin_key, template["templateId"], template_body(metric_id)), 404)
    assert listed_ids(stack, org.admin_key) == []


def test_delete_keeps_the_record_in_the_table(stack: LocalStack, org: Org) -> None:
    template = make_template(stack, org.admin_key, make_metric(stack, org.admin_key)["metricId"])

    delete(stack, org.admin_key, template_path(template["templateId"]))

    stored = raw_record(stack, keys.template_key(operator(org), template["templateId"]))
    assert stored is not None
    assert (stored["isDeleted"], stored["deletedBy"], stored["revision"]) == (True, org.admin_key_id, 1)
    assert is_iso(stored["deletedAt"])


def test_list_status_filter_picks_active_deleted_or_all(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    kept, deleted = (make_template(stack, org.admin_key, metric_id)["templateId"] for _ in range(2))
    delete(stack, org.admin_key, template_path(deleted))

    listed = {
        status: sorted(listed_ids(stack, org.admin_key, status=status)) for status in ("active", "deleted", "all")
    }

    assert listed == {"active": [kept], "deleted": [deleted], "all": sorted([kept, deleted])}


def test_restore_brings_the_template_back_and_history_records_both(stack: LocalStack, org: Org) -> None:
    template = make_template(stack, org.admin_key, make_metric(stack, org.admin_key)["metricId"])
    delete(stack, org.admin_key, template_path(template["templateId"]))
    (deleted,) = list_page(stack, org.admin_key, TEMPLATES_PATH, status="deleted")["items"]

    response = restore(stack, org.admin_key, template_path(template["templateId"]))

    assert (deleted["isDeleted"], deleted["deletedBy"], is_iso(deleted["deletedAt"])) == (True, org.admin_key_id, True)
    assert response.status == 200
    restored = response.json()
    assert (restored["isDeleted"], restored["deletedAt"], restored["deletedBy"], restored["revision"]) == (
        False,
        None,
        None,
        1,
    )
    assert [(e["event"], e["by"]) for e in restored["history"]] == [
        ("created", org.admin_key_id),
        ("deleted", org.admin_key_id),
        ("restored", org.admin_key_id),
    ]
    assert template_of(stack, org.admin_key, template["templateId"]) == restored


def test_restore_of_an_active_template_returns_it_unchanged(stack: LocalStack, org: Org) -> None:
    template = make_template(stack, org.admin_key, make_metric(stack, org.admin_key)["metricId"])

    response = restore(stack, org.admin_key, template_path(template["templateId"]))

    assert (response.status, response.json()) == (200, template)


# -- list -------------------------------------------------------------------------------------


def test_list_pages_through_every_template_once(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    created_ids = [make_template(stack, org.admin_key, metric_id)["templateId"] for _ in range(3)]

    first = list_page(stack, org.admin_key, TEMPLATES_PATH, pageLimit=2)

    assert (len(first["items"]), first["hasMore"]) == (2, True)
    assert sorted(listed_ids(stack, org.admin_key, limit=2)) == sorted(created_ids)
    assert listed_ids(stack, org.admin_key, pageLimit=2) == listed_ids(stack, org.admin_key, limit=2)


def test_list_filters_by_target_and_format(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    template_id = make_template(stack, org.admin_key, metric_id)["templateId"]

    listed = [
        listed_ids(stack, org.admin_key, target="ThingData"),
        listed_ids(stack, org.admin_key, format="JsonPointer"),
        listed_ids(stack, org.admin_key, target="ThingData", format="JsonPointer", status="all"),
    ]

    assert listed == [[template_id]] * 3
    assert error_fields(get(stack, org.admin_key, TEMPLATES_PATH, target="Events")) == ["target"]
    assert error_fields(get(stack, org.admin_key, TEMPLATES_PATH, format="XPath")) == ["format"]
    assert error_fields(get(stack, org.admin_key, TEMPLATES_PATH, status="gone")) == ["status"]


def test_bad_tokens_are_400(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    for _ in range(2):
        make_template(stack, org.admin_key, metric_id)
    token = list_page(stack, org.admin_key, TEMPLATES_PATH, limit=1)["continuationToken"]

    for bad in (mangle(token) for mangle in TOKEN_MANGLERS.values()):
        response = get(stack, org.admin_key, TEMPLATES_PATH, limit=1, continuationToken=bad)
        assert_problem(response, 400, "invalid_continuation_token")
    for other_filter in ({"target": "ThingData"}, {"format": "JsonPointer"}, {"status": "deleted"}):
        response = get(stack, org.admin_key, TEMPLATES_PATH, limit=1, continuationToken=token, **other_filter)
        assert_problem(response, 400, "invalid_continuation_token")


def test_list_shows_only_the_callers_org(stack: LocalStack, org: Org, other_org: Org) -> None:
    make_template(stack, other_org.admin_key, make_metric(stack, other_org.admin_key)["metricId"])

    assert listed_ids(stack, org.admin_key, status="all") == []


# -- scopes -----------------------------------------------------------------------------------


def test_key_with_read_on_one_template_lists_and_reads_only_it(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    mine, theirs, _ = (make_template(stack, org.admin_key, metric_id)["templateId"] for _ in range(3))
    reader = key_with(stack, org, scope("read", f"DEFINITION/Template/{mine}"))

    assert listed_ids(stack, reader.secret) == [mine]
    assert template_of(stack, reader.secret, mine)["templateId"] == mine
    assert_problem(get(stack, reader.secret, template_path(theirs)), 403, "forbidden_scope")


def test_listing_without_a_template_scope_is_403(stack: LocalStack, org: Org) -> None:
    make_template(stack, org.admin_key, make_metric(stack, org.admin_key)["metricId"])
    callers = [
        key_with(stack, org, scope("read", "THING/#/#")),
        key_with(stack, org, scope("read", "DEFINITION/Metric")),
    ]

    for caller in callers:
        assert_problem(get(stack, caller.secret, TEMPLATES_PATH), 403, "forbidden_scope")


def test_read_key_cannot_write(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    template = make_template(stack, org.admin_key, metric_id)
    reader = key_with(stack, org, scope("read", "DEFINITION"))
    writes = [
        ("POST", TEMPLATES_PATH, template_body(metric_id)),
        ("PUT", template_path(template["templateId"]), template_body(metric_id)),
        ("DELETE", template_path(template["templateId"]), None),
        ("POST", template_path(template["templateId"], "restore"), None),
    ]

    for method, path, body in writes:
        assert_problem(stack.request(method, path, key=reader.secret, json_body=body), 403, "forbidden_scope")

    assert listed_ids(stack, org.admin_key, status="all") == [template["templateId"]]
    assert template_of(stack, org.admin_key, template["templateId"]) == template


def test_key_with_write_on_one_template_changes_only_it(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]
    mine, theirs = (make_template(stack, org.admin_key, metric_id)["templateId"] for _ in range(2))
    writer = key_with(stack, org, scope("write", f"DEFINITION/Template/{mine}"))

    assert put_template(stack, writer.secret, mine, template_body(metric_id)).status == 200
    assert_problem(put_template(stack, writer.secret, theirs, template_body(metric_id)), 403, "forbidden_scope")
    assert_problem(stack.request("DELETE", template_path(theirs), key=writer.secret), 403, "forbidden_scope")
    assert template_of(stack, org.admin_key, theirs)["revision"] == 1
