"""Metric data types, their aggregations, and how a raw value becomes a value of a type.

The same rules serve metric definitions (which aggregations a type allows), templates (what a
mapped field turns into) and telemetry ingest (coercion of every value), so a value means the
same thing wherever it enters.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Any


class DataType(StrEnum):
    INT = "Int"
    DOUBLE = "Double"
    STRING = "String"
    BOOL = "Bool"
    JSON = "Json"


class Aggregation(StrEnum):
    LAST = "Last"
    AVG = "Avg"
    SUM = "Sum"
    COUNT = "Count"
    FIRST = "First"


_ORDERED = (Aggregation.LAST, Aggregation.FIRST, Aggregation.COUNT)
_NUMERIC = (*_ORDERED, Aggregation.AVG, Aggregation.SUM)

VALID_AGGREGATIONS: dict[DataType, tuple[Aggregation, ...]] = {
    DataType.INT: _NUMERIC,
    DataType.DOUBLE: _NUMERIC,
    DataType.STRING: _ORDERED,
    DataType.BOOL: _ORDERED,
    DataType.JSON: _ORDERED,
}
"""Which roll-ups make sense for which type: averaging a string or summing a flag does not."""

ENUM_AGGREGATIONS = _ORDERED
"""An Int with ``enumValues`` holds codes, not quantities: no Avg or Sum."""

MAX_STRING_LENGTH = 4096
MAX_JSON_BYTES = 16_384


class UncoercibleValue(ValueError):
    """A value that cannot be read as the metric's type; the message says why."""


def aggregation_allowed(data_type: DataType, aggregation: Aggregation, *, has_enum: bool = False) -> bool:
    """Whether ``aggregation`` is a valid default for a metric of ``data_type``."""
    allowed = ENUM_AGGREGATIONS if has_enum else VALID_AGGREGATIONS[data_type]
    return aggregation in allowed


def coerce(value: Any, data_type: DataType) -> Any:
    """``value`` as ``data_type``, or ``UncoercibleValue``.

    Lenient where the meaning is unambiguous (``"42"`` → 42, ``3.0`` → 3 for Int, ``"true"`` →
    True), strict otherwise (``3.5`` is not an Int, NaN is not a Double, ``"yes"`` is not a Bool).
    """
    if value is None:
        raise UncoercibleValue("null is not a value")
    if data_type is DataType.INT:
        return _to_int(value)
    if data_type is DataType.DOUBLE:
        return _to_double(value)
    if data_type is DataType.BOOL:
        return _to_bool(value)
    if data_type is DataType.STRING:
        if isinstance(value, dict | list):
            raise UncoercibleValue("expected a string, got an object or array")
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if len(text) > MAX_STRING_LENGTH:
            raise UncoercibleValue(f"string longer than {MAX_STRING_LENGTH} characters")
        return text
    encoded = json.dumps(value, allow_nan=False, separators=(",", ":"))
    if len(encoded.encode("utf-8")) > MAX_JSON_BYTES:
        raise UncoercibleValue(f"JSON value larger than {MAX_JSON_BYTES} bytes")
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise UncoercibleValue("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise UncoercibleValue("expected an integer, got a fractional number")
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
        try:
            return _to_int(float(value))
        except ValueError as error:
            raise UncoercibleValue(f"{value!r} is not an integer") from error
    raise UncoercibleValue("expected an integer")


def _to_double(value: Any) -> float:
    if isinstance(value, bool):
        raise UncoercibleValue("expected a number, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError as error:
            raise UncoercibleValue(f"{value!r} is not a number") from error
    else:
        raise UncoercibleValue("expected a number")
    if not math.isfinite(number):
        raise UncoercibleValue("expected a finite number")
    return number


_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise UncoercibleValue("expected a boolean (true/false)")
