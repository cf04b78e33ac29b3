"""``/definitions`` and ``/templates``: metric definitions, thing types and versions, templates.

All three are soft-deleted: DELETE hides a record (404 on reads, listed with ``status=deleted``)
and ``…/restore`` brings it back. Scopes: ``DEFINITION/{Metric|ThingType|ThingTypeVersion|Template}/{id}``,
read for GET and ``/test``, write for the rest.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.auth.scopes import Action
from spectra.deployment import (
    metric_service,
    template_service,
    thing_type_service,
)
from spectra.http import (
    ContinuationToken,
    CurrentOrg,
    Limit,
    PageLimit,
    PageRequest,
    access,
    create_resolver,
    created,
    documented_created,
    no_content,
)
from spectra.metric_values import DataType
from spectra.models.common import LifecycleStatus
from spectra.models.definitions import (
    CreateMetricRequest,
    CreateTemplateRequest,
    CreateThingTypeRequest,
    CreateThingTypeVersionRequest,
    Metric,
    MetricPage,
    MetricSchema,
    ReplaceMetricRequest,
    ReplaceTemplateRequest,
    Template,
    TemplatePage,
    TemplateTestRequest,
    TemplateTestResult,
    ThingType,
    ThingTypePage,
    ThingTypeVersion,
    UpdateThingTypeVersionRequest,
)
from spectra.observability import logger, metrics, tracer
from spectra.services.metrics import metric_schema

app = create_resolver()
metric_definitions = metric_service()
thing_types = thing_type_service()
templates = template_service()

MetricId = Annotated[str, Path(description="A metric definition id (mdef_…)")]
ThingTypeId = Annotated[str, Path(description="A thing type id (tdefi_…)")]
ThingTypeDefId = Annotated[str, Path(description="A thing type version id (tdef_…)")]
TemplateId = Annotated[str, Path(description="A template id (GUID)")]
Status = Annotated[LifecycleStatus, Query(description="active (default), deleted or all")]
METRIC = "DEFINITION/Metric/{metricId}"
ANY_METRIC = "DEFINITION/Metric/*"
THING_TYPE = "DEFINITION/ThingType/{thingTypeId}"
ANY_THING_TYPE = "DEFINITION/ThingType/*"
TEMPLATE = "DEFINITION/Template/{templateId}"
ANY_TEMPLATE = "DEFINITION/Template/*"


# -- metric definitions ------------------------------------------------------------------------


@app.post("/v2/definitions/metrics", tags=["Metric definitions"], responses=documented_created(Metric))
@access(Action.WRITE, ANY_METRIC, audit="metric.create")
def create_metric(request: CreateMetricRequest, org: CurrentOrg) -> Response[Metric]:
    metric = metric_definitions.create(org, request)
    return created(metric, f"/v2/definitions/metrics/{metric.metricId}")


@app.get("/v2/definitions/metrics", tags=["Metric definitions"])
@access(Action.READ, ANY_METRIC)
def list_metrics(
    org: CurrentOrg,
    status: Status = LifecycleStatus.ACTIVE,
    name: Annotated[str | None, Query(min_length=1, max_length=100, description="Name contains")] = None,
    dataType: Annotated[DataType | None, Query()] = None,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> MetricPage:
    page = PageRequest.of(limit, pageLimit, continuationToken)
    return metric_definitions.list_metrics(org, status=status, name=name, data_type=dataType, page=page)


@app.get("/v2/definitions/metrics/schema", tags=["Metric definitions"], summary="Valid data type x aggregation pairs")
@access(Action.READ, ANY_METRIC)
def get_metric_schema() -> MetricSchema:
    return metric_schema()


@app.get("/v2/definitions/metrics/<metricId>", tags=["Metric definitions"])
@access(Action.READ, METRIC)
def get_metric(metricId: MetricId, org: CurrentOrg) -> Metric:
    return metric_definitions.get(org, metricId)


@app.put("/v2/definitions/metrics/<metricId>", tags=["Metric definitions"], summary="Replace the mutable fields")
@access(Action.WRITE, METRIC, audit="metric.update")
def replace_metric(metricId: MetricId, request: ReplaceMetricRequest, org: CurrentOrg) -> Metric:
    return metric_definitions.replace(org, metricId, request)


@app.delete("/v2/definitions/metrics/<metricId>", tags=["Metric definitions"], summary="Soft-delete")
@access(Action.WRITE, METRIC, audit="metric.delete")
def delete_metric(metricId: MetricId, org: CurrentOrg) -> Response[None]:
    metric_definitions.delete(org, metricId)
    return no_content()


@app.post("/v2/definitions/metrics/<metricId>/restore", tags=["Metric definitions"])
@access(Action.WRITE, METRIC, audit="metric.restore")
def restore_metric(metricId: MetricId, org: CurrentOrg) -> Metric:
    return metric_definitions.restore(org, metricId)


# -- thing types -------------------------------------------------------------------------------


@app.post("/v2/definitions/thing-types", tags=["Thing types"], responses=documented_created(ThingType))
@access(Action.WRITE, ANY_THING_TYPE, audit="thingType.create")
def create_thing_type(request: CreateThingTypeRequest, org: CurrentOrg) -> Response[ThingType]:
    thing_type = thing_types.create(org, request)
    return created(thing_type, f"/v2/definitions/thing-types/{thing_type.thingTypeId}")


@app.get("/v2/definitions/thing-types", tags=["Thing types"])
@access(Action.READ, ANY_THING_TYPE)
def list_thing_types(
    org: CurrentOrg,
    status: Status = LifecycleStatus.ACTIVE,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> ThingTypePage:
    return thing_types.list_types(org, status=status, page=PageRequest.of(limit, pageLimit, continuationToken))


@app.get("/v2/definitions/thing-types/<thingTypeId>", tags=["Thing types"])
@access(Action.READ, THING_TYPE)
def get_thing_type(thingTypeId: ThingTypeId, org: CurrentOrg) -> ThingType:
    return thing_types.get(org, thingTypeId)


@app.delete("/v2/definitions/thing-types/<thingTypeId>", tags=["Thing types"], summary="Soft-delete")
@access(Action.WRITE, THING_TYPE, audit="thingType.delete")
def delete_thing_type(thingTypeId: ThingTypeId, org: CurrentOrg) -> Response[None]:
    thing_types.delete(org, thingTypeId)
    return no_content()


@app.post("/v2/definitions/thing-types/<thingTypeId>/restore", tags=["Thing types"])
@access(Action.WRITE, THING_TYPE, audit="thingType.restore")
def restore_thing_type(thingTypeId: ThingTypeId, org: CurrentOrg) -> ThingType:
    return thing_types.restore(org, thingTypeId)


@app.post(
    "/v2/definitions/thing-types/<thingTypeId>/versions",
    tags=["Thing types"],
    summary="Create a new version (a full snapshot)",
    responses=documented_created(ThingTypeVersion),
)
@access(Action.WRITE, THING_TYPE, audit="thingTypeVersion.create")
def create_thing_type_version(
    thingTypeId: ThingTypeId, request: CreateThingTypeVersionRequest, org: CurrentOrg
) -> Response[ThingTypeVersion]:
    version = thing_types.create_version(org, thingTypeId, request)
    return created(version, f"/v2/definitions/thing-types/versions/{version.thingTypeDefId}")


@app.get("/v2/definitions/thing-types/versions/<thingTypeDefId>", tags=["Thing types"])
@access(Action.READ, "DEFINITION/ThingTypeVersion/{thingTypeDefId}", ANY_THING_TYPE)
def get_thing_type_version(
    thingTypeDefId: ThingTypeDefId,
    org: CurrentOrg,
    includeMetricDefinitions: Annotated[bool, Query(description="Embed the version's metrics")] = False,
) -> ThingTypeVersion:
    return thing_types.get_version(org, thingTypeDefId, include_metrics=includeMetricDefinitions)


@app.put("/v2/definitions/thing-types/versions/<thingTypeDefId>", tags=["Thing types"], summary="Metadata only")
@access(Action.WRITE, "DEFINITION/ThingTypeVersion/{thingTypeDefId}", ANY_THING_TYPE, audit="thingTypeVersion.update")
def update_thing_type_version(
    thingTypeDefId: ThingTypeDefId, request: UpdateThingTypeVersionRequest, org: CurrentOrg
) -> ThingTypeVersion:
    return thing_types.update_version(org, thingTypeDefId, request)


# -- templates ---------------------------------------------------------------------------------


@app.post("/v2/templates", tags=["Templates"], responses=documented_created(Template))
@access(Action.WRITE, ANY_TEMPLATE, audit="template.create")
def create_template(request: CreateTemplateRequest, org: CurrentOrg) -> Response[Template]:
    template = templates.create(org, request)
    return created(template, f"/v2/templates/{template.templateId}")


@app.get("/v2/templates", tags=["Templates"])
@access(Action.READ, ANY_TEMPLATE)
def list_templates(
    org: CurrentOrg,
    status: Status = LifecycleStatus.ACTIVE,
    target: Annotated[Literal["ThingData"] | None, Query()] = None,
    format: Annotated[Literal["JsonPointer"] | None, Query()] = None,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> TemplatePage:
    page = PageRequest.of(limit, pageLimit, continuationToken)
    return templates.list_templates(org, status=status, target=target, template_format=format, page=page)


@app.get("/v2/templates/<templateId>", tags=["Templates"])
@access(Action.READ, TEMPLATE)
def get_template(templateId: TemplateId, org: CurrentOrg) -> Template:
    return templates.get(org, templateId)


@app.put("/v2/templates/<templateId>", tags=["Templates"], summary="Replace (bumps revision)")
@access(Action.WRITE, TEMPLATE, audit="template.update")
def replace_template(templateId: TemplateId, request: ReplaceTemplateRequest, org: CurrentOrg) -> Template:
    return templates.replace(org, templateId, request)


@app.delete("/v2/templates/<templateId>", tags=["Templates"], summary="Soft-delete")
@access(Action.WRITE, TEMPLATE, audit="template.delete")
def delete_template(templateId: TemplateId, org: CurrentOrg) -> Response[None]:
    templates.delete(org, templateId)
    return no_content()


@app.post("/v2/templates/<templateId>/restore", tags=["Templates"])
@access(Action.WRITE, TEMPLATE, audit="template.restore")
def restore_template(templateId: TemplateId, org: CurrentOrg) -> Template:
    return templates.restore(org, templateId)


@app.post("/v2/templates/<templateId>/test", tags=["Templates"], summary="Dry run on a sample payload")
@access(Action.READ, TEMPLATE)
def test_template(templateId: TemplateId, request: TemplateTestRequest, org: CurrentOrg) -> TemplateTestResult:
    return templates.test(org, templateId, request.payload)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
