"""Definition request bodies: metrics, thing types and their versions, ingestion templates."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from spectra.metric_values import Aggregation, DataType
from spectra.models.definitions import (
    MAX_METRICS_PER_TYPE,
    CreateMetricRequest,
    CreateTemplateRequest,
    CreateThingTypeRequest,
    CreateThingTypeVersionRequest,
    TemplateSpec,
)
from tests.unit.factories import hex32


def metric_id() -> str:
    return f"mdef_{hex32()}"


def error_locs(model: type[BaseModel], body: dict[str, Any]) -> list[tuple[int | str, ...]]:
    """Where each problem is, for a body the model refuses."""
    with pytest.raises(ValidationError) as raised:
        model.model_validate(body)
    return [error["loc"] for error in raised.value.errors()]


def metric_body(**overrides: Any) -> dict[str, Any]:
    return {"name": "temperature", "dataType": "Double", "defaultAggregation": "Avg", **overrides}


def spec_body(**overrides: Any) -> dict[str, Any]:
    return {
        "recordsPointer": "/records",
        "timestamp": {"pointer": "/ts", "format": "epochMillis"},
        "mappings": [{"pointer": "/temp", "metricId": metric_id()}],
        **overrides,
    }


# -- CreateMetricRequest -----------------------------------------------------------------------


def test_metric_request_with_the_required_fields_is_accepted() -> None:
    request = CreateMetricRequest.model_validate(metric_body())
    assert (request.name, request.dataType, request.defaultAggregation) == (
        "temperature",
        DataType.DOUBLE,
        Aggregation.AVG,
    )
    assert (request.enumValues, request.tags) == (None, [])


@pytest.mark.parametrize("name", ["t", "x" * 100])
def test_metric_name_of_1_to_100_characters_is_accepted(name: str) -> None:
    assert CreateMetricRequest.model_validate(metric_body(name=name)).name == name


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_metric_name_outside_1_to_100_characters_is_refused(name: str) -> None:
    assert error_locs(CreateMetricRequest, metric_body(name=name)) == [("name",)]


@pytest.mark.parametrize("field", ["name", "dataType", "defaultAggregation"])
def test_metric_request_requires_name_type_and_aggregation(field: str) -> None:
    body = metric_body()
    del body[field]
    assert error_locs(CreateMetricRequest, body) == [(field,)]


def test_metric_request_refuses_unknown_fields() -> None:
    assert error_locs(CreateMetricRequest, metric_body(unit="C")) == [("unit",)]


@pytest.mark.parametrize("data_type", ["Int", "Double", "String", "Bool", "Json"])
def test_metric_data_type_may_be_any_data_type(data_type: str) -> None:
    assert CreateMetricRequest.model_validate(metric_body(dataType=data_type)).dataType == data_type


@pytest.mark.parametrize("data_type", ["Float", "int", "Enum", ""])
def test_metric_data_type_outside_the_enum_is_refused(data_type: str) -> None:
    assert error_locs(CreateMetricRequest, metric_body(dataType=data_type)) == [("dataType",)]


@pytest.mark.parametrize("aggregation", ["Last", "Avg", "Sum", "Count", "First"])
def test_metric_default_aggregation_may_be_any_aggregation(aggregation: str) -> None:
    request = CreateMetricRequest.model_validate(metric_body(defaultAggregation=aggregation))
    assert request.defaultAggregation == aggregation


@pytest.mark.parametrize("aggregation", ["Max", "Min", "avg", ""])
def test_metric_default_aggregation_outside_the_enum_is_refused(aggregation: str) -> None:
    assert error_locs(CreateMetricRequest, metric_body(defaultAggregation=aggregation)) == [("defaultAggregation",)]


def test_metric_enum_values_with_unique_codes_are_accepted() -> None:
    values = [{"code": 0, "label": "off"}, {"code": 1, "label": "on"}, {"code": -1, "label": "fault"}]
    request = CreateMetricRequest.model_validate(
        metric_body(dataType="Int", defaultAggregation="Last", enumValues=values)
    )
    assert request.enumValues is not None
    assert [(value.code, value.label) for value in request.enumValues] == [(0, "off"), (1, "on"), (-1, "fault")]


def test_metric_enum_values_with_repeated_codes_are_refused() -> None:
    values = [{"code": 1, "label": "on"}, {"code": 1, "label": "also on"}]
    with pytest.raises(ValidationError, match="enum codes must be unique") as raised:
        CreateMetricRequest.model_validate(metric_body(dataType="Int", defaultAggregation="Last", enumValues=values))
    assert [error["loc"] for error in raised.value.errors()] == [("enumValues",)]


@pytest.mark.parametrize(
    ("value", "loc"),
    [
        ({"code": 2**31, "label": "big"}, ("enumValues", 0, "code")),
        ({"code": 1, "label": ""}, ("enumValues", 0, "label")),
        ({"code": 1, "label": "on", "colour": "green"}, ("enumValues", 0, "colour")),
    ],
)
def test_metric_enum_value_fields_are_checked(value: dict[str, Any], loc: tuple[int | str, ...]) -> None:
    assert error_locs(CreateMetricRequest, metric_body(dataType="Int", enumValues=[value])) == [loc]


# -- CreateThingTypeRequest --------------------------------------------------------------------


def test_thing_type_request_defaults_to_no_metrics_and_no_properties() -> None:
    request = CreateThingTypeRequest.model_validate({"displayName": "Battery"})
    assert (request.metricIds, request.propertyDefinitions) == ([], [])


def test_thing_type_request_keeps_well_formed_metric_ids() -> None:
    ids = [metric_id(), metric_id()]
    assert CreateThingTypeRequest.model_validate({"displayName": "Battery", "metricIds": ids}).metricIds == ids


@pytest.mark.parametrize(
    "bad_id",
    [
        "mdef_" + "A" * 32,
        "mdef_" + "0" * 31,
        "mdef_" + "0" * 33,
        "mdef_" + "g" * 32,
        "tdef_" + "0" * 32,
        "0" * 32,
        "mdef-" + "0" * 32,
    ],
)
def test_thing_type_metric_ids_must_be_mdef_and_32_hex_digits(bad_id: str) -> None:
    body = {"displayName": "Battery", "metricIds": [metric_id(), bad_id]}
    assert error_locs(CreateThingTypeRequest, body) == [("metricIds", 1)]


def test_thing_type_metric_ids_must_not_repeat() -> None:
    repeated = metric_id()
    body = {"displayName": "Battery", "metricIds": [repeated, metric_id(), repeated]}
    with pytest.raises(ValidationError, match="metricIds must not repeat"):
        CreateThingTypeRequest.model_validate(body)


def test_thing_type_may_have_200_metrics() -> None:
    ids = [metric_id() for _ in range(MAX_METRICS_PER_TYPE)]
    assert len(CreateThingTypeRequest.model_validate({"displayName": "B", "metricIds": ids}).metricIds) == 200


def test_thing_type_with_more_than_200_metrics_is_refused() -> None:
    ids = [metric_id() for _ in range(MAX_METRICS_PER_TYPE + 1)]
    assert error_locs(CreateThingTypeRequest, {"displayName": "B", "metricIds": ids}) == [("metricIds",)]


def test_thing_type_request_requires_a_display_name() -> None:
    assert error_locs(CreateThingTypeRequest, {"metricIds": []}) == [("displayName",)]


def test_thing_type_property_definitions_are_validated_in_place() -> None:
    body = {
        "displayName": "B",
        "propertyDefinitions": [{"name": "ok", "valueType": "Int"}, {"name": "1bad", "valueType": "Int"}],
    }
    assert error_locs(CreateThingTypeRequest, body) == [("propertyDefinitions", 1, "name")]


# -- CreateThingTypeVersionRequest -------------------------------------------------------------


def test_version_request_requires_metric_ids() -> None:
    assert error_locs(CreateThingTypeVersionRequest, {"displayName": "Battery v2"}) == [("metricIds",)]


def test_version_request_with_omitted_property_definitions_inherits() -> None:
    request = CreateThingTypeVersionRequest.model_validate({"metricIds": [metric_id()]})
    assert request.propertyDefinitions is None
    assert "propertyDefinitions" not in request.model_fields_set


def test_version_request_with_empty_property_definitions_clears() -> None:
    request = CreateThingTypeVersionRequest.model_validate({"metricIds": [], "propertyDefinitions": []})
    assert request.propertyDefinitions == []


def test_version_request_metric_ids_must_not_repeat() -> None:
    repeated = metric_id()
    with pytest.raises(ValidationError, match="metricIds must not repeat"):
        CreateThingTypeVersionRequest.model_validate({"metricIds": [repeated, repeated]})


def test_version_request_metric_ids_must_be_well_formed() -> None:
    assert error_locs(CreateThingTypeVersionRequest, {"metricIds": ["mdef_x"]}) == [("metricIds", 0)]


# -- TemplateSpec ------------------------------------------------------------------------------


def test_template_spec_with_valid_pointers_is_accepted() -> None:
    spec = TemplateSpec.model_validate(
        spec_body(recordsPointer="/a~1b/0", timestamp={"pointer": "/meta/t~0s", "format": "iso8601"})
    )
    assert (spec.recordsPointer, spec.timestamp.pointer, spec.timestamp.format) == ("/a~1b/0", "/meta/t~0s", "iso8601")


def test_template_records_pointer_defaults_to_the_root() -> None:
    body = spec_body()
    del body["recordsPointer"]
    assert TemplateSpec.model_validate(body).recordsPointer == ""


def test_every_invalid_pointer_is_reported_at_its_own_location_at_once() -> None:
    body = spec_body(
        recordsPointer="records",
        timestamp={"pointer": "/ts~2", "format": "epochSeconds"},
        mappings=[
            {"pointer": "/ok", "metricId": metric_id()},
            {"pointer": "temp", "metricId": metric_id()},
            {"pointer": "/bad~", "metricId": metric_id()},
        ],
    )
    with pytest.raises(ValidationError) as raised:
        TemplateSpec.model_validate(body)
    errors = raised.value.errors()
    assert [error["loc"] for error in errors] == [
        ("recordsPointer",),
        ("timestamp", "pointer"),
        ("mappings", 1, "pointer"),
        ("mappings", 2, "pointer"),
    ]
    assert all("not an RFC 6901 JSON Pointer" in error["msg"] for error in errors)


@pytest.mark.parametrize("timestamp_format", ["epochMicros", "EpochMillis", "rfc3339", ""])
def test_unknown_timestamp_format_is_refused(timestamp_format: str) -> None:
    body = spec_body(timestamp={"pointer": "/ts", "format": timestamp_format})
    assert error_locs(TemplateSpec, body) == [("timestamp", "format")]


@pytest.mark.parametrize("timestamp_format", ["epochMillis", "epochSeconds", "iso8601"])
def test_known_timestamp_formats_are_accepted(timestamp_format: str) -> None:
    body = spec_body(timestamp={"pointer": "/ts", "format": timestamp_format})
    assert TemplateSpec.model_validate(body).timestamp.format == timestamp_format


def test_template_needs_at_least_one_mapping() -> None:
    assert error_locs(TemplateSpec, spec_body(mappings=[])) == [("mappings",)]


def test_template_mapping_metric_id_must_be_well_formed() -> None:
    body = spec_body(mappings=[{"pointer": "/temp", "metricId": "temperature"}])
    assert error_locs(TemplateSpec, body) == [("mappings", 0, "metricId")]


def test_template_spec_refuses_unknown_fields() -> None:
    body = spec_body(timestamp={"pointer": "/ts", "format": "iso8601", "zone": "UTC"}, extra=True)
    assert sorted(error_locs(TemplateSpec, body)) == [("extra",), ("timestamp", "zone")]


# -- CreateTemplateRequest ---------------------------------------------------------------------


def test_template_request_defaults_target_and_format() -> None:
    request = CreateTemplateRequest.model_validate({"name": "gateway", "spec": spec_body()})
    assert (request.target, request.format) == ("ThingData", "JsonPointer")


def test_template_request_accepts_the_explicit_target_and_format() -> None:
    body = {"name": "gateway", "target": "ThingData", "format": "JsonPointer", "spec": spec_body()}
    request = CreateTemplateRequest.model_validate(body)
    assert (request.target, request.format) == ("ThingData", "JsonPointer")


@pytest.mark.parametrize(
    ("field", "value"),
    [("target", "PlaceData"), ("target", "thingdata"), ("format", "JsonPath"), ("format", "jsonpointer")],
)
def test_template_request_refuses_other_targets_and_formats(field: str, value: str) -> None:
    body = {"name": "gateway", "spec": spec_body(), field: value}
    assert error_locs(CreateTemplateRequest, body) == [(field,)]


def test_template_request_reports_spec_problems_under_spec() -> None:
    body = {"name": "gateway", "spec": spec_body(recordsPointer="records")}
    assert error_locs(CreateTemplateRequest, body) == [("spec", "recordsPointer")]
