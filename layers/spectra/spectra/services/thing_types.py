"""Thing types and their versions: immutable metric sets, snapshots, metadata-only edits.

Rules kept here:
- creating a type creates its index and version 1 together;
- a new version is a full snapshot: omitted ``propertyDefinitions`` (and ``displayName``) are
  inherited from the latest version, ``[]`` clears, ``deletedMetricIds`` is computed;
- a version's ``metricIds`` and ``propertyDefinitions`` never change; PUT edits metadata only;
- every referenced metric exists in the org and is active;
- a deleted type is hidden from normal reads and cannot take new versions, but its versions
  stay resolvable internally for things already bound to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from spectra import lifecycle
from spectra.auth.scopes import Action
from spectra.errors import FieldError, NotFound, ValidationFailed
from spectra.identifiers import new_prefixed_id
from spectra.models.common import LifecycleStatus, to_iso, utc_now
from spectra.models.definitions import (
    CreateThingTypeRequest,
    CreateThingTypeVersionRequest,
    ThingType,
    ThingTypePage,
    ThingTypeVersion,
    UpdateThingTypeVersionRequest,
)
from spectra.pagination import PageRequest, PageTokens
from spectra.properties import PropertyDefinition, unique_property_names
from spectra.repositories.definitions import ThingTypeRepository
from spectra.services.listing import list_page
from spectra.services.metrics import MetricService, to_metric
from spectra.tenancy.context import OrgContext


def thing_type_path(thing_type_id: str) -> str:
    return f"DEFINITION/ThingType/{thing_type_id}"


def version_paths(version: Mapping[str, Any]) -> tuple[str, str]:
    """A version is reachable through its own id and through its type's."""
    return (f"DEFINITION/ThingTypeVersion/{version['thingTypeDefId']}", thing_type_path(str(version["thingTypeId"])))


def _fixed_name(record: Mapping[str, Any], requested: str | None) -> list[FieldError]:
    """A thing type's name is fixed: it names the type in scopes (``THING/{name}/…``), so a
    rename would silently move its things in or out of keys' reach."""
    if requested is not None and requested != record["displayName"]:
        message = f"a thing type's name cannot change (it is {record['displayName']!r}; scopes use it)"
        return [FieldError("displayName", message)]
    return []


def _definitions(definitions: list[PropertyDefinition], problems: list[FieldError]) -> list[dict[str, Any]]:
    """The definitions as stored; duplicate names are added to ``problems``."""
    problems += unique_property_names(definitions)
    return [d.model_dump(mode="json", exclude_none=True) for d in definitions]


class ThingTypeService:
    def __init__(
        self,
        thing_types: ThingTypeRepository,
        metrics: MetricService,
        *,
        page_tokens: PageTokens,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._types = thing_types
        self._metrics = metrics
        self._page_tokens = page_tokens
        self._clock = clock

    # -- thing types ------------------------------------------------------------------------

    def create(self, org: OrgContext, request: CreateThingTypeRequest) -> ThingType:
        problems: list[FieldError] = []
        definitions = _definitions(request.propertyDefinitions, problems)
        self._metrics.usable(org, request.metricIds, "metricIds", problems)
        now = self._clock()
        thing_type_id, def_id = new_prefixed_id("tdefi"), new_prefixed_id("tdef")
        org.require(Action.WRITE, thing_type_path(thing_type_id))
        version = {
            "entity": "ThingTypeVersion",
            "thingTypeDefId": def_id,
            "thingTypeId": thing_type_id,
            "version": 1,
            "displayName": request.displayName,
            "description": request.description,
            "tags": request.tags,
            "modelMetadata": request.modelMetadata,
            "metricIds": request.metricIds,
            "deletedMetricIds": [],
            "propertyDefinitions": definitions,
            **lifecycle.stamps(org, now),
        }
        index = {
            "entity": "ThingType",
            "thingTypeId": thing_type_id,
            "displayName": request.displayName,
            "description": request.description,
            "tags": request.tags,
            "latestThingTypeDefId": def_id,
            "latestVersionNumber": 1,
            "versions": [{"version": 1, "thingTypeDefId": def_id}],
            **lifecycle.new_record_fields(org, now),
        }
        self._types.create(org, index, version)
        return ThingType.model_validate(index)

    def get(self, org: OrgContext, thing_type_id: str) -> ThingType:
        return ThingType.model_validate(self._active(org, thing_type_id))

    def list_types(self, org: OrgContext, *, status: LifecycleStatus, page: PageRequest) -> ThingTypePage:
        def wanted(record: dict[str, Any]) -> bool:
            return lifecycle.visible(record, status) and org.can(Action.READ, thing_type_path(record["thingTypeId"]))

        listed = list_page(
            org,
            self._page_tokens,
            route="thing-types",
            filters={"status": status.value},
            page=page,
            query=self._types.page,
            keep=wanted,
        )
        return listed.to(ThingTypePage, ThingType.model_validate)

    def delete(self, org: OrgContext, thing_type_id: str) -> None:
        current = self._active(org, thing_type_id)
        self._types.soft_delete(org, thing_type_id, current, self._clock())

    def restore(self, org: OrgContext, thing_type_id: str) -> ThingType:
        current = self._types.get(org, thing_type_id)
        if current is None:
            raise NotFound("No such thing type.")
        if not current.get("isDeleted"):
            return ThingType.model_validate(current)
        return ThingType.model_validate(self._types.restore(org, thing_type_id, current, self._clock()))

    # -- versions ---------------------------------------------------------------------------

    def create_version(
        self, org: OrgContext, thing_type_id: str, request: CreateThingTypeVersionRequest
    ) -> ThingTypeVersion:
        index = self._active(org, thing_type_id)
        latest = self._types.get_version(org, str(index["latestThingTypeDefId"]))
        if latest is None:
            raise NotFound("No such thing type.")
        problems = _fixed_name(index, request.displayName)
        definitions = (
            latest.get("propertyDefinitions", [])
            if request.propertyDefinitions is None
            else _definitions(request.propertyDefinitions, problems)
        )
        self._metrics.usable(org, request.metricIds, "metricIds", problems)
        now = self._clock()
        number = int(index["latestVersionNumber"]) + 1
        def_id = new_prefixed_id("tdef")
        display_name = str(index["displayName"])
        version = {
            "entity": "ThingTypeVersion",
            "thingTypeDefId": def_id,
            "thingTypeId": thing_type_id,
            "version": number,
            "displayName": display_name,
            "description": request.description,
            "tags": request.tags,
            "modelMetadata": request.modelMetadata,
            "metricIds": request.metricIds,
            "deletedMetricIds": [m for m in latest["metricIds"] if m not in set(request.metricIds)],
            "propertyDefinitions": definitions,
            **lifecycle.stamps(org, now),
        }
        move_index = self._types.update_operation(
            org,
            thing_type_id,
            set_fields={
                "latestThingTypeDefId": def_id,
                "latestVersionNumber": number,
                "versions": [*index["versions"], {"version": number, "thingTypeDefId": def_id}],
                **lifecycle.change_fields(org, now, index),
            },
            condition=lifecycle.ACTIVE_AND_CURRENT,
            condition_values=lifecycle.guard_values(index, deleted=False),
            history=lifecycle.history_event(f"version {number} created", org, now),
        )
        self._types.add_version(org, version, move_index)
        return ThingTypeVersion.model_validate(version)

    def get_version(self, org: OrgContext, thing_type_def_id: str, *, include_metrics: bool) -> ThingTypeVersion:
        version = self._visible_version(org, thing_type_def_id)
        view = ThingTypeVersion.model_validate(version)
        if include_metrics:
            metrics = self._metrics.resolve(org, version["metricIds"])
            view.metricDefinitions = [to_metric(metrics[m]) for m in version["metricIds"] if m in metrics]
        return view

    def update_version(
        self, org: OrgContext, thing_type_def_id: str, request: UpdateThingTypeVersionRequest
    ) -> ThingTypeVersion:
        version = self._visible_version(org, thing_type_def_id)
        org.require(Action.WRITE, *version_paths(version))
        problems = _fixed_name(version, request.displayName)
        if request.metricIds is not None and list(request.metricIds) != list(version["metricIds"]):
            problems.append(FieldError("metricIds", "a version's metrics cannot change; create a new version"))
        sent_definitions = (
            _definitions(request.propertyDefinitions, problems) if request.propertyDefinitions is not None else None
        )
        if sent_definitions is not None and sent_definitions != version.get("propertyDefinitions", []):
            message = "a version's property definitions cannot change; create a new version"
            problems.append(FieldError("propertyDefinitions", message))
        if problems:
            raise ValidationFailed(problems)
        changes = {
            "description": request.description,
            "tags": request.tags,
            "modelMetadata": request.modelMetadata,
            "updatedAt": to_iso(self._clock()),
            "updatedBy": org.actor,
        }
        updated = self._types.update_version(org, thing_type_def_id, changes, str(version["updatedAt"]))
        return ThingTypeVersion.model_validate(updated)

    def bindable_version(
        self, org: OrgContext, thing_type_id: str, thing_type_def_id: str | None, problems: list[FieldError]
    ) -> dict[str, Any] | None:
        """The version a thing may bind to: of an active type, the latest unless named; else
        ``None`` with the reason added to ``problems`` (so every problem is listed together)."""
        index = self._types.get(org, thing_type_id)
        if index is None or index.get("isDeleted"):
            problems.append(FieldError("thingTypeId", "no active thing type with this id"))
            return None
        wanted = thing_type_def_id or str(index["latestThingTypeDefId"])
        version = self._types.get_version(org, wanted)
        if version is None or version["thingTypeId"] != thing_type_id:
            problems.append(FieldError("thingTypeDefId", "not a version of this thing type"))
            return None
        return version

    def resolve_version(self, org: OrgContext, thing_type_def_id: str) -> dict[str, Any] | None:
        """A version as stored, even of a deleted type (for things already bound to it)."""
        return self._types.get_version(org, thing_type_def_id)

    # -- helpers ----------------------------------------------------------------------------

    def _active(self, org: OrgContext, thing_type_id: str) -> dict[str, Any]:
        record = self._types.get(org, thing_type_id)
        if record is None or record.get("isDeleted"):
            raise NotFound("No such thing type.")
        org.require(Action.READ, thing_type_path(thing_type_id))
        return record

    def _visible_version(self, org: OrgContext, thing_type_def_id: str) -> dict[str, Any]:
        version = self._types.get_version(org, thing_type_def_id)
        index = self._types.get(org, str(version["thingTypeId"])) if version else None
        if version is None or index is None or index.get("isDeleted"):
            raise NotFound("No such thing type version.")
        org.require(Action.READ, *version_paths(version))
        return version
