"""Metric data types, their aggregations, and how a raw value becomes a value of a type.

The same rules serve metric definitions (which aggregations a type allows), templates (what a
mapped field turns into) and telemetry ingest (coercion of every value), so a value means the
same thing wherever it enters.
"""

from __future__ import annotations

import json
import math
import re
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
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (ValueError, TypeError) as error:
        raise UncoercibleValue("not a JSON value") from error
    if len(encoded.encode("utf-8")) > MAX_JSON_BYTES:
        raise UncoercibleValue(f"JSON value larger than {MAX_JSON_BYTES} bytes")
    return value


_NUMBER_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
MAX_INT_DIGITS = 38  # DynamoDB numbers keep at most 38 significant digits


def _number_text(value: str, kind: str = "a number") -> str:
    text = value.strip()
    if not _NUMBER_TEXT.fullmatch(text):  # no "1_000", "0x10", " nan" or "inf"
        raise UncoercibleValue(f"{value!r} is not {kind}")
    return text


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise UncoercibleValue("expected an integer, got a boolean")
    if isinstance(value, str):
        text = _number_text(value, "an integer")
        value = int(text) if text.lstrip("+-").isdigit() else _to_double(text)
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise UncoercibleValue("expected an integer, got a fractional number")
        value = int(value)
    if not isinstance(value, int):
        raise UncoercibleValue("expected an integer")
    if len(str(abs(value))) > MAX_INT_DIGITS:
        raise UncoercibleValue(f"integer has more than {MAX_INT_DIGITS} digits")
    return value


def _to_double(value: Any) -> float:
    if isinstance(value, bool):
        raise UncoercibleValue("expected a number, got a boolean")
    if isinstance(value, str):
        value = _number_text(value)
    if not isinstance(value, int | float | str):
        raise UncoercibleValue("expected a number")
    try:
        number = float(value)
    except (ValueError, OverflowError) as error:
        raise UncoercibleValue("expected a finite number") from error
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
