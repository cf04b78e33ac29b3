"""Ingestion templates (ThingData x JsonPointer): validated specs, revisions, dry runs.

Rules kept here: the spec's pointers are RFC 6901 and its timestamp format is known (checked
by the models), every mapped metric exists in the org and is active; ``target`` and ``format``
never change; each PUT bumps ``revision``; ``test`` maps a sample payload with the layer's
mapping engine and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from spectra import lifecycle
from spectra.auth.scopes import Action
from spectra.errors import FieldError, NotFound, ValidationFailed
from spectra.identifiers import new_guid
from spectra.mapping import MetricInfo, apply_template
from spectra.metric_values import DataType
from spectra.models.common import LifecycleStatus, utc_now
from spectra.models.definitions import (
    CreateTemplateRequest,
    ReplaceTemplateRequest,
    Template,
    TemplatePage,
    TemplateSpec,
    TemplateTestResult,
)
from spectra.pagination import PageRequest, PageTokens
from spectra.repositories.definitions import TemplateRepository
from spectra.services.listing import list_page
from spectra.services.metrics import MetricService
from spectra.tenancy.context import OrgContext


def template_path(template_id: str) -> str:
    return f"DEFINITION/Template/{template_id}"


def metric_infos(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, MetricInfo]:
    """What the mapping engine needs of each active metric."""
    return {
        metric_id: MetricInfo(metric_id=metric_id, name=str(m["name"]), data_type=DataType(m["dataType"]))
        for metric_id, m in metrics.items()
        if not m.get("isDeleted")
    }


class TemplateService:
    def __init__(
        self,
        templates: TemplateRepository,
        metrics: MetricService,
        *,
        page_tokens: PageTokens,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._templates = templates
        self._metrics = metrics
        self._page_tokens = page_tokens
        self._clock = clock

    def create(self, org: OrgContext, request: CreateTemplateRequest) -> Template:
        self._check_spec(org, request.spec)
        template_id = new_guid()
        org.require(Action.WRITE, template_path(template_id))
        record = {
            "entity": "Template",
            "templateId": template_id,
            **request.model_dump(mode="json"),
            "revision": 1,
            **lifecycle.new_record_fields(org, self._clock()),
        }
        self._templates.create(org, record)
        return Template.model_validate(record)

    def get(self, org: OrgContext, template_id: str) -> Template:
        return Template.model_validate(self.active(org, template_id))

    def list_templates(
        self,
        org: OrgContext,
        *,
        status: LifecycleStatus,
        target: str | None,
        template_format: str | None,
        page: PageRequest,
    ) -> TemplatePage:
        def wanted(record: dict[str, Any]) -> bool:
            return (
                lifecycle.visible(record, status)
                and (target is None or record.get("target") == target)
                and (template_format is None or record.get("format") == template_format)
                and org.can(Action.READ, template_path(record["templateId"]))
            )

        listed = list_page(
            org,
            self._page_tokens,
            route="templates",
            filters={"status": status.value, "target": target, "format": template_format},
            page=page,
            query=self._templates.page,
            keep=wanted,
        )
        return listed.to(TemplatePage, Template.model_validate)

    def replace(self, org: OrgContext, template_id: str, request: ReplaceTemplateRequest) -> Template:
        current = self.active(org, template_id)
        problems = [
            FieldError(name, f"{name} cannot change (it is {current[name]!r})")
            for name in ("target", "format")
            if getattr(request, name) is not None and getattr(request, name) != current[name]
        ]
        if problems:
            raise ValidationFailed(problems)
        self._check_spec(org, request.spec)
        now = self._clock()
        updated = self._templates.update(
            org,
            template_id,
            set_fields={
                **request.model_dump(mode="json", include={"name", "spec", "description", "tags"}),
                "revision": int(current["revision"]) + 1,
                **lifecycle.change_fields(org, now, current),
            },
            condition=lifecycle.ACTIVE_AND_CURRENT,
            condition_values=lifecycle.guard_values(current, deleted=False),
            history=lifecycle.history_event(f"revision {int(current['revision']) + 1}", org, now),
        )
        return Template.model_validate(updated)

    def delete(self, org: OrgContext, template_id: str) -> None:
        current = self.active(org, template_id)
        self._templates.soft_delete(org, template_id, current, self._clock())

    def restore(self, org: OrgContext, template_id: str) -> Template:
        current = self._templates.get(org, template_id)
        if current is None:
            raise NotFound("No such template.")
        if not current.get("isDeleted"):
            return Template.model_validate(current)
        return Template.model_validate(self._templates.restore(org, template_id, current, self._clock()))

    def test(self, org: OrgContext, template_id: str, payload: Any) -> TemplateTestResult:
        """Map ``payload`` as ingest would, without a thing and without writing anything."""
        template = self.active(org, template_id)
        spec = template["spec"]
        infos = metric_infos(self._metrics.resolve(org, [m["metricId"] for m in spec["mappings"]]))
        result = apply_template(spec, payload, infos)
        names = {metric_id: info.name for metric_id, info in infos.items()}
        records = [
            {"timestamp": r["timestamp"], "metrics": {names[m]: v for m, v in r["metrics"].items()}}
            for r in result.records
        ]
        return TemplateTestResult.model_validate({"records": records, "report": result.report})

    def active(self, org: OrgContext, template_id: str) -> dict[str, Any]:
        """An active template the caller may read (404 when absent, deleted or another org's)."""
        record = self._templates.get(org, template_id)
        if record is None or record.get("isDeleted"):
            raise NotFound("No such template.")
        org.require(Action.READ, template_path(template_id))
        return record

    def _check_spec(self, org: OrgContext, spec: TemplateSpec) -> None:
        metric_ids = [mapping.metricId for mapping in spec.mappings]
        try:
            self._metrics.usable(org, metric_ids, "spec.mappings")
        except ValidationFailed as failed:
            raise ValidationFailed([FieldError(f"{e.field}.metricId", e.message) for e in failed.errors]) from failed
