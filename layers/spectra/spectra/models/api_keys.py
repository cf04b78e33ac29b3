"""API key requests and responses (API.md "Keys and scopes")."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, field_validator

from spectra.auth.credentials import KeyType
from spectra.auth.network import InvalidCidr, normalise_cidrs
from spectra.auth.scopes import Action, InvalidResourceFilter, ResourceFilter, Scope
from spectra.models.common import Page, RequestModel, ResponseModel, Timestamp

KeyName = Annotated[str, Field(min_length=1, max_length=100)]
MAX_SCOPES = 50
MAX_CIDRS = 50
MAX_GRACE_SECONDS = 86_400


class KeyStatus(StrEnum):
    ACTIVE = "Active"
    EXPIRED = "Expired"
    REVOKED = "Revoked"


class ScopeModel(RequestModel):
    """One grant: an action on everything a resource filter covers."""

    action: Action
    resourceFilter: str = Field(default="", max_length=512, description="Empty or * = the whole org.")

    @field_validator("resourceFilter")
    @classmethod
    def _valid_filter(cls, value: str) -> str:
        try:
            return str(ResourceFilter.parse(value))
        except InvalidResourceFilter as error:
            raise ValueError(str(error)) from error

    def to_scope(self) -> Scope:
        return Scope.parse(self.action.value, self.resourceFilter)


def _cidrs(value: list[str]) -> list[str]:
    try:
        return normalise_cidrs(value)
    except InvalidCidr as error:
        raise ValueError(str(error)) from error


class CreateApiKeyRequest(RequestModel):
    name: KeyName
    type: KeyType = KeyType.EXTERNAL
    scopes: list[ScopeModel] = Field(min_length=1, max_length=MAX_SCOPES)
    allowedIpCidrs: list[str] = Field(default_factory=list, max_length=MAX_CIDRS)
    expiresAt: AwareDatetime | None = None

    _check_cidrs = field_validator("allowedIpCidrs")(_cidrs)


class UpdateApiKeyRequest(RequestModel):
    """Absent fields are unchanged; ``expiresAt: null`` removes the expiry."""

    name: KeyName | None = None
    scopes: list[ScopeModel] | None = Field(default=None, min_length=1, max_length=MAX_SCOPES)
    allowedIpCidrs: list[str] | None = Field(default=None, max_length=MAX_CIDRS)
    expiresAt: AwareDatetime | None = None

    @field_validator("allowedIpCidrs")
    @classmethod
    def _valid_cidrs(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _cidrs(value)


class RotateApiKeyRequest(RequestModel):
    graceSeconds: int = Field(
        default=3600,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="How long the previous secret keeps working (0 = stop at once).",
    )


class ScopeView(ResponseModel):
    action: str
    resourceFilter: str


class ApiKeyRecord(ResponseModel):
    keyId: str
    name: str
    type: KeyType
    scopes: list[ScopeView]
    allowedIpCidrs: list[str]
    expiresAt: Timestamp | None
    status: KeyStatus
    createdAt: Timestamp
    createdBy: str
    updatedAt: Timestamp
    updatedBy: str
    lastUsedAt: Timestamp | None = None
    revokedAt: Timestamp | None = None
    rotatedAt: Timestamp | None = None
    previousSecretValidUntil: Timestamp | None = None


class CreatedApiKey(ApiKeyRecord):
    key: str = Field(description="The full API key. Shown this once only: store it now.")


ApiKeyPage = Page[ApiKeyRecord]
