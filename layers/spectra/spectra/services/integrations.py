"""Integrations: records validated against the catalog, credentials kept only in Secrets Manager.

Rules kept here:
- a type exists per direction, and its properties are checked: required ones present, plain
  values well formed, secrets only under ``secretProperties`` (never echoed in an error);
- creating is all or nothing: no record without its secret, no secret left without a record;
- PATCH changes editable plain properties, name, metadata and resources, never secrets; the
  secret set is replaced as a whole by ``PUT …/secret-properties``;
- deleting removes the record and its mappings at once and schedules the secret's deletion;
- resources and mappings point at things and places of the caller's org only (else 404).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from spectra.auth.scopes import ANY_SEGMENT, Action, InvalidResourceFilter, ResourceFilter
from spectra.errors import Conflict, FieldError, NotFound, ValidationFailed
from spectra.identifiers import is_guid
from spectra.integrations.catalog import CATALOG, IntegrationType, find_type
from spectra.integrations.secrets import IntegrationSecrets
from spectra.lifecycle import stamps, touched
from spectra.models.common import to_iso, utc_now
from spectra.models.integrations import (
    MAX_SECRET_BYTES,
    CreateIntegrationRequest,
    CreateResourceMappingRequest,
    Integration,
    IntegrationCatalog,
    IntegrationPage,
    IntegrationResource,
    IntegrationTypeView,
    PropertyView,
    ResourceMapping,
    ResourceMappingPage,
    SecretPropertiesRequest,
    UpdateIntegrationRequest,
)
from spectra.observability import logger, metrics
from spectra.pagination import PageRequest, PageTokens
from spectra.repositories.integrations import MAPPINGS_PER_TRANSACTION, IntegrationRepository
from spectra.repositories.places import PlaceRepository
from spectra.repositories.things import ThingRepository
from spectra.services.listing import list_page
from spectra.services.things import paths_of
from spectra.tenancy.context import OrgContext

NOT_FOUND = "No such integration."
DELETE_ATTEMPTS = 4
RECORD_FIELDS = (
    "integrationId",
    "integrationName",
    "integrationDirection",
    "integrationType",
    "properties",
    "metaData",
    "resources",
    "secretPropertyNames",
    "secretsUpdatedAt",
)


def integration_path(direction: str, type_name: str, integration_id: str) -> str:
    return f"INTEGRATION/{direction}/{type_name}/{integration_id}"


def path_of(record: Mapping[str, Any]) -> str:
    """The scope path of an integration record (or of a mapping, which carries the same fields)."""
    return integration_path(record["integrationDirection"], record["integrationType"], record["integrationId"])


def to_integration(record: Mapping[str, Any]) -> Integration:
    """The API's view of a record: built from named fields, so the secret's ARN and version,
    which the record keeps, are never shown."""
    return Integration.model_validate(
        {
            **{name: record.get(name) for name in RECORD_FIELDS if record.get(name) is not None},
            "createdAt": record["createdAt"],
            "updatedAt": record["updatedAt"],
            "createdBy": record["createdBy"],
            "updatedBy": record["updatedBy"],
        }
    )


def catalog() -> IntegrationCatalog:
    return IntegrationCatalog(
        types=[
            IntegrationTypeView(
                direction=entry.direction,
                type=entry.type,
                displayName=entry.display_name,
                properties=[
                    PropertyView(name=p.name, required=p.required, editable=p.editable, secret=p.secret)
                    for p in entry.properties
                ],
            )
            for entry in CATALOG
        ]
    )


def _plain_problems(
    kind: IntegrationType, properties: Mapping[str, Any], *, creating: bool, field: str = "properties"
) -> list[FieldError]:
    """What is wrong with plain property values (names and rules only: values are not echoed)."""
    problems: list[FieldError] = []
    for name, value in properties.items():
        spec = kind.plain.get(name)
        if spec is None:
            reason = (
                "is a secret property: send it in secretProperties"
                if name in kind.secrets
                else f"is not a property of {kind.direction}/{kind.type}"
            )
            problems.append(FieldError(f"{field}.{name}", reason))
        elif value is not None and spec.pattern is not None and not re.fullmatch(spec.pattern, str(value)):
            problems.append(FieldError(f"{field}.{name}", "is not in the expected format"))
    if creating:
        for name, spec in kind.plain.items():
            if spec.required and properties.get(name) is None:
                problems.append(FieldError(f"{field}.{name}", "is required"))
    return problems


def _secret_problems(kind: IntegrationType, secrets: Mapping[str, str], field: str) -> list[FieldError]:
    problems = [
        FieldError(f"{field}.{name}", f"is not a secret property of {kind.direction}/{kind.type}")
        for name in secrets
        if name not in kind.secrets
    ]
    problems += [
        FieldError(f"{field}.{name}", "is required")
        for name, spec in kind.secrets.items()
        if spec.required and name not in secrets
    ]
    if len(json.dumps(dict(secrets)).encode("utf-8")) > MAX_SECRET_BYTES:
        problems.append(FieldError(field, f"the secret values together exceed {MAX_SECRET_BYTES} bytes"))
    return problems


class IntegrationService:
    def __init__(
        self,
        integrations: IntegrationRepository,
        secrets: IntegrationSecrets,
        things: ThingRepository,
        places: PlaceRepository,
        *,
        page_tokens: PageTokens,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._integrations = integrations
        self._secrets = secrets
        self._things = things
        self._places = places
        self._page_tokens = page_tokens
        self._clock = clock

    # -- integrations -----------------------------------------------------------------------

    def create(self, org: OrgContext, request: CreateIntegrationRequest) -> Integration:
        kind = find_type(request.integrationDirection, request.integrationType)
        if kind is None:
            raise ValidationFailed.single(
                "integrationType",
                f"not a {request.integrationDirection.value} integration type (see GET /v2/integrations/mapping)",
            )
        integration_id = str(uuid.uuid4())
        org.require(Action.WRITE, integration_path(kind.direction, kind.type, integration_id))
        problems = _plain_problems(kind, request.properties, creating=True)
        problems += _secret_problems(kind, request.secretProperties, "secretProperties")
        resources = self._resources(org, request.resources, problems)
        if problems:
            raise ValidationFailed(problems)
        moment = self._clock()
        now = to_iso(moment)
        record: dict[str, Any] = {
            **stamps(org, moment),
            "integrationId": integration_id,
            "integrationName": request.integrationName,
            "integrationDirection": kind.direction.value,
            "integrationType": kind.type,
            "properties": dict(request.properties),
            "metaData": dict(request.metaData),
            "resources": resources,
            "secretPropertyNames": sorted(request.secretProperties),
        }
        stored = None
        if request.secretProperties:
            stored = self._secrets.create(org, integration_id, request.secretProperties)
            record.update(secretArn=stored.arn, secretVersionId=stored.version_id, secretsUpdatedAt=now)
        try:
            self._integrations.create(org, record)
        except Exception:
            if stored is not None:
                self._secrets.discard(org, stored.arn)  # no secret outlives a record never written
            raise
        metrics.add_metric(name="IntegrationsCreated", unit="Count", value=1)
        return to_integration(record)

    def get(self, org: OrgContext, integration_id: str, action: Action = Action.READ) -> dict[str, Any]:
        record = self._integrations.get(org, integration_id) if is_guid(integration_id) else None
        if record is None:
            raise NotFound(NOT_FOUND)
        org.require(action, path_of(record))
        return record

    def list_integrations(
        self, org: OrgContext, page: PageRequest, *, direction: str | None, type_name: str | None
    ) -> IntegrationPage:
        def wanted(record: dict[str, Any]) -> bool:
            return (
                (direction is None or record["integrationDirection"] == direction)
                and (type_name is None or record["integrationType"] == type_name)
                and org.can(Action.READ, path_of(record))
            )

        listed = list_page(
            org,
            self._page_tokens,
            route="integrations",
            filters={"direction": direction, "type": type_name},
            page=page,
            query=self._integrations.page,
            keep=wanted,
        )
        return listed.to(IntegrationPage, to_integration)

    def update(self, org: OrgContext, integration_id: str, request: UpdateIntegrationRequest) -> Integration:
        if "secretProperties" in request.model_fields_set:
            raise ValidationFailed.single(
                "secretProperties",
                "secrets cannot be changed with PATCH; replace them with PUT /v2/integrations/{integrationId}"
                "/secret-properties",
            )
        record = self.get(org, integration_id, Action.WRITE)
        kind = find_type(record["integrationDirection"], record["integrationType"])
        if kind is None:  # a type retired from the catalog: its integrations can only be deleted
            raise ValidationFailed.single("integrationType", "this integration type is no longer supported")
        sent = request.model_fields_set
        problems: list[FieldError] = []
        changes: dict[str, Any] = {}
        if "integrationName" in sent:
            if request.integrationName is None:
                problems.append(FieldError("integrationName", "cannot be null"))
            else:
                changes["integrationName"] = request.integrationName
        if request.properties is not None:
            problems += _plain_problems(kind, request.properties, creating=False)
            merged = dict(record.get("properties") or {})
            for name, value in request.properties.items():
                spec = kind.plain.get(name)
                if spec is None:
                    continue
                if not spec.editable and value != merged.get(name):
                    problems.append(FieldError(f"properties.{name}", "is fixed at creation"))
                elif value is None and spec.required:
                    problems.append(FieldError(f"properties.{name}", "is required and cannot be removed"))
                elif value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = value
            changes["properties"] = merged
        if request.metaData is not None:
            changes["metaData"] = dict(request.metaData)
        if request.resources is not None:
            changes["resources"] = self._resources(org, request.resources, problems)
        if problems:
            raise ValidationFailed(problems)
        if not changes:
            return to_integration(record)
        updated = self._integrations.update(
            org, integration_id, {**changes, **touched(org, self._clock())}, seen_updated_at=record["updatedAt"]
        )
        return to_integration(updated)

    def replace_secrets(self, org: OrgContext, integration_id: str, request: SecretPropertiesRequest) -> Integration:
        """Rotation: the new set replaces every previous value (a new secret version)."""
        record = self.get(org, integration_id, Action.WRITE)
        kind = find_type(record["integrationDirection"], record["integrationType"])
        if kind is None:
            raise ValidationFailed.single("integrationType", "this integration type is no longer supported")
        problems = _secret_problems(kind, request.secretProperties, "secretProperties")
        if problems:
            raise ValidationFailed(problems)
        moment = self._clock()
        changes: dict[str, Any] = {
            "secretPropertyNames": sorted(request.secretProperties),
            "secretsUpdatedAt": to_iso(moment),
        }
        created = None
        arn = str(record.get("secretArn") or "")
        if arn:
            changes["secretVersionId"] = self._secrets.stage(org, arn, request.secretProperties)
        else:
            created = self._secrets.create(org, integration_id, request.secretProperties)
            changes.update(secretArn=created.arn, secretVersionId=created.version_id)
        try:
            updated = self._integrations.update(
                org, integration_id, {**changes, **touched(org, moment)}, seen_updated_at=record["updatedAt"]
            )
        except Exception:
            # The record decides which rotation wins; a loser leaves the secret as it was.
            if created is not None:
                self._secrets.discard(org, created.arn)
            else:
                self._secrets.drop_pending(org, arn, changes["secretVersionId"])
            raise
        if arn:
            # Promote whatever the record names now (a later rotation may have won meanwhile),
            # so concurrent rotations converge on the record's version.
            latest = self._integrations.get(org, integration_id) or updated
            self._secrets.make_current(org, arn, str(latest.get("secretVersionId") or changes["secretVersionId"]))
        return to_integration(updated)

    def delete(self, org: OrgContext, integration_id: str) -> None:
        """Gone at once (record and mappings); the secret waits out its recovery window."""
        record = self.get(org, integration_id, Action.WRITE)
        for attempt in range(DELETE_ATTEMPTS):
            try:
                self._delete_mappings_of(org, integration_id)
                self._integrations.delete(org, integration_id, seen_updated_at=record["updatedAt"])
                break
            except Conflict:
                # A mapping created meanwhile, or one the index still listed after its delete:
                # read again. A change to the record itself stays a 409 for the caller.
                current = self._integrations.get(org, integration_id)
                if current is None or current["updatedAt"] != record["updatedAt"] or attempt + 1 == DELETE_ATTEMPTS:
                    raise
                time.sleep(0.05 * 2**attempt)
        if record.get("secretArn"):
            try:
                self._secrets.schedule_deletion(org, str(record["secretArn"]))
            except Exception:
                # The record is gone; the secret (tagged with org and integration) is left for an
                # operator, and the alarm on this metric says so.
                logger.exception("An integration's secret could not be scheduled for deletion")
                metrics.add_metric(name="IntegrationSecretsLeftBehind", unit="Count", value=1)

    # -- resource mappings ------------------------------------------------------------------

    def create_mapping(self, org: OrgContext, request: CreateResourceMappingRequest) -> ResourceMapping:
        integration = self.get(org, request.integrationId, Action.WRITE)
        self._require_resource(org, request.resourceType, request.resourceId)
        mapping = {
            "mappingId": str(uuid.uuid4()),
            "integrationId": integration["integrationId"],
            "integrationDirection": integration["integrationDirection"],
            "integrationType": integration["integrationType"],
            "externalId": request.externalId,
            "resourceType": request.resourceType,
            "resourceId": request.resourceId,
            "metadata": dict(request.metadata),
            **stamps(org, self._clock()),
        }
        self._integrations.create_mapping(org, mapping)
        return ResourceMapping.model_validate(mapping)

    def list_mappings(self, org: OrgContext, integration_id: str | None, page: PageRequest) -> ResourceMappingPage:
        if integration_id is not None:
            self.get(org, integration_id)

        def wanted(mapping: dict[str, Any]) -> bool:
            return org.can(Action.READ, path_of(mapping))

        def query(org: OrgContext, **kwargs: Any) -> Any:
            return self._integrations.mappings_page(org, integration_id, **kwargs)

        listed = list_page(
            org,
            self._page_tokens,
            route="resource-mappings",
            filters={"integrationId": integration_id},
            page=page,
            query=query,
            keep=wanted,
        )
        return listed.to(ResourceMappingPage, ResourceMapping.model_validate)

    def get_mapping(self, org: OrgContext, mapping_id: str, action: Action = Action.READ) -> dict[str, Any]:
        mapping = self._integrations.get_mapping(org, mapping_id) if is_guid(mapping_id) else None
        if mapping is None:
            raise NotFound("No such resource mapping.")
        org.require(action, path_of(mapping))
        return mapping

    def delete_mapping(self, org: OrgContext, mapping_id: str) -> None:
        mapping = self.get_mapping(org, mapping_id, Action.WRITE)
        self._integrations.delete_mappings(org, str(mapping["integrationId"]), [mapping])

    # -- helpers ----------------------------------------------------------------------------

    def _delete_mappings_of(self, org: OrgContext, integration_id: str) -> None:
        """Every mapping of the integration, a transaction of up to 49 at a time (at most
        1,000 of them, so a delete stays well inside the request's time)."""
        while True:
            page = self._integrations.mappings_page(
                org, integration_id, limit=MAPPINGS_PER_TRANSACTION, start_after=None, keep=lambda _mapping: True
            )
            if not page.items:
                return
            self._integrations.delete_mappings(org, integration_id, page.items)

    def _resources(
        self, org: OrgContext, resources: Sequence[IntegrationResource], problems: list[FieldError]
    ) -> list[dict[str, Any]]:
        """Resource paths as stored, each naming things and places of this org that exist."""
        stored: list[dict[str, Any]] = []
        for index, resource in enumerate(resources):
            field = f"resources[{index}].path"
            try:
                segments = ResourceFilter.parse(resource.path).segments
            except InvalidResourceFilter as error:
                problems.append(FieldError(field, str(error)))
                continue
            if not segments or segments[0] not in ("PLACE", "THING"):
                problems.append(FieldError(field, "must be a PLACE/… or THING/… path"))
                continue
            checks: list[tuple[str, str]] = []
            if segments[0] == "PLACE" and len(segments) > 2 and segments[2] != ANY_SEGMENT:
                checks.append((segments[1], segments[2]))
            thing_at = 5 if segments[0] == "PLACE" else 2
            if len(segments) > thing_at and segments[thing_at] != ANY_SEGMENT:
                checks.append(("Thing", segments[thing_at]))
            for resource_type, resource_id in checks:
                paths = None if resource_type == ANY_SEGMENT else self._scope_paths(org, resource_type, resource_id)
                if paths is None:
                    problems.append(FieldError(field, f"names no {resource_type.lower()} of this organization"))
                else:
                    org.require(Action.READ, *paths)
            stored.append({"path": "/".join(segments), "metadata": dict(resource.metadata)})
        return stored

    def _scope_paths(self, org: OrgContext, resource_type: str, resource_id: str) -> tuple[str, ...] | None:
        """The scope paths of a thing, site or fleet of this org (one read), or ``None``."""
        if not is_guid(resource_id):
            return None
        if resource_type == "Thing":
            thing = self._things.get(org, resource_id)
            return paths_of(thing) if thing is not None else None
        place = (
            self._places.get_site(org, resource_id)
            if resource_type == "Site"
            else self._places.get_fleet(org, resource_id)
        )
        return (f"PLACE/{resource_type}/{resource_id}",) if place is not None else None

    def _require_resource(self, org: OrgContext, resource_type: str, resource_id: str) -> None:
        """The resource exists in this org (404 otherwise) and the key may read it."""
        paths = self._scope_paths(org, resource_type, resource_id)
        if paths is None:
            raise NotFound(f"No such {resource_type.lower()}.")
        org.require(Action.READ, *paths)
