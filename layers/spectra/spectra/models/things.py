"""Things: devices in a site (optionally at a level) or a fleet, typed by a thing-type version."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from spectra.models.common import Page, RequestModel, ResponseModel, Timestamp
from spectra.models.places import Attributes, Latitude, Longitude

Text200 = Annotated[str, Field(max_length=200)]


class CreateThingRequest(RequestModel):
    thingName: Annotated[str, Field(min_length=1, max_length=256)]
    thingTypeId: Annotated[str, Field(pattern=r"^tdefi_[0-9a-f]{32}$")]
    thingTypeDefId: Annotated[str, Field(pattern=r"^tdef_[0-9a-f]{32}$")] | None = Field(
        default=None, description="A version of the type; the latest when omitted"
    )
    thingDescription: Annotated[str, Field(max_length=2000)] | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    model: Text200 | None = None
    manufacturer: Text200 | None = None
    thingManufacturerId: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Unique within the thing type"
    )
    isSimulated: bool = False
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    levelId: str | None = Field(default=None, description="A level of the site (sites only)")
    attributes: Attributes = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict, max_length=100)

    @model_validator(mode="after")
    def _both_or_neither(self) -> CreateThingRequest:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: give both or neither")
        return self


class UpdateThingRequest(RequestModel):
    """PATCH: absent = unchanged, explicit null clears (0 is a coordinate, not a clear)."""

    thingName: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    thingDescription: Annotated[str, Field(max_length=2000)] | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    model: Text200 | None = None
    manufacturer: Text200 | None = None
    thingManufacturerId: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    isSimulated: bool | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    attributes: Attributes | None = None
    attributesToDelete: list[str] = Field(default_factory=list, max_length=100)
    properties: dict[str, Any] | None = Field(default=None, max_length=100)
    propertiesToDelete: list[str] = Field(default_factory=list, max_length=100)
    placeId: str | None = Field(default=None, description="Transfer to another site or fleet of the org")
    levelId: str | None = Field(default=None, description="With a site: the level (null = none)")
    thingTypeDefId: Annotated[str, Field(pattern=r"^tdef_[0-9a-f]{32}$")] | None = Field(
        default=None, description="Rebind to another version of the same type"
    )

    @model_validator(mode="after")
    def _coordinates_together(self) -> UpdateThingRequest:
        if ("latitude" in self.model_fields_set) != ("longitude" in self.model_fields_set):
            raise ValueError("latitude and longitude go together: give both or neither")
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: set both or clear both")
        return self


class Thing(ResponseModel):
    thingId: str
    thingName: str
    placeType: Literal["Site", "Fleet"]
    placeId: str
    levelId: str | None = None
    thingTypeId: str
    thingTypeDefId: str
    thingTypeName: str
    thingDescription: str | None = None
    address: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    thingManufacturerId: str | None = None
    isSimulated: bool = False
    latitude: float | None = None
    longitude: float | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    createdAt: Timestamp
    updatedAt: Timestamp
    createdBy: str
    updatedBy: str


ThingPage = Page[Thing]
