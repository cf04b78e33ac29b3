"""The organization as the API shows it."""

from __future__ import annotations

from pydantic import Field

from spectra.models.api_keys import ScopeView
from spectra.models.common import ResponseModel, Timestamp

DEFAULT_RETENTION_DAYS = 365


class CallingKey(ResponseModel):
    keyId: str
    type: str
    name: str
    scopes: list[ScopeView]


class Organization(ResponseModel):
    orgId: str
    name: str
    plan: str
    status: str
    telemetryRetentionDays: int = Field(default=DEFAULT_RETENTION_DAYS, ge=1, le=3650)
    createdAt: Timestamp
    key: CallingKey
