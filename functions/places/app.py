"""``/sites``, ``/sites/{siteId}/levels`` and ``/fleets``: where things are.

Scopes: ``PLACE/Site/{siteId}`` (a site and its levels) and ``PLACE/Fleet/{fleetId}``. Places are
hard-deleted, and only once nothing is left in them (409 says what blocks it).
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.auth.scopes import Action
from spectra.deployment import (
    metric_service,
    page_tokens,
    place_repository,
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
from spectra.models.places import (
    CreateFleetRequest,
    CreateLevelRequest,
    CreateSiteRequest,
    Fleet,
    FleetPage,
    Level,
    LevelTree,
    Site,
    SitePage,
    UpdateFleetRequest,
    UpdateLevelRequest,
    UpdateSiteRequest,
)
from spectra.observability import logger, metrics, tracer
from spectra.services.places import PlaceService

app = create_resolver()
places = PlaceService(place_repository(), metric_service(), page_tokens=page_tokens())

SiteId = Annotated[str, Path(description="A site id (GUID)")]
LevelId = Annotated[str, Path(description="A level id (GUID)")]
FleetId = Annotated[str, Path(description="A fleet id (GUID)")]
SITE = "PLACE/Site/{siteId}"
FLEET = "PLACE/Fleet/{fleetId}"


# -- sites -------------------------------------------------------------------------------------


@app.post("/v2/sites", tags=["Sites"], responses=documented_created(Site))
@access(Action.WRITE, "PLACE/Site/*", audit="site.create")
def create_site(request: CreateSiteRequest, org: CurrentOrg) -> Response[Site]:
    site = places.create_site(org, request)
    return created(site, f"/v2/sites/{site.siteId}")


@app.get("/v2/sites", tags=["Sites"])
@access(Action.READ, "PLACE/Site/*")
def list_sites(
    org: CurrentOrg, limit: Limit = None, pageLimit: PageLimit = None, continuationToken: ContinuationToken = None
) -> SitePage:
    return places.list_sites(org, PageRequest.of(limit, pageLimit, continuationToken))


@app.get("/v2/sites/<siteId>", tags=["Sites"])
@access(Action.READ, SITE)
def get_site(siteId: SiteId, org: CurrentOrg) -> Site:
    return Site.model_validate(places.get_site(org, siteId))


@app.patch("/v2/sites/<siteId>", tags=["Sites"])
@access(Action.WRITE, SITE, audit="site.update")
def update_site(siteId: SiteId, request: UpdateSiteRequest, org: CurrentOrg) -> Site:
    return places.update_site(org, siteId, request)


@app.delete("/v2/sites/<siteId>", tags=["Sites"], summary="Delete (409 while it has things or levels)")
@access(Action.WRITE, SITE, audit="site.delete")
def delete_site(siteId: SiteId, org: CurrentOrg) -> Response[None]:
    places.delete_site(org, siteId)
    return no_content()


# -- levels ------------------------------------------------------------------------------------


@app.post("/v2/sites/<siteId>/levels", tags=["Levels"], responses=documented_created(Level))
@access(Action.WRITE, SITE, audit="level.create")
def create_level(siteId: SiteId, request: CreateLevelRequest, org: CurrentOrg) -> Response[Level]:
    level = places.create_level(org, siteId, request)
    return created(level, f"/v2/sites/{siteId}/levels/{level.levelId}")


@app.get("/v2/sites/<siteId>/levels", tags=["Levels"], summary="The site's level tree")
@access(Action.READ, SITE)
def get_level_tree(siteId: SiteId, org: CurrentOrg) -> LevelTree:
    return places.level_tree(org, siteId)


@app.get("/v2/sites/<siteId>/levels/<levelId>", tags=["Levels"])
@access(Action.READ, SITE)
def get_level(siteId: SiteId, levelId: LevelId, org: CurrentOrg) -> Level:
    return Level.model_validate(places.get_level(org, siteId, levelId))


@app.patch("/v2/sites/<siteId>/levels/<levelId>", tags=["Levels"], summary="Rename, describe, or move (parentLevelId)")
@access(Action.WRITE, SITE, audit="level.update")
def update_level(siteId: SiteId, levelId: LevelId, request: UpdateLevelRequest, org: CurrentOrg) -> Level:
    return places.update_level(org, siteId, levelId, request)


@app.delete("/v2/sites/<siteId>/levels/<levelId>", tags=["Levels"], summary="Delete (409 with children or things)")
@access(Action.WRITE, SITE, audit="level.delete")
def delete_level(siteId: SiteId, levelId: LevelId, org: CurrentOrg) -> Response[None]:
    places.delete_level(org, siteId, levelId)
    return no_content()


# -- fleets ------------------------------------------------------------------------------------


@app.post("/v2/fleets", tags=["Fleets"], responses=documented_created(Fleet))
@access(Action.WRITE, "PLACE/Fleet/*", audit="fleet.create")
def create_fleet(request: CreateFleetRequest, org: CurrentOrg) -> Response[Fleet]:
    fleet = places.create_fleet(org, request)
    return created(fleet, f"/v2/fleets/{fleet.fleetId}")


@app.get("/v2/fleets", tags=["Fleets"])
@access(Action.READ, "PLACE/Fleet/*")
def list_fleets(
    org: CurrentOrg, limit: Limit = None, pageLimit: PageLimit = None, continuationToken: ContinuationToken = None
) -> FleetPage:
    return places.list_fleets(org, PageRequest.of(limit, pageLimit, continuationToken))


@app.get("/v2/fleets/<fleetId>", tags=["Fleets"])
@access(Action.READ, FLEET)
def get_fleet(fleetId: FleetId, org: CurrentOrg) -> Fleet:
    return Fleet.model_validate(places.get_fleet(org, fleetId))


@app.patch("/v2/fleets/<fleetId>", tags=["Fleets"])
@access(Action.WRITE, FLEET, audit="fleet.update")
def update_fleet(fleetId: FleetId, request: UpdateFleetRequest, org: CurrentOrg) -> Fleet:
    return places.update_fleet(org, fleetId, request)


@app.delete("/v2/fleets/<fleetId>", tags=["Fleets"], summary="Delete (409 while it has things)")
@access(Action.WRITE, FLEET, audit="fleet.delete")
def delete_fleet(fleetId: FleetId, org: CurrentOrg) -> Response[None]:
    places.delete_fleet(org, fleetId)
    return no_content()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
