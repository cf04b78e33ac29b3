"""The template mapping engine: JSON pointers, timestamps, and a payload mapped into telemetry records."""

from __future__ import annotations

from typing import Any

import pytest

from spectra.errors import ValidationFailed
from spectra.mapping import InvalidTimestamp, MetricInfo, apply_template, pointer_problem, timestamp_millis
from spectra.metric_values import DataType
from tests.unit.factories import hex32

TEMPERATURE = MetricInfo(f"mdef_{hex32()}", "temperature", DataType.DOUBLE)
COUNT = MetricInfo(f"mdef_{hex32()}", "count", DataType.INT)
STATUS = MetricInfo(f"mdef_{hex32()}", "status", DataType.STRING)
METRICS = {metric.metric_id: metric for metric in (TEMPERATURE, COUNT, STATUS)}

T0 = 1_700_000_000_000


def spec(
    *mappings: tuple[str, MetricInfo | str],
    records_pointer: str = "/records",
    timestamp_pointer: str = "/ts",
    timestamp_format: str = "epochMillis",
) -> dict[str, Any]:
    """A template spec mapping ``(pointer, metric)`` pairs; defaults to temperature at ``/temp``."""
    pairs = mappings or (("/temp", TEMPERATURE),)
    return {
        "recordsPointer": records_pointer,
        "timestamp": {"pointer": timestamp_pointer, "format": timestamp_format},
        "mappings": [
            {"pointer": pointer, "metricId": metric if isinstance(metric, str) else metric.metric_id}
            for pointer, metric in pairs
        ],
    }


def payload(*records: dict[str, Any]) -> dict[str, Any]:
    return {"records": list(records)}


# -- pointer_problem ---------------------------------------------------------------------------


@pytest.mark.parametrize("pointer", ["", "/", "/a", "/a/b", "/a~1b", "/a~0b", "/0/1", "/a/-"])
def test_rfc6901_pointer_has_no_problem(pointer: str) -> None:
    assert pointer_problem(pointer) is None


@pytest.mark.parametrize("pointer", ["a", "a/b", "/a~2", "/a~", "#/a"])
def test_malformed_pointer_has_a_problem(pointer: str) -> None:
    assert pointer_problem(pointer)


# -- timestamp_millis --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "timestamp_format", "expected"),
    [
        (T0, "epochMillis", T0),
        (str(T0), "epochMillis", T0),
        (float(T0), "epochMillis", T0),
        (1_700_000_000, "epochSeconds", T0),
        ("1700000000", "epochSeconds", T0),
        (1_700_000_000.123, "epochSeconds", T0 + 123),
        ("1700000000.5", "epochSeconds", T0 + 500),
        ("2023-11-14T22:13:20Z", "iso8601", T0),
        ("2023-11-14T22:13:20.250Z", "iso8601", T0 + 250),
        ("2023-11-14T22:13:20.250z", "iso8601", T0 + 250),
        ("2023-11-14T22:13:20+00:00", "iso8601", T0),
        ("2023-11-15T00:13:20+02:00", "iso8601", T0),
        ("2023-11-14T17:13:20.007-05:00", "iso8601", T0 + 7),
    ],
)
def test_timestamp_is_read_as_epoch_millis(raw: Any, timestamp_format: str, expected: int) -> None:
    millis = timestamp_millis(raw, timestamp_format)
    assert millis == expected
    assert type(millis) is int


@pytest.mark.parametrize(
    ("raw", "timestamp_format"),
    [
        ("2023-11-14T22:13:20", "iso8601"),
        ("2023-11-14", "iso8601"),
        ("yesterday", "iso8601"),
        ("", "iso8601"),
        (T0, "iso8601"),
        ("soon", "epochMillis"),
        (True, "epochMillis"),
        (None, "epochMillis"),
        ({"ms": T0}, "epochMillis"),
        ("NaN", "epochSeconds"),
        ("Infinity", "epochSeconds"),
        ("2023-11-14T22:13:20Z", "epochSeconds"),
    ],
)
def test_unreadable_timestamp_is_refused(raw: Any, timestamp_format: str) -> None:
    with pytest.raises(InvalidTimestamp):
        timestamp_millis(raw, timestamp_format)


def test_naive_iso_timestamp_is_refused_for_lack_of_a_timezone() -> None:
    with pytest.raises(InvalidTimestamp, match="needs a timezone"):
        timestamp_millis("2023-11-14T22:13:20.000", "iso8601")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1970-01-13T07:22:46.400Z", 1_063_366_400), ("1900-04-26T09:46:13.564Z", -2_199_017_626_436)],
)
def test_iso_timestamp_keeps_its_exact_millisecond(text: str, expected: int) -> None:
    assert timestamp_millis(text, "iso8601") == expected


def test_epoch_number_too_large_for_a_float_is_refused() -> None:
    with pytest.raises(InvalidTimestamp):
        timestamp_millis(10**400, "epochMillis")


# -- apply_template: where the records are -----------------------------------------------------


def test_records_are_read_from_the_array_at_records_pointer() -> None:
    result = apply_template(spec(), payload({"ts": T0, "temp": 20.5}, {"ts": T0 + 1, "temp": "21"}), METRICS)
    assert result.records == [
        {"timestamp": T0, "metrics": {TEMPERATURE.metric_id: 20.5}},
        {"timestamp": T0 + 1, "metrics": {TEMPERATURE.metric_id: 21.0}},
    ]


def test_single_object_at_records_pointer_is_one_record() -> None:
    result = apply_template(spec(records_pointer="/reading"), {"reading": {"ts": T0, "temp": 1}}, METRICS)
    assert result.records == [{"timestamp": T0, "metrics": {TEMPERATURE.metric_id: 1.0}}]
    assert result.report["recordsParsed"] == 1


def test_root_records_pointer_reads_an_array_payload() -> None:
    result = apply_template(spec(records_pointer=""), [{"ts": T0, "temp": 1}, {"ts": T0 + 1, "temp": 2}], METRICS)
    assert [record["timestamp"] for record in result.records] == [T0, T0 + 1]


def test_root_records_pointer_reads_an_object_payload_as_one_record() -> None:
    result = apply_template(spec(records_pointer=""), {"ts": T0, "temp": 3}, METRICS)
    assert result.records == [{"timestamp": T0, "metrics": {TEMPERATURE.metric_id: 3.0}}]


def test_nested_records_pointer_is_followed() -> None:
    result = apply_template(
        spec(records_pointer="/data/0/items"), {"data": [{"items": [{"ts": T0, "temp": 4}]}]}, METRICS
    )
    assert result.records == [{"timestamp": T0, "metrics": {TEMPERATURE.metric_id: 4.0}}]


@pytest.mark.parametrize("body", [{"other": []}, {}, [1, 2], {"Records": []}])
def test_records_pointer_that_points_at_nothing_fails_validation(body: Any) -> None:
    with pytest.raises(ValidationFailed) as raised:
        apply_template(spec(), body, METRICS)
    assert [error.as_dict() for error in raised.value.errors] == [
        {"field": "payload", "message": "recordsPointer does not point at anything in the payload"}
    ]


@pytest.mark.parametrize("value", [42, "records", True, None])
def test_records_pointer_that_points_at_a_scalar_fails_validation(value: Any) -> None:
    with pytest.raises(ValidationFailed) as raised:
        apply_template(spec(), {"records": value}, METRICS)
    assert [error.as_dict() for error in raised.value.errors] == [
        {"field": "payload", "message": "recordsPointer must point at an array of records or one record"}
    ]


# -- apply_template: per-record problems -------------------------------------------------------


def test_record_without_a_timestamp_is_skipped_with_its_index() -> None:
    result = apply_template(spec(), payload({"ts": T0, "temp": 1}, {"temp": 2}), METRICS)
    assert result.report["recordsSkipped"] == [{"index": 1, "reason": "timestamp missing"}]
    assert len(result.records) == 1


def test_record_with_an_invalid_timestamp_is_skipped_with_the_reason() -> None:
    result = apply_template(
        spec(timestamp_format="iso8601"), payload({"ts": "2023-11-14T22:13:20", "temp": 1}), METRICS
    )
    assert result.report["recordsSkipped"] == [
        {"index": 0, "reason": "timestamp invalid: an ISO-8601 timestamp needs a timezone (e.g. Z)"}
    ]
    assert result.records == []


@pytest.mark.parametrize("record", [{"ts": T0}, {"ts": T0, "temp": None}])
def test_missing_or_null_field_is_reported_as_skipped_missing(record: dict[str, Any]) -> None:
    result = apply_template(spec(("/temp", TEMPERATURE), ("/count", COUNT)), payload({**record, "count": 1}), METRICS)
    assert result.report["fieldsSkippedMissing"] == [
        {"index": 0, "pointer": "/temp", "metricId": TEMPERATURE.metric_id}
    ]
    assert result.records == [{"timestamp": T0, "metrics": {COUNT.metric_id: 1}}]


def test_uncoercible_field_is_reported_as_invalid_with_the_reason() -> None:
    result = apply_template(
        spec(("/temp", TEMPERATURE), ("/count", COUNT)), payload({"ts": T0, "temp": 1, "count": 2.5}), METRICS
    )
    assert result.report["fieldsInvalid"] == [
        {
            "index": 0,
            "pointer": "/count",
            "metricId": COUNT.metric_id,
            "reason": "expected an integer, got a fractional number",
        }
    ]
    assert result.records == [{"timestamp": T0, "metrics": {TEMPERATURE.metric_id: 1.0}}]


def test_record_without_any_mapped_value_is_skipped() -> None:
    result = apply_template(spec(), payload({"ts": T0, "temp": "hot"}, {"ts": T0 + 1}), METRICS)
    assert result.report["recordsSkipped"] == [
        {"index": 0, "reason": "no mapped values"},
        {"index": 1, "reason": "no mapped values"},
    ]
    assert result.records == []


@pytest.mark.parametrize("data_type", [DataType.STRING, DataType.JSON])
def test_dash_array_index_resolves_to_a_missing_field(data_type: DataType) -> None:
    metric = MetricInfo(f"mdef_{hex32()}", "last", data_type)
    result = apply_template(
        spec(("/values/-", metric)), payload({"ts": T0, "values": [1, 2]}), {metric.metric_id: metric}
    )
    assert result.report["fieldsSkippedMissing"] == [{"index": 0, "pointer": "/values/-", "metricId": metric.metric_id}]


# -- apply_template: which metrics may be written ----------------------------------------------


def test_metrics_not_on_the_type_are_skipped_and_listed_once() -> None:
    template = spec(("/temp", TEMPERATURE), ("/count", COUNT), ("/status", STATUS), ("/count2", COUNT))
    result = apply_template(
        template,
        payload({"ts": T0, "temp": 1, "count": 2, "status": "ok"}, {"ts": T0 + 1, "temp": 3, "count": 4}),
        METRICS,
        metrics_on_type={TEMPERATURE.metric_id},
    )
    assert result.report["metricsSkippedNotOnType"] == [COUNT.metric_id, STATUS.metric_id]
    assert [record["metrics"] for record in result.records] == [
        {TEMPERATURE.metric_id: 1.0},
        {TEMPERATURE.metric_id: 3.0},
    ]


def test_unknown_metric_is_listed_as_not_on_type() -> None:
    unknown = f"mdef_{hex32()}"
    result = apply_template(
        spec(("/temp", TEMPERATURE), ("/x", unknown)), payload({"ts": T0, "temp": 1, "x": 5}), METRICS
    )
    assert result.report["metricsSkippedNotOnType"] == [unknown]
    assert result.records == [{"timestamp": T0, "metrics": {TEMPERATURE.metric_id: 1.0}}]


def test_without_metrics_on_type_every_known_metric_is_mapped() -> None:
    result = apply_template(
        spec(("/temp", TEMPERATURE), ("/count", COUNT)), payload({"ts": T0, "temp": 1, "count": 2}), METRICS
    )
    assert result.report["metricsSkippedNotOnType"] == []
    assert result.records == [{"timestamp": T0, "metrics": {TEMPERATURE.metric_id: 1.0, COUNT.metric_id: 2}}]


def test_timestamp_refused_by_the_check_skips_the_record_with_its_reason() -> None:
    def only_recent(millis: int) -> str | None:
        return "timestamp outside the retention window" if millis < T0 else None

    result = apply_template(
        spec(), payload({"ts": T0 - 1, "temp": 1}, {"ts": T0, "temp": 2}), METRICS, timestamp_check=only_recent
    )
    assert result.report["recordsSkipped"] == [{"index": 0, "reason": "timestamp outside the retention window"}]
    assert result.records == [{"timestamp": T0, "metrics": {TEMPERATURE.metric_id: 2.0}}]


def test_timestamp_check_receives_epoch_millis() -> None:
    seen: list[int] = []

    def record_it(millis: int) -> None:
        seen.append(millis)

    apply_template(
        spec(timestamp_format="epochSeconds"),
        payload({"ts": 1_700_000_000, "temp": 1}),
        METRICS,
        timestamp_check=record_it,
    )
    assert seen == [T0]


# -- apply_template: the report ----------------------------------------------------------------


def test_report_counts_parsed_records_readings_and_values_exactly() -> None:
    template = spec(("/temp", TEMPERATURE), ("/count", COUNT), ("/status", STATUS))
    body = payload(
        {"ts": T0, "temp": "20.5", "count": "3", "status": 1},  # 3 values
        {"ts": T0 + 1, "temp": 21, "count": None},  # 1 value, count missing, status missing
        {"temp": 22},  # skipped: no timestamp
        {"ts": T0 + 3, "count": "x"},  # skipped: no values (count invalid)
        {"ts": T0 + 4, "status": True},  # 1 value
    )
    result = apply_template(template, body, METRICS)
    assert result.report == {
        "recordsParsed": 5,
        "readingsWritten": 3,
        "metricValuesWritten": 5,
        "recordsSkipped": [{"index": 2, "reason": "timestamp missing"}, {"index": 3, "reason": "no mapped values"}],
        "metricsSkippedNotOnType": [],
        "fieldsSkippedMissing": [
            {"index": 1, "pointer": "/count", "metricId": COUNT.metric_id},
            {"index": 1, "pointer": "/status", "metricId": STATUS.metric_id},
            {"index": 3, "pointer": "/temp", "metricId": TEMPERATURE.metric_id},
            {"index": 3, "pointer": "/status", "metricId": STATUS.metric_id},
            {"index": 4, "pointer": "/temp", "metricId": TEMPERATURE.metric_id},
            {"index": 4, "pointer": "/count", "metricId": COUNT.metric_id},
        ],
        "fieldsInvalid": [
            {"index": 3, "pointer": "/count", "metricId": COUNT.metric_id, "reason": "'x' is not an integer"}
        ],
    }


def test_records_are_keyed_by_metric_id_with_coerced_values() -> None:
    template = spec(("/temp", TEMPERATURE), ("/count", COUNT), ("/status", STATUS))
    result = apply_template(template, payload({"ts": T0, "temp": "20", "count": 3.0, "status": 404}), METRICS)
    assert result.records == [
        {"timestamp": T0, "metrics": {TEMPERATURE.metric_id: 20.0, COUNT.metric_id: 3, STATUS.metric_id: "404"}}
    ]
    values = result.records[0]["metrics"]
    assert [type(values[m.metric_id]) for m in (TEMPERATURE, COUNT, STATUS)] == [float, int, str]


def test_empty_records_array_writes_nothing() -> None:
    result = apply_template(spec(), payload(), METRICS)
    assert result.records == []
    assert (result.report["recordsParsed"], result.report["readingsWritten"]) == (0, 0)
