"""Places: sites (with their level tree) and fleets."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from spectra.models.common import Page, RequestModel, ResponseModel, Timestamp

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
AttributeValue = str | int | float | bool | None
Attributes = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=100)], AttributeValue],
    Field(max_length=100, description="Name/value pairs (scalars)"),
]
LevelTypeName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9 _-]{0,49}$")]
MetricIdText = Annotated[str, Field(pattern=r"^mdef_[0-9a-f]{32}$")]
MAX_LEVEL_TYPES = 50


class LevelTypeRule(RequestModel):
    """One kind of level in a site and where it may sit in the tree."""

    levelType: LevelTypeName
    canBeRoot: bool = False
    allowedParentTypes: list[LevelTypeName] = Field(default_factory=list, max_length=MAX_LEVEL_TYPES)


DEFAULT_LEVEL_TYPES: list[dict[str, Any]] = [
    {"levelType": "Building", "canBeRoot": True, "allowedParentTypes": []},
    {"levelType": "Floor", "canBeRoot": False, "allowedParentTypes": ["Building"]},
    {"levelType": "Room", "canBeRoot": False, "allowedParentTypes": ["Floor"]},
    {"levelType": "Zone", "canBeRoot": True, "allowedParentTypes": ["Building", "Floor"]},
]


def _check_level_types(rules: list[LevelTypeRule] | None) -> None:
    if rules is None:
        return
    names = [rule.levelType for rule in rules]
    if len(names) != len(set(names)):
        raise ValueError("levelTypes: each levelType must be named once")
    for rule in rules:
        unknown = [p for p in rule.allowedParentTypes if p not in names]
        if unknown:
            raise ValueError(f"levelTypes: {rule.levelType} names unknown parent types {unknown}")
    if rules and not any(rule.canBeRoot for rule in rules):
        raise ValueError("levelTypes: at least one type must be allowed at the root")


class _Coordinates(RequestModel):
    latitude: Latitude | None = None
    longitude: Longitude | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> _Coordinates:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: give both or neither")
        return self


class CreateSiteRequest(_Coordinates):
    siteName: Annotated[str, Field(min_length=1, max_length=200)]
    address: Annotated[str, Field(min_length=1, max_length=500)]
    latitude: Latitude
    longitude: Longitude
    attributes: Attributes = Field(default_factory=dict)
    preferredDisplayMetrics: list[MetricIdText] = Field(default_factory=list, max_length=20)
    levelTypes: list[LevelTypeRule] | None = Field(default=None, max_length=MAX_LEVEL_TYPES)

    @model_validator(mode="after")
    def _valid_level_types(self) -> CreateSiteRequest:
        _check_level_types(self.levelTypes)
        return self


class UpdateSiteRequest(RequestModel):
    """PATCH: absent fields are unchanged."""

    siteName: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    address: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    attributes: Attributes | None = None
    preferredDisplayMetrics: list[MetricIdText] | None = Field(default=None, max_length=20)
    levelTypes: list[LevelTypeRule] | None = Field(default=None, max_length=MAX_LEVEL_TYPES)

    @model_validator(mode="after")
    def _valid(self) -> UpdateSiteRequest:
        if ("latitude" in self.model_fields_set) != ("longitude" in self.model_fields_set):
            raise ValueError("latitude and longitude go together: give both or neither")
        _check_level_types(self.levelTypes)
        return self


class Site(ResponseModel):
    siteId: str
    siteName: str
    address: str
    latitude: float
    longitude: float
    attributes: dict[str, Any] = Field(default_factory=dict)
    preferredDisplayMetrics: list[str] = Field(default_factory=list)
    levelTypes: list[LevelTypeRule]
    levelCount: int = 0
    thingCount: int = 0
    createdAt: Timestamp
    updatedAt: Timestamp
    createdBy: str
    updatedBy: str


SitePage = Page[Site]


class CreateLevelRequest(_Coordinates):
    levelType: LevelTypeName
    levelName: Annotated[str, Field(min_length=1, max_length=200)]
    parentLevelId: str | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    attributes: Attributes = Field(default_factory=dict)


class UpdateLevelRequest(RequestModel):
    """PATCH: absent fields are unchanged; ``parentLevelId`` moves the level (null = to the root)."""

    levelName: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    levelType: LevelTypeName | None = Field(default=None, description="Fixed: may only repeat the current type")
    parentLevelId: str | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    attributes: Attributes | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class Level(ResponseModel):
    levelId: str
    siteId: str
    levelType: str
    levelName: str
    parentLevelId: str | None = None
    description: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    latitude: float | None = None
    longitude: float | None = None
    childCount: int = 0
    thingCount: int = 0
    createdAt: Timestamp
    updatedAt: Timestamp
    createdBy: str
    updatedBy: str


class LevelNode(Level):
    children: list[LevelNode] = Field(default_factory=list)


LevelTree = Page[LevelNode]


class CreateFleetRequest(_Coordinates):
    fleetName: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] | None = None
    attributes: Attributes = Field(default_factory=dict)


class UpdateFleetRequest(RequestModel):
    fleetName: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    attributes: Attributes | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> UpdateFleetRequest:
        if ("latitude" in self.model_fields_set) != ("longitude" in self.model_fields_set):
            raise ValueError("latitude and longitude go together: give both or neither")
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: set both or clear both")
        return self


class Fleet(ResponseModel):
    fleetId: str
    fleetName: str
    description: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    thingCount: int = 0
    createdAt: Timestamp
    updatedAt: Timestamp
    createdBy: str
    updatedBy: str


FleetPage = Page[Fleet]
