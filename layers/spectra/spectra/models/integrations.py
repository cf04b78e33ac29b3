"""Integrations (API.md "Integrations"): bodies and responses. No response model has a field
that could carry a secret value: secrets are write-only by construction, not by filtering."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from spectra.integrations.catalog import Direction
from spectra.models.common import Page, RequestModel, ResponseModel, Timestamp

PropertyName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
PlainValue = Annotated[str, Field(max_length=2048)] | int | float | bool
SecretValue = Annotated[str, Field(min_length=1, max_length=4096)]
MetaData = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=100)], str | int | float | bool | None],
    Field(max_length=50, description="Free-form name/value pairs"),
]
SecretProperties = Annotated[
    dict[PropertyName, SecretValue],
    Field(max_length=20, description="Secret values by name (write-only: never returned)"),
]
MAX_SECRET_BYTES = 16_384


class IntegrationResource(RequestModel):
    path: Annotated[str, Field(min_length=1, max_length=300, description="A resource path, e.g. PLACE/Site/{siteId}")]
    metadata: MetaData = Field(default_factory=dict)


class CreateIntegrationRequest(RequestModel):
    integrationName: Annotated[str, Field(min_length=1, max_length=100)]
    integrationDirection: Direction
    integrationType: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")]
    properties: dict[PropertyName, PlainValue] = Field(default_factory=dict, max_length=50)
    metaData: MetaData = Field(default_factory=dict)
    resources: list[IntegrationResource] = Field(default_factory=list, max_length=100)
    secretProperties: SecretProperties = Field(default_factory=dict)


class UpdateIntegrationRequest(RequestModel):
    """PATCH: name, editable properties (``null`` removes an optional one), metadata, resources.
    Secrets are not accepted here: they change only with ``PUT …/secret-properties``."""

    integrationName: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    properties: dict[PropertyName, PlainValue | None] | None = Field(default=None, max_length=50)
    metaData: MetaData | None = None
    resources: list[IntegrationResource] | None = Field(default=None, max_length=100)
    secretProperties: SkipJsonSchema[Any] = None
    """Declared only to refuse it with a clear message (and never echo what was sent)."""


class SecretPropertiesRequest(RequestModel):
    """The whole new set of secret values (replaces every previous one)."""

    secretProperties: SecretProperties


class Integration(ResponseModel):
    integrationId: str
    integrationName: str
    integrationDirection: Direction
    integrationType: str
    properties: dict[str, Any] = Field(default_factory=dict)
    metaData: dict[str, Any] = Field(default_factory=dict)
    resources: list[dict[str, Any]] = Field(default_factory=list)
    secretPropertyNames: list[str] = Field(default_factory=list, description="Names only; values are never shown")
    secretsUpdatedAt: Timestamp | None = None
    createdAt: Timestamp
    updatedAt: Timestamp
    createdBy: str
    updatedBy: str


IntegrationPage = Page[Integration]


class PropertyView(ResponseModel):
    name: str
    required: bool
    editable: bool
    secret: bool


class IntegrationTypeView(ResponseModel):
    direction: Direction
    type: str
    displayName: str
    properties: list[PropertyView]


class IntegrationCatalog(ResponseModel):
    types: list[IntegrationTypeView]


class CreateResourceMappingRequest(RequestModel):
    """Links a remote system's id (a vehicle, a meter) to a thing or place of the org."""

    integrationId: Annotated[str, Field(min_length=1, max_length=64)]
    externalId: Annotated[str, Field(min_length=1, max_length=256, description="The remote system's id")]
    resourceType: Literal["Thing", "Site", "Fleet"]
    resourceId: Annotated[str, Field(min_length=1, max_length=64)]
    metadata: MetaData = Field(default_factory=dict)


class ResourceMapping(ResponseModel):
    mappingId: str
    integrationId: str
    externalId: str
    resourceType: str
    resourceId: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    createdAt: Timestamp
    updatedAt: Timestamp
    createdBy: str
    updatedBy: str


ResourceMappingPage = Page[ResourceMapping]
