"""Sites with their level trees, and fleets: validated, hard-deleted only when empty.

Rules kept here:
- a site defines its level types and which may be parents of which (defaults: Building →
  Floor → Room, Zone under a Building or Floor or at the root);
- a level's type is fixed; moving a level re-parents it within its site, never under itself or
  a descendant, and only under an allowed parent type;
- deleting a site, level or fleet that still holds levels, child levels or things is a 409 that
  says what blocks it; the check is the delete's own condition (counters kept in the same
  transactions that add and remove dependents), so nothing slips in between.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from spectra.auth.scopes import Action
from spectra.errors import Conflict, FieldError, NotFound, ValidationFailed
from spectra.identifiers import is_guid, new_guid
from spectra.lifecycle import stamps, touched
from spectra.models.common import utc_now
from spectra.models.places import (
    DEFAULT_LEVEL_TYPES,
    CreateFleetRequest,
    CreateLevelRequest,
    CreateSiteRequest,
    Fleet,
    FleetPage,
    Level,
    LevelNode,
    LevelTree,
    Site,
    SitePage,
    UpdateFleetRequest,
    UpdateLevelRequest,
    UpdateSiteRequest,
)
from spectra.pagination import PageRequest, PageTokens
from spectra.repositories.places import (
    PlaceRepository,
    counter_change,
    delete_when_empty,
    guarded_update,
    put_new,
    site_tree_change,
)
from spectra.services.listing import list_page
from spectra.services.metrics import MetricService
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext

MAX_LEVELS_PER_SITE = 2000


def site_path(site_id: str) -> str:
    return f"PLACE/Site/{site_id}"


def fleet_path(fleet_id: str) -> str:
    return f"PLACE/Fleet/{fleet_id}"


def _blocked(kind: str, counts: Mapping[str, int]) -> Conflict:
    if not any(counts.values()):
        return Conflict(f"The {kind} changed at the same time; fetch it again and retry.")
    parts = [f"{count} {name}" for name, count in counts.items() if count]
    what = " and ".join(parts) or "dependents"
    return Conflict(
        f"The {kind} still has {what}; remove them first.",
        extra={"blockedBy": {name: count for name, count in counts.items() if count}},
    )


class PlaceService:
    def __init__(
        self,
        places: PlaceRepository,
        metrics: MetricService,
        *,
        page_tokens: PageTokens,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._places = places
        self._metrics = metrics
        self._page_tokens = page_tokens
        self._clock = clock

    # -- sites ------------------------------------------------------------------------------

    def create_site(self, org: OrgContext, request: CreateSiteRequest) -> Site:
        self._metrics.usable(org, request.preferredDisplayMetrics, "preferredDisplayMetrics")
        site_id = new_guid()
        org.require(Action.WRITE, site_path(site_id))
        record = {
            "entity": "Site",
            "siteId": site_id,
            **request.model_dump(mode="json", exclude={"levelTypes"}),
            "levelTypes": [r.model_dump() for r in request.levelTypes]
            if request.levelTypes is not None
            else DEFAULT_LEVEL_TYPES,
            "levelCount": 0,
            "thingCount": 0,
            **stamps(org, self._clock()),
        }
        self._places.write(org, [put_new(self._places.table, {**record, **keys.site_key(org, site_id)})])
        return Site.model_validate(record)

    def get_site(self, org: OrgContext, site_id: str, action: Action = Action.READ) -> dict[str, Any]:
        """The site record (404 when absent or another org's), if the key may ``action`` it."""
        site = self._places.get_site(org, site_id)
        if site is None:
            raise NotFound("No such site.")
        org.require(action, site_path(site_id))
        return site

    def list_sites(self, org: OrgContext, page: PageRequest) -> SitePage:
        listed = list_page(
            org,
            self._page_tokens,
            route="sites",
            filters={},
            page=page,
            query=self._places.sites_page,
            keep=lambda r: org.can(Action.READ, site_path(r["siteId"])),
        )
        return listed.to(SitePage, Site.model_validate)

    def update_site(self, org: OrgContext, site_id: str, request: UpdateSiteRequest) -> Site:
        site = self.get_site(org, site_id, Action.WRITE)
        sent = request.model_fields_set
        changes = request.model_dump(mode="json", include=sent - {"levelTypes"})
        for required in ("siteName", "address", "latitude", "longitude", "attributes", "preferredDisplayMetrics"):
            if required in changes and changes[required] is None:
                raise ValidationFailed.single(required, "cannot be null")
        if request.preferredDisplayMetrics is not None:
            self._metrics.usable(org, request.preferredDisplayMetrics, "preferredDisplayMetrics")
        unchanged = None
        if request.levelTypes is not None:
            rules = [r.model_dump() for r in request.levelTypes]
            self._check_levels_fit(org, site_id, rules)
            changes["levelTypes"] = rules
            changes["rulesVersion"] = int(site.get("rulesVersion", 0)) + 1
            # The levels just checked must still be all there is, and where they were.
            unchanged = {"levelCount": int(site.get("levelCount", 0)), "treeVersion": int(site.get("treeVersion", 0))}
        change = guarded_update(
            self._places.table,
            keys.site_key(org, site_id),
            {**changes, **touched(org, self._clock())},
            str(site["updatedAt"]),
            unchanged=unchanged,
        )
        self._places.write(org, [change])
        updated = self._places.get_site(org, site_id)
        if updated is None:
            raise NotFound("No such site.")
        return Site.model_validate(updated)

    def delete_site(self, org: OrgContext, site_id: str) -> None:
        self.get_site(org, site_id, Action.WRITE)
        key = keys.site_key(org, site_id)
        try:
            self._places.write(
                org, [delete_when_empty(self._places.table, key, ["thingCount", "levelCount", "mappingCount"])]
            )
        except Conflict:
            current = self._places.get_site(org, site_id) or {}
            raise _blocked(
                "site",
                {
                    "things": int(current.get("thingCount", 0)),
                    "levels": int(current.get("levelCount", 0)),
                    "resourceMappings": int(current.get("mappingCount", 0)),
                },
            ) from None

    # -- levels -----------------------------------------------------------------------------

    def create_level(self, org: OrgContext, site_id: str, request: CreateLevelRequest) -> Level:
        site = self.get_site(org, site_id, Action.WRITE)
        if int(site.get("levelCount", 0)) >= MAX_LEVELS_PER_SITE:
            raise Conflict(f"A site holds at most {MAX_LEVELS_PER_SITE} levels.")
        rules = {r["levelType"]: r for r in site["levelTypes"]}
        problems = []
        if request.levelType not in rules:
            problems.append(FieldError("levelType", f"this site's level types are {', '.join(rules)}"))
        parent = self._parent(org, site_id, request.parentLevelId, problems)
        if not problems:
            problems += self._placement_problems(rules[request.levelType], parent)
        if problems:
            raise ValidationFailed(problems)
        level_id = new_guid()
        record = {
            "entity": "Level",
            "levelId": level_id,
            "siteId": site_id,
            **request.model_dump(mode="json"),
            "childCount": 0,
            "thingCount": 0,
            **stamps(org, self._clock()),
        }
        table = self._places.table
        items = [
            put_new(table, {**record, **keys.level_key(org, site_id, level_id)}),
            site_tree_change(
                table,
                keys.site_key(org, site_id),
                seen={"rulesVersion": int(site.get("rulesVersion", 0))},
                bump="levelCount",
            ),
        ]
        if parent is not None:
            items.append(self._children(org, site_id, parent["levelId"], 1))
        gone = ["The site or its levels changed meanwhile; retry.", "The parent level was deleted meanwhile."]
        self._places.write(org, items, conflicts=[None, *gone])
        return Level.model_validate(record)

    def level_tree(self, org: OrgContext, site_id: str) -> LevelTree:
        self.get_site(org, site_id)
        levels = sorted(self._places.levels(org, site_id), key=lambda level: (level["levelName"], level["levelId"]))
        nodes = {level["levelId"]: LevelNode.model_validate(level) for level in levels}
        roots: list[LevelNode] = []
        for level in levels:
            node = nodes[level["levelId"]]
            parent = nodes.get(level.get("parentLevelId") or "")
            (parent.children if parent is not None else roots).append(node)
        return LevelTree(items=roots, continuationToken=None, hasMore=False)

    def get_level(self, org: OrgContext, site_id: str, level_id: str, action: Action = Action.READ) -> dict[str, Any]:
        self.get_site(org, site_id, action)
        level = self._places.get_level(org, site_id, level_id)
        if level is None:
            raise NotFound("No such level in this site.")
        return level

    def update_level(self, org: OrgContext, site_id: str, level_id: str, request: UpdateLevelRequest) -> Level:
        level = self.get_level(org, site_id, level_id, Action.WRITE)
        sent = request.model_fields_set
        problems = []
        if "levelType" in sent and request.levelType != level["levelType"]:
            problems.append(FieldError("levelType", f"a level's type is fixed (it is {level['levelType']!r})"))
        if ("latitude" in sent) != ("longitude" in sent) or (request.latitude is None) != (request.longitude is None):
            problems.append(FieldError("latitude", "latitude and longitude go together"))
        if "levelName" in sent and request.levelName is None:
            problems.append(FieldError("levelName", "cannot be null"))
        now = self._clock()
        changes = request.model_dump(mode="json", include=sent - {"levelType", "parentLevelId"})
        if changes.get("attributes", {}) is None:
            changes["attributes"] = {}
        items: list[dict[str, Any]] = []
        moving = "parentLevelId" in sent and request.parentLevelId != level.get("parentLevelId")
        if moving:
            site = self.get_site(org, site_id, Action.WRITE)
            seen = {"treeVersion": int(site.get("treeVersion", 0))}
            items.append(
                site_tree_change(self._places.table, keys.site_key(org, site_id), seen=seen, bump="treeVersion")
            )
            rules = {r["levelType"]: r for r in site["levelTypes"]}
            parent = self._parent(org, site_id, request.parentLevelId, problems)
            if parent is not None and self._would_cycle(org, site_id, level_id, parent):
                problems.append(FieldError("parentLevelId", "a level cannot move under itself or its descendants"))
            elif not problems:
                problems += self._placement_problems(rules[level["levelType"]], parent)
            changes["parentLevelId"] = request.parentLevelId
            if level.get("parentLevelId"):
                items.append(self._children(org, site_id, level["parentLevelId"], -1))
            if parent is not None:
                items.append(self._children(org, site_id, parent["levelId"], 1))
        if problems:
            raise ValidationFailed(problems)
        key = keys.level_key(org, site_id, level_id)
        change = guarded_update(self._places.table, key, {**changes, **touched(org, now)}, str(level["updatedAt"]))
        self._places.write(org, [change, *items])
        updated = self._places.get_level(org, site_id, level_id)
        if updated is None:
            raise NotFound("No such level in this site.")
        return Level.model_validate(updated)

    def delete_level(self, org: OrgContext, site_id: str, level_id: str) -> None:
        level = self.get_level(org, site_id, level_id, Action.WRITE)
        items = [
            delete_when_empty(
                self._places.table,
                keys.level_key(org, site_id, level_id),
                ["childCount", "thingCount"],
                seen_updated_at=str(level["updatedAt"]),
            ),
            counter_change(self._places.table, keys.site_key(org, site_id), {"levelCount": -1}),
        ]
        if level.get("parentLevelId"):
            items.append(self._children(org, site_id, level["parentLevelId"], -1))
        try:
            self._places.write(org, items)
        except Conflict:
            current = self._places.get_level(org, site_id, level_id) or {}
            raise _blocked(
                "level",
                {"childLevels": int(current.get("childCount", 0)), "things": int(current.get("thingCount", 0))},
            ) from None

    # -- fleets -----------------------------------------------------------------------------

    def create_fleet(self, org: OrgContext, request: CreateFleetRequest) -> Fleet:
        fleet_id = new_guid()
        org.require(Action.WRITE, fleet_path(fleet_id))
        record = {
            "entity": "Fleet",
            "fleetId": fleet_id,
            **request.model_dump(mode="json"),
            "thingCount": 0,
            **stamps(org, self._clock()),
        }
        self._places.write(org, [put_new(self._places.table, {**record, **keys.fleet_key(org, fleet_id)})])
        return Fleet.model_validate(record)

    def get_fleet(self, org: OrgContext, fleet_id: str, action: Action = Action.READ) -> dict[str, Any]:
        fleet = self._places.get_fleet(org, fleet_id)
        if fleet is None:
            raise NotFound("No such fleet.")
        org.require(action, fleet_path(fleet_id))
        return fleet

    def list_fleets(self, org: OrgContext, page: PageRequest) -> FleetPage:
        listed = list_page(
            org,
            self._page_tokens,
            route="fleets",
            filters={},
            page=page,
            query=self._places.fleets_page,
            keep=lambda r: org.can(Action.READ, fleet_path(r["fleetId"])),
        )
        return listed.to(FleetPage, Fleet.model_validate)

    def update_fleet(self, org: OrgContext, fleet_id: str, request: UpdateFleetRequest) -> Fleet:
        fleet = self.get_fleet(org, fleet_id, Action.WRITE)
        sent = request.model_fields_set
        if "fleetName" in sent and request.fleetName is None:
            raise ValidationFailed.single("fleetName", "cannot be null")
        changes = request.model_dump(mode="json", include=sent)
        if changes.get("attributes", {}) is None:
            changes["attributes"] = {}
        updated = self._places.update(
            org,
            keys.fleet_key(org, fleet_id),
            set_fields={**changes, **touched(org, self._clock())},
            seen_updated_at=str(fleet["updatedAt"]),
        )
        return Fleet.model_validate(updated)

    def delete_fleet(self, org: OrgContext, fleet_id: str) -> None:
        self.get_fleet(org, fleet_id, Action.WRITE)
        try:
            self._places.write(
                org,
                [delete_when_empty(self._places.table, keys.fleet_key(org, fleet_id), ["thingCount", "mappingCount"])],
            )
        except Conflict:
            current = self._places.get_fleet(org, fleet_id) or {}
            raise _blocked(
                "fleet",
                {
                    "things": int(current.get("thingCount", 0)),
                    "resourceMappings": int(current.get("mappingCount", 0)),
                },
            ) from None

    # -- level rules ------------------------------------------------------------------------

    def _children(self, org: OrgContext, site_id: str, level_id: str, delta: int) -> dict[str, Any]:
        return counter_change(self._places.table, keys.level_key(org, site_id, level_id), {"childCount": delta})

    def _parent(
        self, org: OrgContext, site_id: str, parent_id: str | None, problems: list[FieldError]
    ) -> dict[str, Any] | None:
        if parent_id is None:
            return None
        parent = self._places.get_level(org, site_id, parent_id) if is_guid(parent_id) else None
        if parent is None:
            problems.append(FieldError("parentLevelId", "no such level in this site"))
        return parent

    @staticmethod
    def _placement_problems(rule: Mapping[str, Any], parent: Mapping[str, Any] | None) -> list[FieldError]:
        if parent is None:
            if not rule.get("canBeRoot"):
                return [FieldError("parentLevelId", f"a {rule['levelType']} cannot be at the root of the site")]
            return []
        if parent["levelType"] not in rule.get("allowedParentTypes", []):
            allowed = ", ".join(rule.get("allowedParentTypes", [])) or "none (root only)"
            return [
                FieldError(
                    "parentLevelId",
                    f"a {rule['levelType']} cannot be under a {parent['levelType']} (allowed parents: {allowed})",
                )
            ]
        return []

    def _would_cycle(self, org: OrgContext, site_id: str, level_id: str, parent: Mapping[str, Any]) -> bool:
        by_id = {level["levelId"]: level for level in self._places.levels(org, site_id)}
        current: Mapping[str, Any] | None = parent
        for _ in range(len(by_id) + 1):
            if current is None:
                return False
            if current["levelId"] == level_id:
                return True
            current = by_id.get(current.get("parentLevelId") or "")
        return True

    def _check_levels_fit(self, org: OrgContext, site_id: str, rules: Sequence[Mapping[str, Any]]) -> None:
        by_type = {r["levelType"]: r for r in rules}
        levels = self._places.levels(org, site_id)
        by_id = {level["levelId"]: level for level in levels}
        misfits = []
        for level in levels:
            rule = by_type.get(level["levelType"])
            parent = by_id.get(level.get("parentLevelId") or "")
            if rule is None or self._placement_problems(rule, parent):
                misfits.append(level["levelName"])
        if misfits:
            raise Conflict(
                "The new levelTypes do not fit existing levels: " + ", ".join(sorted(misfits)[:20]),
                extra={"blockedBy": {"levels": len(misfits)}},
            )
