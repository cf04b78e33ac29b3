"""API key lifecycle: create, list, read, change, revoke, rotate — without privilege escalation.

Rules kept here:
- a key can never create, change or manage a key whose scopes reach beyond its own;
- only admin keys create admin keys; admin keys hold an ``admin`` (or ``*``) scope, external
  keys never do;
- the org's last active admin key cannot be revoked (checked under the key-set version, so two
  concurrent revocations cannot both pass);
- revocation is permanent; rotation keeps the old secret valid for a grace window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from spectra.auth.credentials import ApiKeyCredential, KeyType, hash_credential
from spectra.auth.network import cidrs_within
from spectra.auth.scopes import Action, Scope, scopes_contain
from spectra.errors import Conflict, FieldError, NotFound, ScopeDenied, ValidationFailed
from spectra.identifiers import is_guid, new_guid
from spectra.models.api_keys import (
    ApiKeyPage,
    ApiKeyRecord,
    CreateApiKeyRequest,
    CreatedApiKey,
    KeyStatus,
    RotateApiKeyRequest,
    UpdateApiKeyRequest,
)
from spectra.models.common import from_iso, to_iso, utc_now
from spectra.pagination import PageRequest, PageTokens
from spectra.repositories.api_keys import ACTIVE_STATE, REVOKED_STATE, ApiKeyRepository
from spectra.repositories.organizations import OrganizationRepository
from spectra.services.listing import list_page
from spectra.services.org_facts import org_facts
from spectra.tenancy.context import OrgContext

ADMIN_ACTIONS = frozenset({Action.ADMIN, Action.ALL})


def key_status(record: Mapping[str, Any], now: datetime) -> KeyStatus:
    """Revoked is permanent; otherwise a key past its ``expiresAt`` is Expired."""
    if record.get("state") == REVOKED_STATE:
        return KeyStatus.REVOKED
    expires_at = record.get("expiresAt")
    if expires_at and from_iso(str(expires_at)) <= now:
        return KeyStatus.EXPIRED
    return KeyStatus.ACTIVE


def record_scopes(record: Mapping[str, Any]) -> list[Scope]:
    return [Scope.parse(s["action"], s["resourceFilter"]) for s in record.get("scopes", [])]


def to_view(record: Mapping[str, Any], now: datetime) -> ApiKeyRecord:
    """The API's view of a stored key: never the hash, never the org's internal identifiers."""
    grace = record.get("previousSecretValidUntil")
    return ApiKeyRecord(
        keyId=record["keyId"],
        name=record["name"],
        type=KeyType(record["type"]),
        scopes=record.get("scopes", []),
        allowedIpCidrs=record.get("allowedIpCidrs", []),
        expiresAt=record.get("expiresAt"),
        status=key_status(record, now),
        createdAt=record["createdAt"],
        createdBy=record["createdBy"],
        updatedAt=record["updatedAt"],
        updatedBy=record["updatedBy"],
        lastUsedAt=record.get("lastUsedAt"),
        revokedAt=record.get("revokedAt"),
        rotatedAt=record.get("rotatedAt"),
        previousSecretValidUntil=to_iso(datetime.fromtimestamp(int(grace), now.tzinfo)) if grace else None,
    )


def new_key_record(
    org: OrgContext,
    credential: ApiKeyCredential,
    *,
    pepper: bytes,
    name: str,
    scopes: list[Scope],
    allowed_ip_cidrs: list[str],
    expires_at: datetime | None,
    org_profile: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """A key record ready to store: the keyed hash of the secret, and the org facts the
    authorizer needs so one read answers everything."""
    stamp = to_iso(now)
    return {
        "entity": "ApiKey",
        "keyId": credential.key_id,
        "orgId": org.org_id,
        "name": name,
        "type": credential.key_type.value,
        "scopes": [scope.as_dict() for scope in scopes],
        "allowedIpCidrs": allowed_ip_cidrs,
        "expiresAt": to_iso(expires_at) if expires_at else None,
        "state": ACTIVE_STATE,
        "secretHash": hash_credential(pepper, credential),
        "createdAt": stamp,
        "createdBy": org.actor,
        "updatedAt": stamp,
        "updatedBy": org.actor,
        **org_facts(org_profile),
    }


class ApiKeyService:
    """The rules of ``/api-keys``; routes call one method each."""

    def __init__(
        self,
        keys: ApiKeyRepository,
        organizations: OrganizationRepository,
        *,
        pepper: Callable[[], bytes],
        page_tokens: PageTokens,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._keys = keys
        self._organizations = organizations
        self._pepper = pepper
        self._page_tokens = page_tokens
        self._clock = clock

    # -- reads ------------------------------------------------------------------------------

    def get(self, org: OrgContext, key_id: str) -> ApiKeyRecord:
        return to_view(self._load(org, key_id), self._clock())

    def list_keys(
        self, org: OrgContext, *, status: KeyStatus | None, name: str | None, page: PageRequest
    ) -> ApiKeyPage:
        now = self._clock()
        needle = name.casefold() if name else None

        def wanted(record: dict[str, Any]) -> bool:
            if status is not None and key_status(record, now) != status:
                return False
            return needle is None or needle in str(record.get("name", "")).casefold()

        listed = list_page(
            org,
            self._page_tokens,
            route="api-keys",
            filters={"status": status, "name": needle},
            page=page,
            query=self._keys.page,
            keep=wanted,
        )
        return listed.to(ApiKeyPage, lambda record: to_view(record, now))

    # -- writes -----------------------------------------------------------------------------

    def create(self, org: OrgContext, request: CreateApiKeyRequest) -> CreatedApiKey:
        now = self._clock()
        scopes = [scope.to_scope() for scope in request.scopes]
        self._check_grant(org, request.type, scopes)
        expires_at = self._future(request.expiresAt, now)
        self._check_limits(org, request.allowedIpCidrs, expires_at)
        profile = self._organizations.get(org)
        if profile is None:
            raise NotFound("No such organization.")
        credential = ApiKeyCredential.generate(request.type, new_guid())
        record = new_key_record(
            org,
            credential,
            pepper=self._pepper(),
            name=request.name,
            scopes=scopes,
            allowed_ip_cidrs=request.allowedIpCidrs,
            expires_at=expires_at,
            org_profile=profile,
            now=now,
        )
        self._keys.insert(org, record, seen_version=self._keys.key_set_version(org))
        return CreatedApiKey(**to_view(record, now).model_dump(), key=credential.reveal())

    def update(self, org: OrgContext, key_id: str, request: UpdateApiKeyRequest) -> ApiKeyRecord:
        now = self._clock()
        record = self._load_manageable(org, key_id)
        changes: dict[str, Any] = {}
        removals: list[str] = []
        sent = request.model_fields_set
        if "name" in sent:
            if request.name is None:
                raise ValidationFailed.single("name", "name cannot be null")
            changes["name"] = request.name
        if "scopes" in sent:
            if request.scopes is None:
                raise ValidationFailed.single("scopes", "scopes cannot be null")
            scopes = [scope.to_scope() for scope in request.scopes]
            self._check_grant(org, KeyType(record["type"]), scopes)
            changes["scopes"] = [scope.as_dict() for scope in scopes]
        if "allowedIpCidrs" in sent:
            changes["allowedIpCidrs"] = request.allowedIpCidrs or []
        if "expiresAt" in sent:
            if request.expiresAt is None:
                removals.append("expiresAt")
            else:
                changes["expiresAt"] = to_iso(self._future(request.expiresAt, now) or now)
        if "expiresAt" in removals:
            resulting_expiry = None
        elif "expiresAt" in changes:
            resulting_expiry = from_iso(str(changes["expiresAt"]))
        else:
            resulting_expiry = from_iso(str(record["expiresAt"])) if record.get("expiresAt") else None
        self._check_limits(org, changes.get("allowedIpCidrs", record.get("allowedIpCidrs") or []), resulting_expiry)
        if not changes and not removals:
            return to_view(record, now)
        changes.update({"updatedAt": to_iso(now), "updatedBy": org.actor})
        updated = self._keys.update(org, key_id, set_fields=changes, remove_fields=tuple(removals))
        return to_view(updated, now)

    def revoke(self, org: OrgContext, key_id: str) -> ApiKeyRecord:
        now = self._clock()
        record = self._load_manageable(org, key_id)
        if record.get("state") == REVOKED_STATE:
            return to_view(record, now)
        seen_version = self._keys.key_set_version(org)
        if record["type"] == KeyType.ADMIN.value and key_status(record, now) == KeyStatus.ACTIVE:
            others = [
                other
                for other in self._keys.all(org)
                if other["keyId"] != key_id
                and other["type"] == KeyType.ADMIN.value
                and key_status(other, now) == KeyStatus.ACTIVE
            ]
            if not others:
                raise Conflict("This is the organization's last active admin key; create another admin key first.")
        stamp = to_iso(now)
        updated = self._keys.update(
            org,
            key_id,
            set_fields={"state": REVOKED_STATE, "revokedAt": stamp, "updatedAt": stamp, "updatedBy": org.actor},
            remove_fields=("previousSecretHash", "previousSecretValidUntil"),
            seen_version=seen_version,
        )
        return to_view(updated, now)

    def rotate(self, org: OrgContext, key_id: str, request: RotateApiKeyRequest) -> CreatedApiKey:
        now = self._clock()
        record = self._load_manageable(org, key_id)
        status = key_status(record, now)
        if status != KeyStatus.ACTIVE:
            raise Conflict(f"Only active keys can be rotated; this key is {status.value}.")
        credential = ApiKeyCredential.generate(KeyType(record["type"]), key_id)
        stamp = to_iso(now)
        changes: dict[str, Any] = {
            "secretHash": hash_credential(self._pepper(), credential),
            "rotatedAt": stamp,
            "updatedAt": stamp,
            "updatedBy": org.actor,
        }
        removals: tuple[str, ...] = ()
        if request.graceSeconds > 0:
            changes["previousSecretHash"] = record["secretHash"]
            changes["previousSecretValidUntil"] = int((now + timedelta(seconds=request.graceSeconds)).timestamp())
        else:
            removals = ("previousSecretHash", "previousSecretValidUntil")
        updated = self._keys.update(org, key_id, set_fields=changes, remove_fields=removals)
        return CreatedApiKey(**to_view(updated, now).model_dump(), key=credential.reveal())

    # -- rules ------------------------------------------------------------------------------

    def _load(self, org: OrgContext, key_id: str) -> dict[str, Any]:
        record = self._keys.get(org, key_id) if is_guid(key_id) else None
        if record is None:
            raise NotFound("No such API key.")
        return record

    def _load_manageable(self, org: OrgContext, key_id: str) -> dict[str, Any]:
        """A key the caller may change: its scopes must all be within the caller's."""
        record = self._load(org, key_id)
        if record["type"] == KeyType.ADMIN.value and org.key_type != KeyType.ADMIN:
            raise ScopeDenied("Only admin keys can manage admin keys.")
        if scopes_contain(org.scopes, record_scopes(record)):
            raise ScopeDenied("This key's scopes do not cover the key it tries to manage.")
        expiry = record.get("expiresAt")
        try:
            self._check_limits(org, record.get("allowedIpCidrs") or [], from_iso(str(expiry)) if expiry else None)
        except ValidationFailed as failed:
            raise ScopeDenied(
                "This key's network or expiry limits do not cover the key it tries to manage."
            ) from failed
        return record

    @staticmethod
    def _check_grant(org: OrgContext, key_type: KeyType, scopes: list[Scope]) -> None:
        if key_type == KeyType.ADMIN and org.key_type != KeyType.ADMIN:
            raise ScopeDenied("Only admin keys can create admin keys.")
        holds_admin = any(scope.action in ADMIN_ACTIONS for scope in scopes)
        if key_type == KeyType.ADMIN and not holds_admin:
            raise ValidationFailed.single("scopes", "an admin key needs at least one 'admin' or '*' scope")
        if key_type == KeyType.EXTERNAL and holds_admin:
            raise ValidationFailed.single("scopes", "external keys cannot hold 'admin' or '*' scopes")
        beyond = scopes_contain(org.scopes, scopes)
        if beyond:
            shown = ", ".join(f"{s.action.value}:{str(s.resource_filter) or '*'}" for s in beyond)
            raise ScopeDenied(f"A key cannot grant more than it holds; not within this key's scopes: {shown}.")

    @staticmethod
    def _check_limits(org: OrgContext, cidrs: list[str], expires_at: datetime | None) -> None:
        """A key never grants more than its creator has: no wider networks, no later expiry."""
        problems = []
        outside = cidrs_within(cidrs, org.allowed_ip_cidrs)
        if outside:
            problems.append(
                FieldError(
                    "allowedIpCidrs", f"must lie within the calling key's allowed networks: {', '.join(outside)}"
                )
            )
        if org.expires_at and (expires_at is None or expires_at > from_iso(org.expires_at)):
            problems.append(FieldError("expiresAt", f"must be on or before the calling key's expiry {org.expires_at}"))
        if problems:
            raise ValidationFailed(problems)

    @staticmethod
    def _future(moment: datetime | None, now: datetime) -> datetime | None:
        if moment is not None and moment <= now:
            raise ValidationFailed.single("expiresAt", "must be in the future")
        return moment
