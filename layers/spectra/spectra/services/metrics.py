"""Metric definitions: unique names, immutable identity, valid roll-ups, append-only enum codes.

Rules kept here:
- ``name`` is unique in the org case-insensitively (a guard item written in the same
  transaction as the metric, so two concurrent creates cannot both win);
- ``name``, ``dataType`` and ``defaultAggregation`` never change (a PUT that tries is a 400
  naming the field);
- the default aggregation must suit the data type (``GET /definitions/metrics/schema``);
- ``enumValues`` only for Int; once published, a code stays (labels may change);
- delete is soft and releases the name; restore takes it back or fails with 409.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from spectra import lifecycle
from spectra.auth.scopes import Action
from spectra.errors import FieldError, NotFound, ValidationFailed
from spectra.identifiers import new_prefixed_id
from spectra.metric_values import ENUM_AGGREGATIONS, VALID_AGGREGATIONS, Aggregation, DataType, aggregation_allowed
from spectra.models.common import LifecycleStatus, utc_now
from spectra.models.definitions import (
    AggregationRule,
    CreateMetricRequest,
    EnumValue,
    Metric,
    MetricPage,
    MetricSchema,
    ReplaceMetricRequest,
)
from spectra.pagination import PageRequest, PageTokens
from spectra.repositories.definitions import MetricRepository
from spectra.services.listing import list_page
from spectra.tenancy.context import OrgContext

IMMUTABLE_FIELDS = ("name", "dataType", "defaultAggregation")


def metric_path(metric_id: str) -> str:
    """The resource path scopes are checked against."""
    return f"DEFINITION/Metric/{metric_id}"


def metric_schema() -> MetricSchema:
    """The valid data type x aggregation pairs (and the narrower set for enum Ints)."""
    return MetricSchema(
        dataTypes=[
            AggregationRule(
                dataType=data_type,
                aggregations=list(aggregations),
                enumAggregations=list(ENUM_AGGREGATIONS) if data_type is DataType.INT else None,
            )
            for data_type, aggregations in VALID_AGGREGATIONS.items()
        ]
    )


def _type_problems(
    data_type: DataType, aggregation: Aggregation, enum_values: Sequence[EnumValue] | None
) -> list[FieldError]:
    problems = []
    if enum_values is not None and data_type is not DataType.INT:
        problems.append(FieldError("enumValues", "only Int metrics can have enumValues"))
    if not aggregation_allowed(data_type, aggregation, has_enum=bool(enum_values)):
        allowed = ENUM_AGGREGATIONS if enum_values else VALID_AGGREGATIONS[data_type]
        kind = f"{data_type.value} with enumValues" if enum_values else data_type.value
        problems.append(
            FieldError(
                "defaultAggregation",
                f"{aggregation.value} is not valid for {kind}; use one of {', '.join(a.value for a in allowed)}",
            )
        )
    return problems


def to_metric(record: Mapping[str, Any]) -> Metric:
    return Metric.model_validate(record)


class MetricService:
    def __init__(
        self,
        metrics: MetricRepository,
        *,
        page_tokens: PageTokens,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._metrics = metrics
        self._page_tokens = page_tokens
        self._clock = clock

    def create(self, org: OrgContext, request: CreateMetricRequest) -> Metric:
        problems = _type_problems(request.dataType, request.defaultAggregation, request.enumValues)
        if problems:
            raise ValidationFailed(problems)
        metric_id = new_prefixed_id("mdef")
        org.require(Action.WRITE, metric_path(metric_id))
        record = {
            "entity": "MetricDefinition",
            "metricId": metric_id,
            **request.model_dump(mode="json"),
            **lifecycle.new_record_fields(org, self._clock()),
        }
        self._metrics.create(org, record)
        return to_metric(record)

    def get(self, org: OrgContext, metric_id: str) -> Metric:
        return to_metric(self._active(org, metric_id))

    def list_metrics(
        self,
        org: OrgContext,
        *,
        status: LifecycleStatus,
        name: str | None,
        data_type: DataType | None,
        page: PageRequest,
    ) -> MetricPage:
        needle = name.casefold() if name else None

        def wanted(record: dict[str, Any]) -> bool:
            return (
                lifecycle.visible(record, status)
                and (data_type is None or record.get("dataType") == data_type.value)
                and (needle is None or needle in str(record.get("name", "")).casefold())
                and org.can(Action.READ, metric_path(record["metricId"]))
            )

        listed = list_page(
            org,
            self._page_tokens,
            route="metrics",
            filters={"status": status.value, "name": needle, "dataType": data_type},
            page=page,
            query=self._metrics.page,
            keep=wanted,
        )
        return listed.to(MetricPage, to_metric)

    def replace(self, org: OrgContext, metric_id: str, request: ReplaceMetricRequest) -> Metric:
        current = self._active(org, metric_id)
        problems = [
            FieldError(name, f"{name} cannot change (it is {current[name]!r})")
            for name in IMMUTABLE_FIELDS
            if getattr(request, name) is not None and str(getattr(request, name)) != str(current[name])
        ]
        data_type = DataType(current["dataType"])
        enum_values = request.enumValues
        problems += [
            p
            for p in _type_problems(data_type, Aggregation(current["defaultAggregation"]), enum_values)
            if p.field == "enumValues" or enum_values
        ]
        kept_codes = {value.code for value in enum_values or []}
        removed = [v["code"] for v in current.get("enumValues") or [] if v["code"] not in kept_codes]
        if removed:
            problems.append(FieldError("enumValues", f"codes are append-only; missing {', '.join(map(str, removed))}"))
        if problems:
            raise ValidationFailed(problems)
        now = self._clock()
        mutable = request.model_dump(mode="json", include={"displayName", "description", "unitLabel", "tags"})
        updated = self._metrics.update(
            org,
            metric_id,
            set_fields={
                **mutable,
                "enumValues": [v.model_dump() for v in enum_values] if enum_values is not None else None,
                **lifecycle.change_fields(org, now, current),
            },
            condition=lifecycle.ACTIVE_AND_CURRENT,
            condition_values=lifecycle.guard_values(current, deleted=False),
            history=lifecycle.history_event("updated", org, now),
        )
        return to_metric(updated)

    def delete(self, org: OrgContext, metric_id: str) -> None:
        current = self._active(org, metric_id)
        update = self._metrics.soft_delete_operation(org, metric_id, current, self._clock())
        self._metrics.delete_with_guard(org, current, update)

    def restore(self, org: OrgContext, metric_id: str) -> Metric:
        current = self._metrics.get(org, metric_id)
        if current is None:
            raise NotFound("No such metric definition.")
        if not current.get("isDeleted"):
            return to_metric(current)
        update = self._metrics.restore_operation(org, metric_id, current, self._clock())
        self._metrics.restore_with_guard(org, current, update)
        restored = self._metrics.get(org, metric_id)
        if restored is None:
            raise NotFound("No such metric definition.")
        return to_metric(restored)

    def usable(
        self, org: OrgContext, metric_ids: Sequence[str], field: str, problems: list[FieldError] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The metrics, if every one exists in the org and is active; else 400 listing each problem
        (together with ``problems`` already found by the caller)."""
        found = self._metrics.many(org, metric_ids)
        problems = list(problems or [])
        for index, metric_id in enumerate(metric_ids):
            record = found.get(metric_id)
            if record is None:
                problems.append(FieldError(f"{field}[{index}]", f"no metric {metric_id} in this organization"))
            elif record.get("isDeleted"):
                problems.append(FieldError(f"{field}[{index}]", f"metric {metric_id} is deleted"))
        if problems:
            raise ValidationFailed(problems)
        return found

    def resolve(self, org: OrgContext, metric_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The metrics as stored, deleted ones included (for records already bound to them)."""
        return self._metrics.many(org, metric_ids)

    def _active(self, org: OrgContext, metric_id: str) -> dict[str, Any]:
        record = self._metrics.get(org, metric_id)
        if record is None or record.get("isDeleted"):
            raise NotFound("No such metric definition.")
        org.require(Action.READ, metric_path(metric_id))
        return record
