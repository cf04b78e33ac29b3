"""Telemetry reads: raw and binned events, recent events, summaries and place timeseries.

Rules kept here:
- nothing older than now minus the org's *current* retention is ever returned, whatever TTL or
  the retention job has or has not deleted yet: every read starts at that floor;
- raw windows are at most 24 hours, binned ones at most 366 days; ``startTime`` is inclusive,
  ``endTime`` exclusive;
- ``selectedFields`` names metrics by id or by name (case-insensitively); an unknown one is a
  400 listing each;
- reads are Queries with key conditions only, paged by signed continuation tokens that carry
  the position (a time or a bin start), bound to the org and the query;
- no request reads more than ``MAX_FRAMES_READ`` frames: a page ends early (``hasMore`` with
  what was found so far, possibly nothing) and the token resumes where the reading stopped, so
  every request fits well inside the API's 29 seconds, however dense the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from spectra.auth.scopes import Action
from spectra.errors import FieldError, InvalidPageToken, NotFound, ValidationFailed
from spectra.identifiers import is_guid
from spectra.metric_values import Aggregation, DataType
from spectra.models.common import epoch_millis, utc_now
from spectra.models.organization import retention_days
from spectra.models.telemetry import (
    PlaceTelemetry,
    SeriesMetric,
    SummaryMetric,
    TelemetryItem,
    ThingSummary,
    ThingTelemetry,
)
from spectra.pagination import PageRequest, PageTokens, query_fingerprint
from spectra.repositories.organizations import OrganizationRepository
from spectra.repositories.places import PlaceRepository
from spectra.repositories.things import ThingRepository
from spectra.services.metrics import MetricService
from spectra.services.thing_types import ThingTypeService
from spectra.services.things import paths_of
from spectra.telemetry.bins import MAX_BIN_VALUE, BinnedPage, BinUnit, bin_millis, merge_ascending, roll_up
from spectra.telemetry.table import OrgTelemetryTable, TelemetryTables
from spectra.tenancy.context import OrgContext

MAX_RAW_WINDOW = timedelta(hours=24)
MAX_BINNED_WINDOW = timedelta(days=366)
MAX_PLACE_METRICS = 20
MAX_PLACE_THINGS = 200
MAX_FRAMES_READ = 50_000
"""Frames one request may read (about 50 Query calls of 1 MB at most)."""
PLACE_STREAM_PAGE = 200
"""Frames read per Query for each thing of a place (a place's things are read side by side)."""
THING_PAGE_SIZE = 100


def _utc(moment: datetime) -> datetime:
    """A query time as UTC; a time without an offset is read as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """What a caller asked for: a time range, an optional bin size, and which metrics."""

    start: datetime
    end: datetime
    bin_unit: BinUnit | None = None
    bin_value: int | None = None
    selected_fields: str | None = None

    @property
    def binned(self) -> bool:
        return self.bin_unit is not None

    @property
    def bin_size_ms(self) -> int | None:
        if self.bin_unit is None or self.bin_value is None:
            return None
        return bin_millis(self.bin_unit, self.bin_value)

    def problems(self, *, bins_required: bool = False) -> list[FieldError]:
        problems: list[FieldError] = []
        start, end = _utc(self.start), _utc(self.end)
        if end <= start:
            problems.append(FieldError("endTime", "must be after startTime"))
        if (self.bin_unit is None) != (self.bin_value is None):
            problems.append(FieldError("binValue", "binUnit and binValue go together: send both or neither"))
        elif bins_required and self.bin_unit is None:
            problems.append(FieldError("binUnit", "required (m, h or d, with binValue)"))
        elif self.bin_unit is not None and self.bin_value is not None:
            most = MAX_BIN_VALUE[self.bin_unit]
            if not 1 <= self.bin_value <= most:
                problems.append(FieldError("binValue", f"must be 1-{most} for binUnit {self.bin_unit.value}"))
        longest = MAX_BINNED_WINDOW if self.binned or bins_required else MAX_RAW_WINDOW
        if end - start > longest:
            kind = "binned" if self.binned or bins_required else "raw (no binUnit)"
            problems.append(FieldError("endTime", f"a {kind} window is at most {_describe(longest)}"))
        return problems

    def filters(self, metric_ids: Sequence[str]) -> dict[str, Any]:
        """What makes this query this query (a continuation token is bound to it)."""
        return {
            "start": epoch_millis(_utc(self.start)),
            "end": epoch_millis(_utc(self.end)),
            "bin": f"{self.bin_value}{self.bin_unit.value}" if self.bin_unit else None,
            "metrics": sorted(metric_ids),
        }


def _describe(span: timedelta) -> str:
    return f"{span.days} days" if span.days > 1 else f"{int(span.total_seconds() // 3600)} hours"


def _typed_frames(
    frames: Iterator[dict[str, Any]], metrics: Mapping[str, Mapping[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Frames whose Double values read back as floats (the store keeps 3.0 as the number 3)."""
    doubles = [metric_id for metric_id, metric in metrics.items() if metric["dataType"] == DataType.DOUBLE]
    for frame in frames:
        values = frame.get("values") or {}
        for metric_id in doubles:
            if metric_id in values:
                values[metric_id] = float(values[metric_id])
        yield frame


def select_metrics(
    available: Mapping[str, Mapping[str, Any]], selected_fields: str | None, *, field: str = "selectedFields"
) -> dict[str, Mapping[str, Any]]:
    """The metrics a read covers: all of ``available``, or those named in ``selected_fields``
    (comma-separated ids or case-insensitive names), in the order given."""
    if selected_fields is None:
        return dict(sorted(available.items(), key=lambda item: str(item[1]["name"]).casefold()))
    by_name = {str(metric["name"]).casefold(): metric_id for metric_id, metric in available.items()}
    chosen: dict[str, Mapping[str, Any]] = {}
    problems: list[FieldError] = []
    wanted = [part.strip() for part in selected_fields.split(",")]
    for index, part in enumerate(wanted):
        metric_id = part if part in available else by_name.get(part.casefold())
        if metric_id is None:
            message = "empty entry" if not part else f"{part!r} is not a metric of these things' type versions"
            problems.append(FieldError(f"{field}[{index}]", message))
        else:
            chosen[metric_id] = available[metric_id]
    if problems:
        raise ValidationFailed(problems)
    return chosen


def _series(metrics: Mapping[str, Mapping[str, Any]], *, binned: bool) -> list[SeriesMetric]:
    return [
        SeriesMetric(
            metricId=metric_id,
            name=str(metric["name"]),
            dataType=str(metric["dataType"]),
            aggregation=str(metric.get("defaultAggregation") or Aggregation.LAST) if binned else None,
        )
        for metric_id, metric in metrics.items()
    ]


def _aggregations(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, Aggregation]:
    return {
        metric_id: Aggregation(str(metric.get("defaultAggregation") or Aggregation.LAST))
        for metric_id, metric in metrics.items()
    }


def _names(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    return {metric_id: str(metric["name"]) for metric_id, metric in metrics.items()}


def _raw_item(frame: Mapping[str, Any], names: Mapping[str, str]) -> TelemetryItem | None:
    values = frame.get("values") or {}
    shown = {name: values[metric_id] for metric_id, name in names.items() if metric_id in values}
    return TelemetryItem(timestamp=int(frame["timestamp"]), metrics=shown) if shown else None


def _position(tokens: PageTokens, org: OrgContext, fingerprint: str, token: str | None, field: str) -> int | None:
    if token is None:
        return None
    position = tokens.read(org, fingerprint, token).get(field)
    if not isinstance(position, int):
        raise InvalidPageToken("The continuation token is malformed.")
    return position


def _raw_page(
    frames: Iterator[dict[str, Any]], names: Mapping[str, str], limit: int, *, newest_first: bool
) -> tuple[list[TelemetryItem], int | None]:
    """Up to ``limit`` frames holding a selected metric, and where the next page starts (a start
    time when ascending, an exclusive end when newest first), or ``None`` when nothing is left.

    Reading ahead by one matching frame makes ``hasMore`` exact; reading stops after
    ``MAX_FRAMES_READ`` frames even if few matched, and the page says where to go on from.
    """
    items: list[TelemetryItem] = []
    for read, frame in enumerate(frames, start=1):
        timestamp = int(frame["timestamp"])
        if read > MAX_FRAMES_READ:
            return items, timestamp + 1 if newest_first else timestamp
        item = _raw_item(frame, names)
        if item is None:
            continue
        if len(items) == limit:
            return items, timestamp + 1 if newest_first else timestamp
        items.append(item)
    return items, None


def _refuse_too_dense(binned: BinnedPage) -> None:
    if binned.too_dense:
        raise ValidationFailed.single(
            "binValue",
            f"a single bin holds more than {MAX_FRAMES_READ} frames; choose a smaller bin",
        )


class TelemetryQueries:
    """Reads of the org's telemetry, each confined to the org's current retention window."""

    def __init__(
        self,
        *,
        things: ThingRepository,
        places: PlaceRepository,
        organizations: OrganizationRepository,
        thing_types: ThingTypeService,
        metrics: MetricService,
        tables: TelemetryTables,
        page_tokens: PageTokens,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._things = things
        self._places = places
        self._organizations = organizations
        self._types = thing_types
        self._metrics = metrics
        self._tables = tables
        self._tokens = page_tokens
        self._clock = clock

    # -- one thing --------------------------------------------------------------------------

    def events(self, org: OrgContext, thing_id: str, window: Window, page: PageRequest) -> ThingTelemetry:
        """Raw frames (window ≤ 24 h) or bins (≤ 366 days), oldest first."""
        problems = window.problems()
        if problems:
            raise ValidationFailed(problems)
        thing, available = self._thing_metrics(org, thing_id)
        metrics = select_metrics(available, window.selected_fields)
        fingerprint = query_fingerprint(f"events:{thing_id}", window.filters(list(metrics)))
        field = "bin" if window.binned else "after"
        resume = _position(self._tokens, org, fingerprint, page.continuation_token, field)
        floor = self._floor(org)
        start = max(epoch_millis(_utc(window.start)), floor, resume if resume is not None else 0)
        end = epoch_millis(_utc(window.end))
        table = self._tables.of(org)
        size_ms = window.bin_size_ms
        if size_ms is not None:
            binned = roll_up(
                _typed_frames(table.frames(thing_id, start, end), metrics),
                size_ms=size_ms,
                aggregations=_aggregations(metrics),
                max_bins=page.limit,
                max_frames=MAX_FRAMES_READ,
            )
            _refuse_too_dense(binned)
            names = _names(metrics)
            items = [TelemetryItem(timestamp=b.start, metrics=b.values(names)) for b in binned.bins]
            next_position = binned.next_bin
        else:
            frames = _typed_frames(table.frames(thing_id, start, end, page_size=page.limit + 1), metrics)
            items, next_position = _raw_page(frames, _names(metrics), page.limit, newest_first=False)
        return ThingTelemetry(
            thingId=thing["thingId"],
            metrics=_series(metrics, binned=window.binned),
            items=items,
            continuationToken=self._next_token(org, fingerprint, field, next_position),
            hasMore=next_position is not None,
        )

    def recent_events(
        self,
        org: OrgContext,
        thing_id: str,
        *,
        cutoff: datetime | None,
        lookback_days: int,
        selected_fields: str | None,
        page: PageRequest,
    ) -> ThingTelemetry:
        """The newest frames at or before ``cutoff`` (default now), newest first."""
        thing, available = self._thing_metrics(org, thing_id)
        metrics = select_metrics(available, selected_fields)
        fingerprint = query_fingerprint(
            f"recent-events:{thing_id}",
            {
                "cutoff": epoch_millis(_utc(cutoff)) if cutoff else None,
                "lookback": lookback_days,
                "metrics": sorted(metrics),
            },
        )
        if page.continuation_token:
            position = self._tokens.read(org, fingerprint, page.continuation_token)
            before, lowest = position.get("before"), position.get("lowest")
            if not isinstance(before, int) or not isinstance(lowest, int):
                raise InvalidPageToken("The continuation token is malformed.")
        else:
            moment = _utc(cutoff) if cutoff else self._clock()
            before = epoch_millis(moment) + 1
            lowest = epoch_millis(moment - timedelta(days=lookback_days))
        start = max(lowest, self._floor(org))
        table = self._tables.of(org)
        frames = _typed_frames(
            table.frames(thing_id, start, before, newest_first=True, page_size=page.limit + 1), metrics
        )
        items, next_before = _raw_page(frames, _names(metrics), page.limit, newest_first=True)
        token = None
        if next_before is not None:
            token = self._tokens.issue(org, fingerprint, {"before": next_before, "lowest": lowest})
        return ThingTelemetry(
            thingId=thing["thingId"],
            metrics=_series(metrics, binned=False),
            items=items,
            continuationToken=token,
            hasMore=token is not None,
        )

    def summary(self, org: OrgContext, thing_id: str, selected_fields: str | None) -> ThingSummary:
        """The newest value and its time for each metric, inside the retention window."""
        thing, available = self._thing_metrics(org, thing_id)
        metrics = select_metrics(available, selected_fields)
        floor = self._floor(org)
        latest = self._tables.of(org).latest_values(thing_id) if metrics else {}
        shown: list[SummaryMetric] = []
        for metric_id, metric in metrics.items():
            entry = latest.get(metric_id)
            visible = entry is not None and int(entry["timestamp"]) >= floor
            if entry is not None and metric["dataType"] == DataType.DOUBLE:
                entry = {**entry, "value": float(entry["value"])}
            shown.append(
                SummaryMetric(
                    metricId=metric_id,
                    name=str(metric["name"]),
                    dataType=str(metric["dataType"]),
                    value=entry["value"] if visible and entry else None,
                    timestamp=int(entry["timestamp"]) if visible and entry else None,
                )
            )
        return ThingSummary(thingId=thing["thingId"], metrics=shown)

    # -- places -----------------------------------------------------------------------------

    def place_timeseries(
        self, org: OrgContext, place_type: str, place_id: str, window: Window, page: PageRequest
    ) -> PlaceTelemetry:
        """Bins over every thing in the place that the key may read, rolled up together."""
        problems = window.problems(bins_required=True)
        if problems:
            raise ValidationFailed(problems)
        self._require_place(org, place_type, place_id)
        things = self._readable_things_in(org, place_id)
        if not things and not org.can(Action.READ, f"PLACE/{place_type}/{place_id}"):
            # Nothing here is the key's to read: as for any resource outside its scopes, 403.
            org.require(Action.READ, f"PLACE/{place_type}/{place_id}")
        if len(things) > MAX_PLACE_THINGS:
            raise ValidationFailed.single(
                "placeId",
                f"the place has {len(things)} things the key may read; a timeseries covers at most "
                f"{MAX_PLACE_THINGS} (read them per thing, or split the place)",
            )
        version_ids = {str(t["thingTypeDefId"]) for t in things if t.get("thingTypeDefId")}
        metric_ids: set[str] = set()
        for version_id in sorted(version_ids):
            version = self._types.resolve_version(org, version_id)
            metric_ids.update(version["metricIds"] if version else [])
        available = dict(self._metrics.resolve(org, sorted(metric_ids)))
        metrics = select_metrics(available, window.selected_fields)
        if len(metrics) > MAX_PLACE_METRICS:
            hint = "choose them with selectedFields" if window.selected_fields is None else "select fewer"
            raise ValidationFailed.single(
                "selectedFields", f"a place timeseries covers at most {MAX_PLACE_METRICS} metrics; {hint}"
            )
        fingerprint = query_fingerprint(f"{place_type}-timeseries:{place_id}", window.filters(list(metrics)))
        resume = _position(self._tokens, org, fingerprint, page.continuation_token, "bin")
        start = max(epoch_millis(_utc(window.start)), self._floor(org), resume if resume is not None else 0)
        end = epoch_millis(_utc(window.end))
        size_ms = window.bin_size_ms
        if size_ms is None:  # problems() has already refused this; kept so the types say so
            raise ValidationFailed.single("binUnit", "required (m, h or d, with binValue)")
        table = self._tables.of(org)
        streams = [self._frames_of(table, str(t["thingId"]), start, end) for t in things] if metrics else []
        binned = roll_up(
            _typed_frames(merge_ascending(streams), metrics),
            size_ms=size_ms,
            aggregations=_aggregations(metrics),
            max_bins=page.limit,
            max_frames=MAX_FRAMES_READ,
        )
        _refuse_too_dense(binned)
        names = _names(metrics)
        return PlaceTelemetry(
            placeId=place_id,
            placeType=place_type,
            thingCount=len(things),
            metrics=_series(metrics, binned=True),
            items=[TelemetryItem(timestamp=b.start, metrics=b.values(names)) for b in binned.bins],
            continuationToken=self._next_token(org, fingerprint, "bin", binned.next_bin),
            hasMore=binned.next_bin is not None,
        )

    # -- helpers ----------------------------------------------------------------------------

    def _thing_metrics(self, org: OrgContext, thing_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The thing (404 if absent or another org's, 403 outside the key's scopes) and the
        metrics of its bound version (none when it is not bound)."""
        thing = self._things.get(org, thing_id)
        if thing is None:
            raise NotFound("No such thing.")
        org.require(Action.READ, *paths_of(thing))
        version_id = thing.get("thingTypeDefId")
        version = self._types.resolve_version(org, str(version_id)) if version_id else None
        if version is None:
            return thing, {}
        return thing, self._metrics.resolve(org, version["metricIds"])

    def _floor(self, org: OrgContext) -> int:
        """The oldest time any read may return: now minus the org's current retention."""
        profile = self._organizations.get(org) or {}
        return epoch_millis(self._clock() - timedelta(days=retention_days(profile)))

    def _require_place(self, org: OrgContext, place_type: str, place_id: str) -> None:
        if not is_guid(place_id):
            raise NotFound(f"No such {place_type.lower()}.")
        place = self._places.get_site(org, place_id) if place_type == "Site" else self._places.get_fleet(org, place_id)
        if place is None:
            raise NotFound(f"No such {place_type.lower()}.")

    def _readable_things_in(self, org: OrgContext, place_id: str) -> list[dict[str, Any]]:
        things: list[dict[str, Any]] = []
        start_after: Mapping[str, str] | None = None
        while True:
            found = self._things.page_in_place(
                org,
                place_id,
                limit=THING_PAGE_SIZE,
                start_after=start_after,
                keep=lambda thing: org.can(Action.READ, *paths_of(thing)),
            )
            things.extend(found.items)
            if found.resume_after is None:
                return sorted(things, key=lambda thing: str(thing["thingId"]))
            start_after = found.resume_after

    @staticmethod
    def _frames_of(table: OrgTelemetryTable, thing_id: str, start: int, end: int) -> Iterator[dict[str, Any]]:
        for frame in table.frames(thing_id, start, end, page_size=PLACE_STREAM_PAGE):
            yield {**frame, "thingId": thing_id}

    def _next_token(self, org: OrgContext, fingerprint: str, field: str, position: int | None) -> str | None:
        return self._tokens.issue(org, fingerprint, {field: position}) if position is not None else None
