"""Telemetry ingest bodies and responses (API.md "Telemetry")."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictInt

from spectra.models.common import RequestModel, ResponseModel
from spectra.models.definitions import ApplyReport

MAX_FRAMES = 1000
MAX_METRICS_PER_FRAME = 200
EpochMillis = Annotated[StrictInt, Field(ge=0, description="Unix epoch milliseconds")]


class Frame(RequestModel):
    timestamp: EpochMillis
    metrics: dict[Annotated[str, Field(min_length=1, max_length=100)], Any] = Field(
        min_length=1, max_length=MAX_METRICS_PER_FRAME, description="Values by metric name (case-insensitive)"
    )


class FramesRequest(RequestModel):
    frames: list[Frame] = Field(min_length=1, max_length=MAX_FRAMES)


class ColumnarRequest(RequestModel):
    columns: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=2, max_length=MAX_METRICS_PER_FRAME + 1, description="One 'timestamp' column and metric names"
    )
    rows: list[list[Any]] = Field(min_length=1, max_length=MAX_FRAMES)


class IngestedMetric(ResponseModel):
    metricId: str
    name: str
    values: int


class IngestResult(ResponseModel):
    thingId: str
    framesIngested: int
    metrics: list[IngestedMetric]


class TemplateIngestResult(ApplyReport):
    thingId: str
    templateId: str
    previewOnly: bool


# -- reads -----------------------------------------------------------------------------------


class SeriesMetric(ResponseModel):
    """A metric in a telemetry read, and how its values were rolled up (``null`` when raw)."""

    metricId: str
    name: str
    dataType: str
    aggregation: str | None = None


class TelemetryItem(ResponseModel):
    timestamp: int = Field(description="Epoch ms of the frame, or of the bin's start when binned")
    metrics: dict[str, Any] = Field(description="Values by metric name")


class ThingTelemetry(ResponseModel):
    """``GET /things/{thingId}/events`` and ``/recent-events``."""

    thingId: str
    metrics: list[SeriesMetric]
    items: list[TelemetryItem]
    continuationToken: str | None = None
    hasMore: bool = False


class PlaceTelemetry(ResponseModel):
    """``GET /sites/{siteId}/timeseries`` and ``/fleets/{fleetId}/timeseries``: every thing in
    the place the key may read, rolled up together."""

    placeId: str
    placeType: str
    thingCount: int = Field(description="Things whose data the series covers")
    metrics: list[SeriesMetric]
    items: list[TelemetryItem]
    continuationToken: str | None = None
    hasMore: bool = False


class SummaryMetric(ResponseModel):
    metricId: str
    name: str
    dataType: str
    value: Any = Field(default=None, description="The newest value inside the retention window, or null")
    timestamp: int | None = None


class ThingSummary(ResponseModel):
    thingId: str
    metrics: list[SummaryMetric]
