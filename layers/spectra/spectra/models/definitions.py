"""Definitions: metric definitions, thing types and their versions, ingestion templates."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from spectra.mapping import pointer_problem
from spectra.metric_values import Aggregation, DataType
from spectra.models.common import HistoryEntry, Page, RequestModel, ResponseModel, Tags, Timestamp
from spectra.properties import PropertyDefinition

MetricName = Annotated[str, Field(min_length=1, max_length=100)]
DisplayName = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=2000)]
ThingTypeName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,99}$",
        description="Letters, digits, space, _ . - (it names the type in scopes: THING/{name}/…)",
    ),
]
MetricId = Annotated[str, Field(pattern=r"^mdef_[0-9a-f]{32}$", description="A metric definition id (mdef_…)")]
MAX_METRICS_PER_TYPE = 200
MAX_PROPERTY_DEFINITIONS = 100
MAX_ENUM_VALUES = 500


# -- metric definitions ----------------------------------------------------------------------


class EnumValue(RequestModel):
    code: int = Field(ge=-(2**31), le=2**31 - 1)
    label: str = Field(min_length=1, max_length=100)


def _unique_codes(values: list[EnumValue] | None) -> list[EnumValue] | None:
    if values is not None:
        codes = [value.code for value in values]
        if len(codes) != len(set(codes)):
            raise ValueError("enum codes must be unique")
    return values


class MetricFields(RequestModel):
    """The mutable fields of a metric definition."""

    displayName: DisplayName | None = None
    description: Description | None = None
    unitLabel: str | None = Field(default=None, max_length=50)
    tags: Tags = Field(default_factory=list)
    enumValues: list[EnumValue] | None = Field(default=None, max_length=MAX_ENUM_VALUES)

    _codes = field_validator("enumValues")(_unique_codes)


class CreateMetricRequest(MetricFields):
    name: MetricName
    dataType: DataType
    defaultAggregation: Aggregation


class ReplaceMetricRequest(MetricFields):
    """PUT: the mutable fields replace the current ones; immutable ones may be repeated unchanged."""

    name: MetricName | None = None
    dataType: DataType | None = None
    defaultAggregation: Aggregation | None = None


class Metric(ResponseModel):
    metricId: str
    name: str
    displayName: str | None = None
    dataType: DataType
    defaultAggregation: Aggregation
    unitLabel: str | None = None
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    enumValues: list[EnumValue] | None = None
    isDeleted: bool = False
    deletedAt: Timestamp | None = None
    deletedBy: str | None = None
    createdAt: Timestamp
    updatedAt: Timestamp
    createdBy: str
    updatedBy: str
    history: list[HistoryEntry] = Field(default_factory=list)


MetricPage = Page[Metric]


class AggregationRule(ResponseModel):
    dataType: DataType
    aggregations: list[Aggregation]
    enumAggregations: list[Aggregation] | None = Field(
        default=None, description="Allowed when the metric has enumValues (Int only)"
    )


class MetricSchema(ResponseModel):
    dataTypes: list[AggregationRule]


# -- thing types -----------------------------------------------------------------------------


def _unique_metric_ids(values: list[str] | None) -> list[str] | None:
    if values is not None and len(values) != len(set(values)):
        raise ValueError("metricIds must not repeat")
    return values


class ThingTypeMetadata(RequestModel):
    """What a version's PUT may change: descriptive metadata only."""

    displayName: ThingTypeName | None = None
    description: Description | None = None
    tags: Tags = Field(default_factory=list)
    modelMetadata: dict[str, Any] | None = Field(default=None, description="Free-form model information")


class CreateThingTypeRequest(ThingTypeMetadata):
    displayName: ThingTypeName
    metricIds: list[MetricId] = Field(default_factory=list, max_length=MAX_METRICS_PER_TYPE)
    propertyDefinitions: list[PropertyDefinition] = Field(default_factory=list, max_length=MAX_PROPERTY_DEFINITIONS)

    _metrics = field_validator("metricIds")(_unique_metric_ids)


class CreateThingTypeVersionRequest(ThingTypeMetadata):
    """A full snapshot; omitted ``propertyDefinitions`` inherit from the latest version, ``[]`` clears."""

    displayName: ThingTypeName | None = None
    metricIds: list[MetricId] = Field(max_length=MAX_METRICS_PER_TYPE)
    propertyDefinitions: list[PropertyDefinition] | None = Field(default=None, max_length=MAX_PROPERTY_DEFINITIONS)

    _metrics = field_validator("metricIds")(_unique_metric_ids)


class UpdateThingTypeVersionRequest(ThingTypeMetadata):
    """PUT on a version: metadata only; ``metricIds``/``propertyDefinitions`` may be repeated unchanged."""

    metricIds: list[MetricId] | None = None
    propertyDefinitions: list[PropertyDefinition] | None = None


class VersionRef(ResponseModel):
    version: int
    thingTypeDefId: str


class ThingType(ResponseModel):
    thingTypeId: str
    displayName: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    latestThingTypeDefId: str
    latestVersionNumber: int
    versions: list[VersionRef]
    isDeleted: bool = False
    deletedAt: Timestamp | None = None
    deletedBy: str | None = None
    createdAt: Timestamp
    updatedAt: Timestamp
    createdBy: str
    updatedBy: str
    history: list[HistoryEntry] = Field(default_factory=list)


ThingTypePage = Page[ThingType]


class ThingTypeVersion(ResponseModel):
    thingTypeDefId: str
    thingTypeId: str
    version: int
    displayName: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    modelMetadata: dict[str, Any] | None = None
    metricIds: list[str]
    deletedMetricIds: list[str] = Field(default_factory=list)
    propertyDefinitions: list[dict[str, Any]] = Field(default_factory=list)
    metricDefinitions: list[Metric] | None = Field(default=None, description="With includeMetricDefinitions=true")
    createdAt: Timestamp
    updatedAt: Timestamp
    createdBy: str
    updatedBy: str


# -- templates -------------------------------------------------------------------------------


def _rfc6901(text: str) -> str:
    problem = pointer_problem(text)
    if problem:
        raise ValueError(f"not an RFC 6901 JSON Pointer: {problem}")
    return text


JsonPointerText = Annotated[
    str,
    # Pointers are kept exactly as written: a space is a legal character of a member name.
    StringConstraints(strip_whitespace=False),
    Field(max_length=500, description="RFC 6901 JSON Pointer ('' = the whole value)"),
    AfterValidator(_rfc6901),
]


class TimestampSpec(RequestModel):
    pointer: JsonPointerText
    format: Literal["epochMillis", "epochSeconds", "iso8601"]


class FieldMapping(RequestModel):
    pointer: JsonPointerText
    metricId: MetricId


class TemplateSpec(RequestModel):
    recordsPointer: JsonPointerText = Field(default="", description="Where the array of records is ('' = the root)")
    timestamp: TimestampSpec
    mappings: list[FieldMapping] = Field(min_length=1, max_length=MAX_METRICS_PER_TYPE)


class CreateTemplateRequest(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    target: Literal["ThingData"] = "ThingData"
    format: Literal["JsonPointer"] = "JsonPointer"
    spec: TemplateSpec
    description: Description | None = None
    tags: Tags = Field(default_factory=list)


class ReplaceTemplateRequest(RequestModel):
    """PUT: replaces name, spec, description and tags; ``target``/``format`` may repeat unchanged."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    target: Literal["ThingData"] | None = None
    format: Literal["JsonPointer"] | None = None
    spec: TemplateSpec
    description: Description | None = None
    tags: Tags = Field(default_factory=list)


class Template(ResponseModel):
    templateId: str
    name: str
    target: str
    format: str
    spec: dict[str, Any]
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    revision: int
    isDeleted: bool = False
    deletedAt: Timestamp | None = None
    deletedBy: str | None = None
    createdAt: Timestamp
    updatedAt: Timestamp
    createdBy: str
    updatedBy: str
    history: list[HistoryEntry] = Field(default_factory=list)


TemplatePage = Page[Template]


class TemplateTestRequest(RequestModel):
    payload: Any = Field(description="A sample payload, as a device or integration would send it")


class MappedRecord(ResponseModel):
    timestamp: int = Field(description="Epoch milliseconds")
    metrics: dict[str, Any] = Field(description="Values by metric name")


class SkippedRecord(ResponseModel):
    index: int
    reason: str


class FieldProblem(ResponseModel):
    index: int
    pointer: str
    metricId: str | None = None
    reason: str | None = None


class ApplyReport(ResponseModel):
    recordsParsed: int
    readingsWritten: int
    metricValuesWritten: int
    recordsSkipped: list[SkippedRecord] = Field(default_factory=list)
    metricsSkippedNotOnType: list[str] = Field(default_factory=list)
    fieldsSkippedMissing: list[FieldProblem] = Field(default_factory=list)
    fieldsInvalid: list[FieldProblem] = Field(default_factory=list)


class TemplateTestResult(ResponseModel):
    records: list[MappedRecord]
    report: ApplyReport
