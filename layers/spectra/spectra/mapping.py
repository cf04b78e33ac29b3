"""The template mapping engine: a JSON payload + a JsonPointer template → telemetry records.

A template says where the records are (``recordsPointer``), where each record's timestamp is and
in which format, and which field feeds which metric. Applying it yields records keyed by metric
id and a report of everything that was skipped or invalid, so a caller can see exactly what
would be (or was) written. ``POST /templates/{id}/test`` runs it as a dry run; telemetry ingest
runs the same code for real.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jsonpointer import EndOfList, JsonPointer, JsonPointerException

from spectra.errors import ValidationFailed
from spectra.metric_values import DataType, UncoercibleValue, coerce

_MISSING = object()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_EPOCH_MILLIS = 0
MAX_EPOCH_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def pointer_problem(text: str) -> str | None:
    """Why ``text`` is not an RFC 6901 JSON Pointer, or ``None`` when it is one."""
    try:
        JsonPointer(text)
    except JsonPointerException as error:
        return str(error)
    return None


def _resolve(document: Any, pointer: str) -> Any:
    try:
        found = JsonPointer(pointer).resolve(document, _MISSING)
    except JsonPointerException:
        return _MISSING
    return _MISSING if isinstance(found, EndOfList) else found  # "/-" names no element


class InvalidTimestamp(ValueError):
    """A timestamp that cannot be read in the template's format."""


def timestamp_millis(value: Any, timestamp_format: str) -> int:
    """The epoch milliseconds of a timestamp given in ``epochMillis``, ``epochSeconds`` or ``iso8601``."""
    if timestamp_format == "iso8601":
        if not isinstance(value, str):
            raise InvalidTimestamp("expected an ISO-8601 string")
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as error:
            raise InvalidTimestamp(f"{value!r} is not an ISO-8601 timestamp") from error
        if moment.tzinfo is None:
            raise InvalidTimestamp("an ISO-8601 timestamp needs a timezone (e.g. Z)")
        return (moment - _EPOCH) // timedelta(milliseconds=1)
    try:
        number = coerce(value, DataType.DOUBLE)
    except UncoercibleValue as error:
        unit = "seconds" if timestamp_format == "epochSeconds" else "milliseconds"
        raise InvalidTimestamp(f"expected epoch {unit}") from error
    millis = number * 1000 if timestamp_format == "epochSeconds" else number
    if not MIN_EPOCH_MILLIS <= millis <= MAX_EPOCH_MILLIS:
        raise InvalidTimestamp("timestamp is outside the years 1970-9999")
    return round(float(millis))


@dataclass(frozen=True)
class MetricInfo:
    """What the engine needs to know about a mapped metric."""

    metric_id: str
    name: str
    data_type: DataType


@dataclass
class MappingResult:
    records: list[dict[str, Any]]  # {"timestamp": ms, "metrics": {metricId: value}}
    report: dict[str, Any]


@dataclass
class _Report:
    records_parsed: int = 0
    records_skipped: list[dict[str, Any]] = field(default_factory=list)
    not_on_type: list[str] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[dict[str, Any]] = field(default_factory=list)


def apply_template(
    spec: Mapping[str, Any],
    payload: Any,
    metrics: Mapping[str, MetricInfo],
    *,
    metrics_on_type: set[str] | None = None,
    timestamp_check: Callable[[int], str | None] | None = None,
) -> MappingResult:
    """Map ``payload`` with ``spec``; ``metrics`` holds the org's metrics by id.

    ``metrics_on_type`` (when a thing is known) limits the mapping to its type's metrics; the
    others are reported in ``metricsSkippedNotOnType``. ``timestamp_check`` may refuse a record's
    timestamp (e.g. outside the retention window) with a reason.
    """
    found = _resolve(payload, str(spec.get("recordsPointer", "")))
    if found is _MISSING:
        raise ValidationFailed.single("payload", "recordsPointer does not point at anything in the payload")
    if isinstance(found, dict):
        found = [found]
    if not isinstance(found, list):
        raise ValidationFailed.single("payload", "recordsPointer must point at an array of records or one record")

    report = _Report(records_parsed=len(found))
    timestamp_spec = spec["timestamp"]
    mappings = [m for m in spec["mappings"] if _usable(m["metricId"], metrics, metrics_on_type, report)]
    records: list[dict[str, Any]] = []
    for index, record in enumerate(found):
        raw_timestamp = _resolve(record, timestamp_spec["pointer"])
        if raw_timestamp is _MISSING:
            report.records_skipped.append({"index": index, "reason": "timestamp missing"})
            continue
        try:
            millis = timestamp_millis(raw_timestamp, timestamp_spec["format"])
        except InvalidTimestamp as error:
            report.records_skipped.append({"index": index, "reason": f"timestamp invalid: {error}"})
            continue
        refused = timestamp_check(millis) if timestamp_check else None
        if refused:
            report.records_skipped.append({"index": index, "reason": refused})
            continue
        values: dict[str, Any] = {}
        for mapping in mappings:
            metric = metrics[mapping["metricId"]]
            raw = _resolve(record, mapping["pointer"])
            if raw is _MISSING or raw is None:
                report.missing.append({"index": index, "pointer": mapping["pointer"], "metricId": metric.metric_id})
                continue
            try:
                values[metric.metric_id] = coerce(raw, metric.data_type)
            except UncoercibleValue as error:
                report.invalid.append(
                    {"index": index, "pointer": mapping["pointer"], "metricId": metric.metric_id, "reason": str(error)}
                )
        if not values:
            report.records_skipped.append({"index": index, "reason": "no mapped values"})
            continue
        records.append({"timestamp": millis, "metrics": values})
    return MappingResult(
        records=records,
        report={
            "recordsParsed": report.records_parsed,
            "readingsWritten": len(records),
            "metricValuesWritten": sum(len(r["metrics"]) for r in records),
            "recordsSkipped": report.records_skipped,
            "metricsSkippedNotOnType": report.not_on_type,
            "fieldsSkippedMissing": report.missing,
            "fieldsInvalid": report.invalid,
        },
    )


def _usable(metric_id: str, metrics: Mapping[str, MetricInfo], on_type: set[str] | None, report: _Report) -> bool:
    if metric_id not in metrics or (on_type is not None and metric_id not in on_type):
        if metric_id not in report.not_on_type:
            report.not_on_type.append(metric_id)
        return False
    return True
