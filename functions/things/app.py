"""``/things``: devices in sites and fleets, typed by thing-type versions.

Scopes: a thing is ``PLACE/{Site|Fleet}/{placeId}/THING/{thingTypeName}/{thingId}`` and
``THING/{thingTypeName}/{thingId}``; lists show only the things the key may read.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.auth.scopes import Action
from spectra.deployment import (
    page_tokens,
    place_repository,
    thing_events,
    thing_repository,
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
from spectra.models.things import CreateThingRequest, Thing, ThingPage, UpdateThingRequest
from spectra.observability import logger, metrics, tracer
from spectra.services.things import ThingService

app = create_resolver()
things = ThingService(
    thing_repository(),
    place_repository(),
    thing_type_service(),
    thing_events(),
    page_tokens=page_tokens(),
)

ThingId = Annotated[str, Path(description="A thing id (GUID)")]
SiteId = Annotated[str, Path(description="A site id (GUID)")]
FleetId = Annotated[str, Path(description="A fleet id (GUID)")]
ANY_THING = ("PLACE/*/*/THING/*/*", "THING/*/*")
THING = ("PLACE/*/*/THING/*/{thingId}", "THING/*/{thingId}")


@app.post("/v2/sites/<siteId>/things", tags=["Things"], responses=documented_created(Thing))
@access(Action.WRITE, "PLACE/Site/{siteId}/THING/*/*", "THING/*/*", audit="thing.create")
def create_thing_in_site(siteId: SiteId, request: CreateThingRequest, org: CurrentOrg) -> Response[Thing]:
    thing = things.create(org, "Site", siteId, request)
    return created(thing, f"/v2/things/{thing.thingId}")


@app.post("/v2/fleets/<fleetId>/things", tags=["Things"], responses=documented_created(Thing))
@access(Action.WRITE, "PLACE/Fleet/{fleetId}/THING/*/*", "THING/*/*", audit="thing.create")
def create_thing_in_fleet(fleetId: FleetId, request: CreateThingRequest, org: CurrentOrg) -> Response[Thing]:
    thing = things.create(org, "Fleet", fleetId, request)
    return created(thing, f"/v2/things/{thing.thingId}")


@app.get("/v2/things", tags=["Things"])
@access(Action.READ, *ANY_THING)
def list_things(
    org: CurrentOrg,
    placeId: Annotated[str | None, Query(description="Only things in this site or fleet")] = None,
    thingTypeId: Annotated[str | None, Query(pattern=r"^tdefi_[0-9a-f]{32}$", description="Only of this type")] = None,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> ThingPage:
    page = PageRequest.of(limit, pageLimit, continuationToken)
    return things.list_things(org, place_id=placeId, thing_type_id=thingTypeId, page=page)


@app.get("/v2/sites/<siteId>/things", tags=["Things"])
@access(Action.READ, "PLACE/Site/{siteId}/THING/*/*", "THING/*/*")
def list_site_things(
    siteId: SiteId,
    org: CurrentOrg,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> ThingPage:
    return things.list_in_place(org, "Site", siteId, PageRequest.of(limit, pageLimit, continuationToken))


@app.get("/v2/fleets/<fleetId>/things", tags=["Things"])
@access(Action.READ, "PLACE/Fleet/{fleetId}/THING/*/*", "THING/*/*")
def list_fleet_things(
    fleetId: FleetId,
    org: CurrentOrg,
    limit: Limit = None,
    pageLimit: PageLimit = None,
    continuationToken: ContinuationToken = None,
) -> ThingPage:
    return things.list_in_place(org, "Fleet", fleetId, PageRequest.of(limit, pageLimit, continuationToken))


@app.get("/v2/things/<thingId>", tags=["Things"])
@access(Action.READ, *THING)
def get_thing(thingId: ThingId, org: CurrentOrg) -> Thing:
    return Thing.model_validate(things.get(org, thingId))


@app.patch(
    "/v2/things/<thingId>", tags=["Things"], summary="Merge changes; transfer (placeId) or rebind (thingTypeDefId)"
)
@access(Action.WRITE, *THING, audit="thing.update")
def update_thing(thingId: ThingId, request: UpdateThingRequest, org: CurrentOrg) -> Thing:
    return things.update(org, thingId, request)


@app.delete("/v2/things/<thingId>", tags=["Things"], summary="Delete (telemetry purged in the background)")
@access(Action.WRITE, *THING, audit="thing.delete")
def delete_thing(thingId: ThingId, org: CurrentOrg) -> Response[None]:
    things.delete(org, thingId)
    return no_content()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
