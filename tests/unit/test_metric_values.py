"""Metric values: how a raw value becomes a value of a metric's type, and which roll-ups each type allows."""

from __future__ import annotations

import math
from typing import Any

import pytest

from spectra.metric_values import (
    ENUM_AGGREGATIONS,
    MAX_JSON_BYTES,
    MAX_STRING_LENGTH,
    VALID_AGGREGATIONS,
    Aggregation,
    DataType,
    UncoercibleValue,
    aggregation_allowed,
    coerce,
)

NUMERIC = (DataType.INT, DataType.DOUBLE)
NON_NUMERIC = (DataType.STRING, DataType.BOOL, DataType.JSON)
ORDERED = {Aggregation.LAST, Aggregation.FIRST, Aggregation.COUNT}

# -- Int ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (42, 42),
        (-7, -7),
        (0, 0),
        ("42", 42),
        (" 42 ", 42),
        ("-3", -3),
        (3.0, 3),
        ("3.0", 3),
        ("1e3", 1000),
        (2**70, 2**70),
        (str(10**30), 10**30),
    ],
)
def test_int_accepts_whole_numbers(raw: Any, expected: int) -> None:
    value = coerce(raw, DataType.INT)
    assert value == expected
    assert type(value) is int


@pytest.mark.parametrize(
    "raw",
    [
        3.5,
        "3.5",
        True,
        False,
        "abc",
        "",
        math.nan,
        math.inf,
        -math.inf,
        "NaN",
        "inf",
        {"a": 1},
        [1],
    ],
)
def test_int_refuses_values_that_are_not_whole_numbers(raw: Any) -> None:
    with pytest.raises(UncoercibleValue):
        coerce(raw, DataType.INT)


# -- Double ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, 1.0),
        (-2, -2.0),
        (1.5, 1.5),
        ("1.5", 1.5),
        (" 2.25 ", 2.25),
        ("7", 7.0),
        ("1e-3", 0.001),
    ],
)
def test_double_accepts_numbers_and_numeric_strings(raw: Any, expected: float) -> None:
    value = coerce(raw, DataType.DOUBLE)
    assert value == expected
    assert type(value) is float


@pytest.mark.parametrize(
    "raw",
    [math.nan, math.inf, -math.inf, "NaN", "Infinity", "-Infinity", True, False, "abc", "", {"a": 1}, [1.0]],
)
def test_double_refuses_non_finite_and_non_numeric_values(raw: Any) -> None:
    with pytest.raises(UncoercibleValue):
        coerce(raw, DataType.DOUBLE)


def test_double_refuses_an_integer_too_large_for_a_float() -> None:
    with pytest.raises(UncoercibleValue):
        coerce(10**400, DataType.DOUBLE)


# -- Bool --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("TRUE", True),
        ("False", False),
        ("FALSE", False),
        ("1", True),
        ("0", False),
        (" true ", True),
    ],
)
def test_bool_accepts_unambiguous_truth_values(raw: Any, expected: bool) -> None:
    assert coerce(raw, DataType.BOOL) is expected


@pytest.mark.parametrize("raw", ["yes", "no", "on", "", 2, -1, 1.0, 0.5, {"a": True}, [True]])
def test_bool_refuses_ambiguous_values(raw: Any) -> None:
    with pytest.raises(UncoercibleValue):
        coerce(raw, DataType.BOOL)


# -- String ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hello", "hello"),
        ("", ""),
        (42, "42"),
        (1.5, "1.5"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_string_stringifies_scalars(raw: Any, expected: str) -> None:
    assert coerce(raw, DataType.STRING) == expected


@pytest.mark.parametrize("raw", [{"a": 1}, [1, 2], []])
def test_string_refuses_objects_and_arrays(raw: Any) -> None:
    with pytest.raises(UncoercibleValue):
        coerce(raw, DataType.STRING)


def test_string_of_the_maximum_length_is_kept() -> None:
    text = "x" * MAX_STRING_LENGTH
    assert coerce(text, DataType.STRING) == text


def test_string_longer_than_the_maximum_is_refused() -> None:
    with pytest.raises(UncoercibleValue, match=str(MAX_STRING_LENGTH)):
        coerce("x" * (MAX_STRING_LENGTH + 1), DataType.STRING)


# -- Json --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [{"a": [1, 2, {"b": None}]}, [1, "two", 3.0], {}, [], "text", 42, 1.5, True, False],
)
def test_json_keeps_objects_arrays_and_scalars_unchanged(raw: Any) -> None:
    assert coerce(raw, DataType.JSON) == raw


def test_json_of_the_maximum_size_is_kept() -> None:
    raw = "x" * (MAX_JSON_BYTES - 2)  # the two quotes make it exactly the limit
    assert coerce(raw, DataType.JSON) == raw


def test_json_larger_than_16_kib_is_refused() -> None:
    with pytest.raises(UncoercibleValue, match=str(MAX_JSON_BYTES)):
        coerce({"blob": "x" * MAX_JSON_BYTES}, DataType.JSON)


@pytest.mark.parametrize("raw", [math.nan, {"reading": math.inf}, [-math.inf]])
def test_json_refuses_nan_and_infinity(raw: Any) -> None:
    with pytest.raises(UncoercibleValue):
        coerce(raw, DataType.JSON)


def test_json_size_is_measured_in_utf8_bytes() -> None:
    raw = "é" * 3000  # 6,002 bytes as UTF-8 JSON
    assert coerce(raw, DataType.JSON) == raw


# -- null --------------------------------------------------------------------------------------


@pytest.mark.parametrize("data_type", list(DataType))
def test_null_is_refused_for_every_type(data_type: DataType) -> None:
    with pytest.raises(UncoercibleValue, match="null"):
        coerce(None, data_type)


# -- aggregations ------------------------------------------------------------------------------


def test_every_data_type_has_an_aggregation_rule() -> None:
    assert set(VALID_AGGREGATIONS) == set(DataType)


@pytest.mark.parametrize("data_type", NUMERIC)
@pytest.mark.parametrize("aggregation", list(Aggregation))
def test_numeric_types_allow_every_aggregation(data_type: DataType, aggregation: Aggregation) -> None:
    assert aggregation_allowed(data_type, aggregation)
    assert aggregation in VALID_AGGREGATIONS[data_type]


@pytest.mark.parametrize("data_type", NON_NUMERIC)
@pytest.mark.parametrize("aggregation", list(Aggregation))
def test_non_numeric_types_allow_only_last_first_and_count(data_type: DataType, aggregation: Aggregation) -> None:
    expected = aggregation in ORDERED
    assert aggregation_allowed(data_type, aggregation) is expected
    assert (aggregation in VALID_AGGREGATIONS[data_type]) is expected


@pytest.mark.parametrize("aggregation", list(Aggregation))
def test_enum_ints_allow_only_last_first_and_count(aggregation: Aggregation) -> None:
    expected = aggregation in ORDERED
    assert aggregation_allowed(DataType.INT, aggregation, has_enum=True) is expected
    assert (aggregation in ENUM_AGGREGATIONS) is expected
