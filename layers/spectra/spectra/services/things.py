"""Things: created in a place, bound to a thing-type version, changed by merge, hard-deleted.

Rules kept here:
- a thing lives in a site (optionally at one of its levels) or a fleet of the same org;
- it binds to a version of an active thing type (the latest unless named); its ``properties``
  must fit that version's property definitions; ``thingManufacturerId`` is unique within the
  type (a guard item in the same transaction);
- PATCH merges: absent fields are unchanged, explicit null clears, 0 is a coordinate; it can
  transfer the thing to another place of the org and rebind it to another version of its type;
- scopes apply to the thing's paths ``PLACE/{Site|Fleet}/{placeId}/THING/{type}/{id}`` and
  ``THING/{type}/{id}``; lists show only what the key may read;
- delete removes the thing, its guard and its place counters in one transaction, then
  announces ``ThingDeleted``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from spectra.auth.scopes import Action
from spectra.errors import Conflict, FieldError, NotFound, ValidationFailed
from spectra.events import ThingEvents
from spectra.identifiers import is_guid, new_guid
from spectra.lifecycle import stamps, touched
from spectra.models.common import utc_now
from spectra.models.things import CreateThingRequest, Thing, ThingPage, UpdateThingRequest
from spectra.pagination import PageRequest, PageTokens
from spectra.properties import validate_properties
from spectra.repositories.places import (
    PlaceRepository,
    counter_change,
    delete_when_empty,
    guarded_update,
    put_new,
)
from spectra.repositories.things import ThingRepository
from spectra.services.listing import list_page
from spectra.services.thing_types import ThingTypeService
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext

PLACE_GONE = "The place was deleted meanwhile."
LEVEL_GONE = "The level was deleted meanwhile."
NULLABLE_TEXT = ("thingDescription", "address", "model", "manufacturer")


def thing_paths(place_type: str, place_id: str, type_name: str, thing_id: str) -> tuple[str, str]:
    """The two resource paths of a thing: through its place, and directly by type."""
    return (f"PLACE/{place_type}/{place_id}/THING/{type_name}/{thing_id}", f"THING/{type_name}/{thing_id}")


def paths_of(thing: Mapping[str, Any]) -> tuple[str, str]:
    return thing_paths(thing["placeType"], thing["placeId"], thing["thingTypeName"], thing["thingId"])


class ThingService:
    def __init__(
        self,
        things: ThingRepository,
        places: PlaceRepository,
        thing_types: ThingTypeService,
        events: ThingEvents,
        *,
        page_tokens: PageTokens,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._things = things
        self._places = places
        self._types = thing_types
        self._events = events
        self._page_tokens = page_tokens
        self._clock = clock

    # -- create -----------------------------------------------------------------------------

    def create(self, org: OrgContext, place_type: str, place_id: str, request: CreateThingRequest) -> Thing:
        place = self._place(org, place_type, place_id)
        problems: list[FieldError] = []
        level = self._level(org, place_type, place_id, request.levelId, problems)
        version = self._types.bindable_version(org, request.thingTypeId, request.thingTypeDefId, problems)
        properties: dict[str, Any] = {}
        if version is not None:
            properties, property_problems = validate_properties(
                version.get("propertyDefinitions", []), request.properties
            )
            problems += property_problems
        if problems or version is None:
            raise ValidationFailed(problems)
        thing_id = new_guid()
        type_name = str(version["displayName"])
        org.require(Action.WRITE, *thing_paths(place_type, place["placeId"], type_name, thing_id))
        record = {
            "entity": "Thing",
            "thingId": thing_id,
            **request.model_dump(mode="json", exclude={"properties", "thingTypeDefId"}),
            "thingTypeDefId": version["thingTypeDefId"],
            "thingTypeName": type_name,
            "placeType": place_type,
            "placeId": place_id,
            "properties": properties,
            **stamps(org, self._clock()),
        }
        table = self._things.table
        item = {**record, **keys.thing_key(org, thing_id)}
        item.update(keys.thing_index_attributes(org, thing_id, place_id, request.thingTypeId))
        counters, conflicts = self._counters(org, place_type, place_id, level["levelId"] if level else None, 1)
        items = [put_new(table, item), *counters]
        conflicts = [None, *conflicts]
        if request.thingManufacturerId:
            mfr = request.thingManufacturerId
            items.append(self._things.manufacturer_guard(org, request.thingTypeId, mfr, thing_id))
            conflicts.append(self._duplicate(mfr))
        self._things.write(org, items, conflict="The thing could not be created; retry.", conflicts=conflicts)
        return Thing.model_validate(record)

    # -- read -------------------------------------------------------------------------------

    def get(self, org: OrgContext, thing_id: str, action: Action = Action.READ) -> dict[str, Any]:
        """The thing (404 when absent or another org's), if the key may ``action`` it."""
        thing = self._things.get(org, thing_id)
        if thing is None:
            raise NotFound("No such thing.")
        org.require(action, *paths_of(thing))
        return thing

    def list_things(
        self,
        org: OrgContext,
        *,
        place_id: str | None,
        thing_type_id: str | None,
        page: PageRequest,
        route: str = "things",
    ) -> ThingPage:
        def wanted(thing: dict[str, Any]) -> bool:
            return (
                (place_id is None or thing["placeId"] == place_id)
                and (thing_type_id is None or thing["thingTypeId"] == thing_type_id)
                and org.can(Action.READ, *paths_of(thing))
            )

        if place_id is not None:
            if not is_guid(place_id):
                raise ValidationFailed.single("placeId", "must be a GUID")

            def query(org: OrgContext, **kwargs: Any) -> Any:
                return self._things.page_in_place(org, place_id, **kwargs)

        elif thing_type_id is not None:

            def query(org: OrgContext, **kwargs: Any) -> Any:
                return self._things.page_of_type(org, thing_type_id, **kwargs)

        else:

            def query(org: OrgContext, **kwargs: Any) -> Any:
                return self._things.page(org, **kwargs)

        listed = list_page(
            org,
            self._page_tokens,
            route=route,
            filters={"placeId": place_id, "thingTypeId": thing_type_id},
            page=page,
            query=query,
            keep=wanted,
        )
        return listed.to(ThingPage, Thing.model_validate)

    def list_in_place(self, org: OrgContext, place_type: str, place_id: str, page: PageRequest) -> ThingPage:
        self._place(org, place_type, place_id)
        return self.list_things(org, place_id=place_id, thing_type_id=None, page=page, route=f"{place_type}-things")

    # -- update -----------------------------------------------------------------------------

    def update(self, org: OrgContext, thing_id: str, request: UpdateThingRequest) -> Thing:
        thing = self.get(org, thing_id, Action.WRITE)
        sent = request.model_fields_set
        problems: list[FieldError] = []
        changes: dict[str, Any] = {}
        for field in ("thingName", "isSimulated"):
            if field in sent:
                if getattr(request, field) is None:
                    problems.append(FieldError(field, "cannot be null"))
                else:
                    changes[field] = getattr(request, field)
        for field in (*NULLABLE_TEXT, "latitude", "longitude"):
            if field in sent:
                changes[field] = getattr(request, field)

        # Explicit null clears the whole map; a map merges into it; absent leaves it alone.
        attributes = {} if "attributes" in sent and request.attributes is None else dict(thing.get("attributes", {}))
        attributes.update(request.attributes or {})
        for name in request.attributesToDelete:
            attributes.pop(name, None)
        if "attributes" in sent or request.attributesToDelete:
            changes["attributes"] = attributes

        table = self._things.table
        extra: list[dict[str, Any]] = []
        conflicts: list[str | None] = [None]
        place_type, place_id = thing["placeType"], thing["placeId"]
        if "placeId" in sent or "levelId" in sent:
            moved = self._transfer(org, thing, request, problems)
            if moved is not None:
                place_type, place_id, level_id = moved
                if (place_id, level_id) != (thing["placeId"], thing.get("levelId")):
                    # Within one place only the levels' counters move (one item, one change).
                    same_place = place_id == thing["placeId"]
                    leaving, leaving_conflicts = self._counters(
                        org, thing["placeType"], thing["placeId"], thing.get("levelId"), -1, place=not same_place
                    )
                    arriving, arriving_conflicts = self._counters(
                        org, place_type, place_id, level_id, 1, place=not same_place
                    )
                    extra += [*leaving, *arriving]
                    conflicts += [*leaving_conflicts, *arriving_conflicts]
                    index = keys.thing_index_attributes(org, thing_id, place_id, thing["thingTypeId"])
                    changes.update({"placeType": place_type, "placeId": place_id, "levelId": level_id, **index})

        version_id = thing["thingTypeDefId"]
        if "thingTypeDefId" in sent and request.thingTypeDefId != version_id:
            if request.thingTypeDefId is None:
                problems.append(FieldError("thingTypeDefId", "cannot be null"))
            else:
                rebound = self._types.bindable_version(org, thing["thingTypeId"], request.thingTypeDefId, problems)
                if rebound is not None:
                    version_id = rebound["thingTypeDefId"]
                    changes.update({"thingTypeDefId": version_id, "thingTypeName": rebound["displayName"]})
        version = self._types.resolve_version(org, version_id) or {}

        properties = {} if "properties" in sent and request.properties is None else dict(thing.get("properties", {}))
        properties.update(request.properties or {})
        for name in request.propertiesToDelete:
            properties.pop(name, None)
        if "properties" in sent or request.propertiesToDelete or "thingTypeDefId" in changes:
            clean, property_problems = validate_properties(version.get("propertyDefinitions", []), properties)
            problems += property_problems
            changes["properties"] = clean

        if "thingManufacturerId" in sent and request.thingManufacturerId != thing.get("thingManufacturerId"):
            old, new = thing.get("thingManufacturerId"), request.thingManufacturerId
            if old:
                extra.append(self._things.release_manufacturer_guard(org, thing["thingTypeId"], old, thing_id))
                conflicts.append(None)
            if new:
                extra.append(self._things.manufacturer_guard(org, thing["thingTypeId"], new, thing_id))
                conflicts.append(self._duplicate(new))
            changes["thingManufacturerId"] = new
        if problems:
            raise ValidationFailed(problems)

        type_name = str(changes.get("thingTypeName", thing["thingTypeName"]))
        org.require(Action.WRITE, *thing_paths(place_type, place_id, type_name, thing_id))
        removals = [field for field, value in changes.items() if value is None]
        changes = {field: value for field, value in changes.items() if value is not None}
        changes.update(touched(org, self._clock()))
        update = guarded_update(table, keys.thing_key(org, thing_id), changes, str(thing["updatedAt"]), removals)
        self._things.write(
            org,
            [update, *extra],
            conflict="The thing changed at the same time; fetch it again and retry.",
            conflicts=conflicts,
        )
        return Thing.model_validate(self.get(org, thing_id))

    # -- delete -----------------------------------------------------------------------------

    def delete(self, org: OrgContext, thing_id: str) -> None:
        thing = self.get(org, thing_id, Action.WRITE)
        table = self._things.table
        counters, _ = self._counters(org, thing["placeType"], thing["placeId"], thing.get("levelId"), -1)
        unmapped = delete_when_empty(
            table, keys.thing_key(org, thing_id), ["mappingCount"], seen_updated_at=str(thing["updatedAt"])
        )
        items = [unmapped, *counters]
        if thing.get("thingManufacturerId"):
            mfr = str(thing["thingManufacturerId"])
            items.append(self._things.release_manufacturer_guard(org, thing["thingTypeId"], mfr, thing_id))
        items.append(self._events.thing_deleted_outbox_entry(org, thing_id))
        try:
            self._things.write(org, items, conflict="The thing changed at the same time; fetch it again and retry.")
        except Conflict:
            mappings = int((self._things.get(org, thing_id) or {}).get("mappingCount", 0))
            if not mappings:
                raise
            raise Conflict(
                f"{mappings} integration resource mapping(s) point at the thing; delete them first.",
                extra={"blockedBy": {"resourceMappings": mappings}},
            ) from None
        self._events.publish_thing_deleted(org, thing_id)

    # -- helpers ----------------------------------------------------------------------------

    def _counters(
        self,
        org: OrgContext,
        place_type: str,
        place_id: str,
        level_id: str | None,
        delta: int,
        *,
        place: bool = True,
    ) -> tuple[list[dict[str, Any]], list[str | None]]:
        """Counter changes for a thing arriving at (1) or leaving (-1) a place and level."""
        table = self._things.table
        items: list[dict[str, Any]] = []
        conflicts: list[str | None] = []
        if place:
            items.append(counter_change(table, keys.place_key(org, place_type, place_id), {"thingCount": delta}))
            conflicts.append(PLACE_GONE)
        if level_id:
            items.append(counter_change(table, keys.level_key(org, place_id, level_id), {"thingCount": delta}))
            conflicts.append(LEVEL_GONE)
        return items, conflicts

    def _transfer(
        self, org: OrgContext, thing: Mapping[str, Any], request: UpdateThingRequest, problems: list[FieldError]
    ) -> tuple[str, str, str | None] | None:
        """Where a PATCH moves the thing: ``(placeType, placeId, levelId)``, or ``None`` on problems."""
        sent = request.model_fields_set
        place_id = request.placeId if "placeId" in sent else thing["placeId"]
        if place_id is None:
            problems.append(FieldError("placeId", "cannot be null"))
            return None
        target = self._places.get_place(org, place_id) if is_guid(place_id) else None
        if target is None:
            problems.append(FieldError("placeId", "no site or fleet with this id in the organization"))
            return None
        place_type = "Site" if "siteId" in target else "Fleet"
        if "levelId" in sent:
            level_id = request.levelId
        else:
            level_id = thing.get("levelId") if place_id == thing["placeId"] else None
        level = self._level(org, place_type, place_id, level_id, problems)
        if level_id is not None and level is None:
            return None
        return place_type, place_id, level_id

    def _place(self, org: OrgContext, place_type: str, place_id: str) -> dict[str, Any]:
        place = self._places.get_site(org, place_id) if place_type == "Site" else self._places.get_fleet(org, place_id)
        if place is None:
            raise NotFound(f"No such {place_type.lower()}.")
        return {**place, "placeId": place_id}

    def _level(
        self,
        org: OrgContext,
        place_type: str,
        place_id: str,
        level_id: str | None,
        problems: list[FieldError],
    ) -> dict[str, Any] | None:
        if level_id is None:
            return None
        if place_type != "Site":
            problems.append(FieldError("levelId", "only things in a site can be at a level"))
            return None
        level = self._places.get_level(org, place_id, level_id) if is_guid(level_id) else None
        if level is None:
            problems.append(FieldError("levelId", "no such level in this site"))
        return level

    @staticmethod
    def _duplicate(manufacturer_id: str) -> str:
        return f"Another thing of this type already has thingManufacturerId {manufacturer_id!r}."
