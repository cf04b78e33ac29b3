"""``/things/{thingId}/data``: telemetry frames into the org's own table (tier standard).

Three bodies: frames, columns, or a payload mapped by a template (``previewOnly`` writes
nothing). The whole request is refused, with every problem listed, when anything is wrong.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.auth.scopes import Action
from spectra.deployment import (
    metric_service,
    organization_repository,
    telemetry_tables,
    template_service,
    thing_repository,
    thing_type_service,
)
from spectra.http import CurrentOrg, access, create_resolver
from spectra.models.telemetry import (
    ColumnarRequest,
    FramesRequest,
    IngestResult,
    TemplateIngestResult,
)
from spectra.observability import logger, metrics, tracer
from spectra.telemetry.ingest import TelemetryIngest, frames_from_columns

app = create_resolver()
ingest = TelemetryIngest(
    things=thing_repository(),
    organizations=organization_repository(),
    thing_types=thing_type_service(),
    metrics=metric_service(),
    templates=template_service(),
    tables=telemetry_tables(),
)

ThingId = Annotated[str, Path(description="A thing id (GUID)")]
THING = ("PLACE/*/*/THING/*/{thingId}", "THING/*/{thingId}")


@app.post("/v2/things/<thingId>/data", tags=["Telemetry"], summary="Ingest frames")
@access(Action.WRITE, *THING)
def ingest_frames(thingId: ThingId, request: FramesRequest, org: CurrentOrg) -> IngestResult:
    frames = [(frame.timestamp, frame.metrics) for frame in request.frames]
    return ingest.ingest_frames(org, thingId, frames, field="frames")


@app.post("/v2/thing/<thingId>/data", tags=["Telemetry"], summary="Ingest frames (alias of /things/{thingId}/data)")
@access(Action.WRITE, *THING)
def ingest_frames_alias(thingId: ThingId, request: FramesRequest, org: CurrentOrg) -> IngestResult:
    return ingest_frames(thingId, request, org)


@app.post("/v2/things/<thingId>/data/columnar", tags=["Telemetry"], summary="Ingest columns and rows")
@access(Action.WRITE, *THING)
def ingest_columns(thingId: ThingId, request: ColumnarRequest, org: CurrentOrg) -> IngestResult:
    return ingest.ingest_frames(org, thingId, frames_from_columns(request.columns, request.rows), field="rows")


@app.post(
    "/v2/things/<thingId>/data/template/<templateId>",
    tags=["Telemetry"],
    summary="Ingest a payload mapped by a template (previewOnly=true writes nothing)",
)
@access(Action.WRITE, *THING)
def ingest_with_template(
    thingId: ThingId,
    templateId: Annotated[str, Path(description="A template id (GUID)")],
    payload: Annotated[dict[str, Any] | list[Any], Body(description="The device's own JSON, mapped by the template")],
    org: CurrentOrg,
    previewOnly: Annotated[bool, Query(description="Report what would be written, write nothing")] = False,
) -> TemplateIngestResult:
    return ingest.ingest_template(org, thingId, templateId, payload, preview_only=previewOnly)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
