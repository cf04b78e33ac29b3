"""Ingest: frames, columns or a templated payload become one item per frame in the org's table.

Rules kept here:
- metric names are matched case-insensitively against the thing's bound version and stored by
  metric id; values are coerced to the metric's type;
- timestamps lie within [now - the org's retention, now + 10 minutes];
- anything wrong rejects the whole request, with every problem listed; nothing is written;
- the same thing and timestamp again overwrites (last write wins, also within one request);
- ``expiresAt`` is the frame's time plus the org's retention at write time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from spectra.auth.scopes import Action
from spectra.errors import Conflict, FieldError, NotFound, ValidationFailed
from spectra.mapping import apply_template
from spectra.metric_values import DataType, UncoercibleValue, coerce
from spectra.models.common import epoch_millis, to_iso, utc_now
from spectra.models.organization import retention_days
from spectra.models.telemetry import IngestedMetric, IngestResult, TemplateIngestResult
from spectra.repositories.organizations import OrganizationRepository
from spectra.repositories.things import ThingRepository
from spectra.services.metrics import MetricService
from spectra.services.templates import TemplateService, metric_infos
from spectra.services.thing_types import ThingTypeService
from spectra.services.things import paths_of
from spectra.telemetry.table import LATEST_VALUES_TIMESTAMP, TelemetryTables
from spectra.tenancy.context import OrgContext

FUTURE_TOLERANCE = timedelta(minutes=10)
RawFrame = tuple[int, Mapping[str, Any]]


class TelemetryIngest:
    def __init__(
        self,
        *,
        things: ThingRepository,
        organizations: OrganizationRepository,
        thing_types: ThingTypeService,
        metrics: MetricService,
        templates: TemplateService,
        tables: TelemetryTables,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._things = things
        self._organizations = organizations
        self._types = thing_types
        self._metrics = metrics
        self._templates = templates
        self._tables = tables
        self._clock = clock

    def ingest_frames(self, org: OrgContext, thing_id: str, frames: Sequence[RawFrame], *, field: str) -> IngestResult:
        """Validate every frame, then write them all (or nothing)."""
        _thing, metrics = self._target(org, thing_id)
        retention = self._retention_days(org)
        now = self._clock()
        by_name = {str(m["name"]).casefold(): m for m in metrics.values()}
        problems: list[FieldError] = []
        rows: dict[int, dict[str, Any]] = {}
        for index, (timestamp, values) in enumerate(frames):
            where = f"{field}[{index}]"
            problem = _window_problem(timestamp, now, retention)
            if problem:
                problems.append(FieldError(f"{where}.timestamp", problem))
            stored: dict[str, Any] = {}
            for name, raw in values.items():
                metric = by_name.get(str(name).casefold())
                if metric is None:
                    problems.append(FieldError(f"{where}.metrics.{name}", "not a metric of the thing's type version"))
                    continue
                try:
                    stored[metric["metricId"]] = coerce(raw, DataType(metric["dataType"]))
                except UncoercibleValue as error:
                    problems.append(FieldError(f"{where}.metrics.{name}", str(error)))
            rows[timestamp] = stored  # the same timestamp again: the later frame wins
        if problems:
            raise ValidationFailed(problems)
        self._write(org, thing_id, rows, retention, now)
        return _result(thing_id, rows, metrics)

    def ingest_template(
        self, org: OrgContext, thing_id: str, template_id: str, payload: Any, *, preview_only: bool
    ) -> TemplateIngestResult:
        """Map ``payload`` with the template; write unless ``preview_only``; report everything."""
        thing, metrics = self._target(org, thing_id)
        template = self._templates.active(org, template_id)
        retention = self._retention_days(org)
        now = self._clock()
        spec = template["spec"]
        mapped_ids = [m["metricId"] for m in spec["mappings"]]
        known = {**self._metrics.resolve(org, mapped_ids), **metrics}
        result = apply_template(
            spec,
            payload,
            metric_infos(known),
            metrics_on_type=set(metrics),
            timestamp_check=lambda millis: _window_problem(millis, now, retention),
        )
        rows: dict[int, dict[str, Any]] = {}
        for record in result.records:
            rows[record["timestamp"]] = record["metrics"]
        if not preview_only and rows:
            self._write(org, thing_id, rows, retention, now)
        # With previewOnly the counts say what would have been written; nothing was.
        return TemplateIngestResult.model_validate(
            {**result.report, "thingId": thing["thingId"], "templateId": template_id, "previewOnly": preview_only}
        )

    # -- helpers ----------------------------------------------------------------------------

    def _target(self, org: OrgContext, thing_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The thing (404 if absent or another org's) and the metrics of its bound version."""
        thing = self._things.get(org, thing_id)
        if thing is None:
            raise NotFound("No such thing.")
        org.require(Action.WRITE, *paths_of(thing))
        version = self._types.resolve_version(org, str(thing.get("thingTypeDefId") or ""))
        if version is None:
            raise Conflict("The thing is not bound to a thing type version; bind it before sending data.")
        return thing, self._metrics.resolve(org, version["metricIds"])

    def _retention_days(self, org: OrgContext) -> int:
        profile = self._organizations.get(org) or {}
        return retention_days(profile)

    def _write(
        self, org: OrgContext, thing_id: str, rows: Mapping[int, Mapping[str, Any]], retention: int, now: datetime
    ) -> None:
        stamp = to_iso(now)
        items = [
            {
                "thingId": thing_id,
                "timestamp": timestamp,
                "values": dict(values),
                "expiresAt": timestamp // 1000 + retention * 86_400,
                "ingestedAt": stamp,
            }
            for timestamp, values in sorted(rows.items())
        ]
        table = self._tables.of(org)
        table.put_frames(items)
        floor_ms = epoch_millis(now - timedelta(days=retention))
        table.merge_latest_values(thing_id, rows, stamp, floor_ms=floor_ms)
        if self._things.get(org, thing_id) is None:
            # Deleted while we wrote: its purge may already have run, so take back what we wrote
            # (a delete after this check is purged later, as its event follows the delete).
            table.delete_frames([*items, {"thingId": thing_id, "timestamp": LATEST_VALUES_TIMESTAMP}])
            raise NotFound("No such thing.")


def _window_problem(timestamp: int, now: datetime, retention_days: int) -> str | None:
    earliest = now - timedelta(days=retention_days)
    latest = now + FUTURE_TOLERANCE
    moment_ms = timestamp
    if moment_ms < epoch_millis(earliest):
        return f"older than the organization's {retention_days}-day retention window"
    if moment_ms > epoch_millis(latest):
        return "more than 10 minutes in the future"
    return None


def _result(
    thing_id: str, rows: Mapping[int, Mapping[str, Any]], metrics: Mapping[str, Mapping[str, Any]]
) -> IngestResult:
    counts: dict[str, int] = {}
    for values in rows.values():
        for metric_id in values:
            counts[metric_id] = counts.get(metric_id, 0) + 1
    return IngestResult(
        thingId=thing_id,
        framesIngested=len(rows),
        metrics=[
            IngestedMetric(metricId=metric_id, name=str(metrics[metric_id]["name"]), values=count)
            for metric_id, count in sorted(counts.items())
        ],
    )


def frames_from_columns(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[RawFrame]:
    """Columnar ingest as frames: one ``timestamp`` column, the others metric names; a null
    cell means "no value" for that metric in that row. Every shape problem is listed."""
    lowered = [column.casefold() for column in columns]
    problems: list[FieldError] = []
    if lowered.count("timestamp") != 1:
        problems.append(FieldError("columns", "exactly one column must be named timestamp"))
    if len(set(lowered)) != len(lowered):
        problems.append(FieldError("columns", "column names must be unique (case-insensitively)"))
    if problems:
        raise ValidationFailed(problems)
    at = lowered.index("timestamp")
    frames: list[RawFrame] = []
    for index, row in enumerate(rows):
        if len(row) != len(columns):
            problems.append(FieldError(f"rows[{index}]", f"has {len(row)} cells; the columns are {len(columns)}"))
            continue
        timestamp = row[at]
        if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
            problems.append(FieldError(f"rows[{index}].timestamp", "must be epoch milliseconds (an integer)"))
            continue
        values = {columns[i]: cell for i, cell in enumerate(row) if i != at and cell is not None}
        if not values:
            problems.append(FieldError(f"rows[{index}]", "has no metric values"))
            continue
        frames.append((timestamp, values))
    if problems:
        raise ValidationFailed(problems)
    return frames
