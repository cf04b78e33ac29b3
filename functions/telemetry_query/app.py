"""Telemetry reads (tier data-read): events, recent events, summaries and place timeseries.

Everything is read from the org's own table with the org's own role; nothing older than the
org's current retention window is ever returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.auth.scopes import Action
from spectra.deployment import (
    metric_service,
    organization_repository,
    page_tokens,
    place_repository,
    telemetry_tables,
    thing_repository,
    thing_type_service,
)
from spectra.http import ContinuationToken, CurrentOrg, Limit, PageLimit, PageRequest, access, create_resolver
from spectra.models.telemetry import PlaceTelemetry, ThingSummary, ThingTelemetry
from spectra.observability import logger, metrics, tracer
from spectra.ratelimits.plans import Tier
from spectra.telemetry.bins import BinUnit
from spectra.telemetry.query import TelemetryQueries, Window

app = create_resolver()
queries = TelemetryQueries(
    things=thing_repository(),
    places=place_repository(),
    organizations=organization_repository(),
    thing_types=thing_type_service(),
    metrics=metric_service(),
    tables=telemetry_tables(),
    page_tokens=page_tokens(),
)

ThingId = Annotated[str, Path(description="A thing id (GUID)")]
SiteId = Annotated[str, Path(description="A site id (GUID)")]
FleetId = Annotated[str, Path(description="A fleet id (GUID)")]
StartTime = Annotated[datetime, Query(description="Inclusive start, ISO-8601 (UTC when no offset is given)")]
EndTime = Annotated[datetime, Query(description="Exclusive end, ISO-8601 (UTC when no offset is given)")]
BinUnitQuery = Annotated[BinUnit | None, Query(description="Bin unit: m, h or d (with binValue); raw when absent")]
BinValue = Annotated[int | None, Query(ge=1, le=1440, description="Bin size in binUnit (m ≤ 1440, h ≤ 744, d ≤ 366)")]
SelectedFields = Annotated[
    str | None,
    Query(min_length=1, max_length=4000, description="Comma-separated metric ids or names (case-insensitive)"),
]
THING = ("PLACE/*/*/THING/*/{thingId}", "THING/*/{thingId}")
DATA_READ = Tier.DATA_READ
RECENT_EVENTS_PAGE = 10


@app.get("/v2/things/<thingId>/events", tags=["Telemetry"], summary="Raw (≤ 24 h) or binned (≤ 366 days) events")
@access(Action.READ, *THING, tier=DATA_READ)
def thing_events(
    thingId: ThingId,
    org: CurrentOrg,
    startTime: StartTime,
    endTime: EndTime,
    binUnit: BinUnitQuery = None,
    binValue: BinValue = None,
    selectedFields: SelectedFields = None,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> ThingTelemetry:
    window = Window(startTime, endTime, binUnit, binValue, selectedFields)
    return queries.events(org, thingId, window, PageRequest.of(limit, pageLimit, continuationToken))


@app.get("/v2/things/<thingId>/recent-events", tags=["Telemetry"], summary="The newest frames, newest first")
@access(Action.READ, *THING, tier=DATA_READ)
def recent_events(
    thingId: ThingId,
    org: CurrentOrg,
    cutoffTime: Annotated[datetime | None, Query(description="Frames at or before this time (default now)")] = None,
    lookbackInDays: Annotated[int, Query(ge=1, le=30, description="How far back from cutoffTime, 1-30 days")] = 1,
    limit: Annotated[int | None, Query(ge=1, le=100, description="Frames per page, 1-100 (default 10)")] = None,
    pageLimit: PageLimit = None,
    selectedFields: SelectedFields = None,
    continuationToken: ContinuationToken = None,
) -> ThingTelemetry:
    return queries.recent_events(
        org,
        thingId,
        cutoff=cutoffTime,
        lookback_days=lookbackInDays,
        selected_fields=selectedFields,
        page=PageRequest.of(limit, pageLimit, continuationToken, default=RECENT_EVENTS_PAGE),
    )


@app.get("/v2/things/<thingId>/summary", tags=["Telemetry"], summary="The newest value and time of each metric")
@access(Action.READ, *THING, tier=DATA_READ)
def thing_summary(thingId: ThingId, org: CurrentOrg, selectedFields: SelectedFields = None) -> ThingSummary:
    return queries.summary(org, thingId, selectedFields)


@app.get("/v2/sites/<siteId>/timeseries", tags=["Telemetry"], summary="Bins over every thing in the site")
@access(Action.READ, "PLACE/Site/{siteId}/THING/*/*", "THING/*/*", tier=DATA_READ)
def site_timeseries(
    siteId: SiteId,
    org: CurrentOrg,
    startTime: StartTime,
    endTime: EndTime,
    binUnit: BinUnitQuery = None,
    binValue: BinValue = None,
    selectedFields: SelectedFields = None,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> PlaceTelemetry:
    window = Window(startTime, endTime, binUnit, binValue, selectedFields)
    return queries.place_timeseries(org, "Site", siteId, window, PageRequest.of(limit, pageLimit, continuationToken))


@app.get("/v2/fleets/<fleetId>/timeseries", tags=["Telemetry"], summary="Bins over every thing in the fleet")
@access(Action.READ, "PLACE/Fleet/{fleetId}/THING/*/*", "THING/*/*", tier=DATA_READ)
def fleet_timeseries(
    fleetId: FleetId,
    org: CurrentOrg,
    startTime: StartTime,
    endTime: EndTime,
    binUnit: BinUnitQuery = None,
    binValue: BinValue = None,
    selectedFields: SelectedFields = None,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> PlaceTelemetry:
    window = Window(startTime, endTime, binUnit, binValue, selectedFields)
    return queries.place_timeseries(org, "Fleet", fleetId, window, PageRequest.of(limit, pageLimit, continuationToken))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
