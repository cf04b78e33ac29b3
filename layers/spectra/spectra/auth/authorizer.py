"""The Lambda authorizer's decision: a presented key becomes an org, a key id and its scopes.

- One store read per key on a cold cache (a Query on the ``credentials`` index, which returns
  the key record with the org facts copied onto it), none on a warm container within the TTL.
- The presented secret is checked against the stored keyed hash in constant time; during a
  rotation grace window the previous hash is accepted too.
- Unknown, malformed, revoked or expired keys and suspended orgs raise ``Unauthorized`` (API
  Gateway answers 401); a source IP outside the key's allow-list gets an explicit Deny (403).
  When the key id is a real key of some org (a wrong secret, a revoked, expired or suspended
  key, a disallowed IP), that org's audit log records the refused attempt.
- An Allow covers every route of the stage, so a cached policy never mixes routes up.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from botocore.exceptions import ClientError

from spectra.audit.chain import AuditRecord
from spectra.audit.trail import AuditTrail
from spectra.auth.credentials import ApiKeyCredential, KeyType, MalformedKey, credential_matches
from spectra.auth.network import ip_allowed
from spectra.errors import Unauthorized
from spectra.models.common import from_iso, to_iso
from spectra.observability import logger, metrics
from spectra.ratelimits.plans import DEFAULT_PLAN
from spectra.repositories.dynamo import from_item, to_values
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext

API_KEY_HEADER = "X-Api-Key"
MAX_CACHED_KEYS = 10_000
REFRESH_AFTER_MISMATCH_SECONDS = 1.0
AUTHENTICATE_ACTION = "apiKey.authenticate"
AUDITED_REFUSALS_PER_MINUTE = 60
"""Per key id and container: a flood of forged secrets for a known key id must not become a
flood of audit writes contending with the org's real changes (the excess is logged and counted)."""
REFUSALS_NOT_AUDITED_METRIC = "AuditRefusalsNotRecorded"


class CredentialIndex:
    """Finds a key record by key id: the authorizer's only read (its role allows nothing else)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def find(self, key_id: str) -> dict[str, Any] | None:
        response = self._client.query(
            TableName=self._table,
            IndexName="credentials",
            KeyConditionExpression="credentialId = :credential",
            ExpressionAttributeValues=to_values({":credential": keys.credential_index_value(key_id)}),
            Limit=2,
        )
        items = response.get("Items", [])
        if len(items) != 1:
            if items:
                logger.error("Credential index holds more than one record for a key id")
            return None
        return from_item(items[0])


@dataclass
class _Cached:
    record: dict[str, Any] | None
    fetched_at: float
    use_recorded_at: float = 0.0
    refreshed_on_mismatch_at: float = float("-inf")


class KeyAuthorizer:
    """Decides one authorizer request; keeps a per-container cache of key records."""

    def __init__(
        self,
        *,
        find_credential: Callable[[str], dict[str, Any] | None],
        pepper: Callable[[], bytes],
        record_use: Callable[[OrgContext, str, str], None] | None = None,
        audit: AuditTrail | None = None,
        ttl_seconds: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._find_credential = find_credential
        self._pepper = pepper
        self._record_use = record_use
        self._audit = audit
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._refusals: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def authorize(self, raw_event: Mapping[str, Any]) -> dict[str, Any]:
        """The authorizer response for an API Gateway REQUEST event (raises ``Unauthorized``)."""
        event = APIGatewayAuthorizerRequestEvent(dict(raw_event))
        presented = event.headers.get(API_KEY_HEADER) or ""
        if not presented:
            raise Unauthorized("Missing X-Api-Key header.")
        try:
            credential = ApiKeyCredential.parse(presented)
        except MalformedKey as error:
            raise Unauthorized("Malformed API key.") from error

        cached = self._lookup(credential.key_id)
        now = self._clock()
        mismatch = cached.record is not None and not self._secret_matches(credential, cached.record, now)
        if mismatch and now - cached.refreshed_on_mismatch_at >= REFRESH_AFTER_MISMATCH_SECONDS:
            # The key may have been rotated since its record was cached: read it once more, but
            # at most once a second per key, so guessing secrets cannot drive store reads.
            cached = self._refresh(credential.key_id, now)
        record = cached.record
        if record is None:
            raise Unauthorized("Unknown API key.")
        refusal = self._refusal(credential, record, now)
        if refusal is not None:
            # The key id is one of an org's keys: the org's audit log records the attempt.
            self._record_denial(event, record, credential.key_id)
            raise Unauthorized(refusal)

        arn = event.parsed_arn
        response = APIGatewayAuthorizerResponse(
            principal_id=credential.key_id,
            region=arn.region,
            aws_account_id=arn.aws_account_id,
            api_id=arn.api_id,
            stage=arn.stage,
            partition=arn.partition,
            context={
                "orgId": record["orgId"],
                "keyId": credential.key_id,
                "keyType": record["type"],
                "scopes": json.dumps(record.get("scopes", []), separators=(",", ":")),
                "plan": record.get("plan", DEFAULT_PLAN),
                # The org's per-tier rate limits, so the middleware's bucket needs no read.
                "limitOverrides": json.dumps(record.get("limitOverrides") or {}, separators=(",", ":")),
                # The key's own limits travel with it, so it cannot mint or widen a key beyond them.
                "allowedIpCidrs": json.dumps(record.get("allowedIpCidrs") or [], separators=(",", ":")),
                "expiresAt": str(record.get("expiresAt") or ""),
            },
            usage_identifier_key=record.get("usageIdentifierKey"),
        )
        source_ip = event.request_context.identity.source_ip
        if not ip_allowed(source_ip, record.get("allowedIpCidrs") or []):
            logger.info("API key used from outside its allowed networks", key_id=credential.key_id)
            self._record_denial(event, record, credential.key_id)
            response.deny_all_routes()
            return response.asdict()
        response.allow_all_routes()
        self._note_use(cached, record, credential.key_id, now)
        return response.asdict()

    def _refusal(self, credential: ApiKeyCredential, record: Mapping[str, Any], now: float) -> str | None:
        """Why a known key id may not be used now (``None``: it may)."""
        if not self._secret_matches(credential, record, now):
            return "Unknown API key."
        if record.get("state") != "Active" or record.get("orgStatus", "Active") != "Active":
            return "The API key is not active."
        expires_at = record.get("expiresAt")
        if expires_at and from_iso(str(expires_at)).timestamp() <= now:
            return "The API key has expired."
        if KeyType(record["type"]) != credential.key_type:
            return "Unknown API key."
        return None

    def _record_denial(self, event: APIGatewayAuthorizerRequestEvent, record: Mapping[str, Any], key_id: str) -> None:
        if self._audit is None:
            return
        if not self._refusal_budget(key_id):
            logger.info("Refused key not recorded in the audit log: over the per-minute budget", key_id=key_id)
            metrics.add_metric(name=REFUSALS_NOT_AUDITED_METRIC, unit=MetricUnit.Count, value=1)
            return
        request_context = event.raw_event.get("requestContext") or {}
        request_id = str(request_context.get("requestId") or "")
        source_ip = str((request_context.get("identity") or {}).get("sourceIp") or "")
        org = OrgContext(
            org_id=str(record["orgId"]),
            key_id=key_id,
            key_type=KeyType(record["type"]),
            scopes=(),
            request_id=request_id,
            source_ip=source_ip,
        )
        self._audit.record(
            org,
            AuditRecord(
                action=AUTHENTICATE_ACTION,
                resource_type="apiKey",
                resource_id=key_id,
                outcome="denied",
                actor_key_id=key_id,
                request_id=request_id,
                source_ip=source_ip,
            ),
        )

    def _refusal_budget(self, key_id: str) -> bool:
        """Whether this refusal of ``key_id`` may still be recorded in the current minute."""
        minute = int(self._clock() // 60)
        with self._lock:
            seen_minute, count = self._refusals.get(key_id, (minute, 0))
            count = count + 1 if seen_minute == minute else 1
            self._refusals[key_id] = (minute, count)
            self._refusals.move_to_end(key_id)
            while len(self._refusals) > MAX_CACHED_KEYS:
                self._refusals.popitem(last=False)
        return count <= AUDITED_REFUSALS_PER_MINUTE

    def _refresh(self, key_id: str, now: float) -> _Cached:
        fresh = _Cached(record=self._find_credential(key_id), fetched_at=now, refreshed_on_mismatch_at=now)
        with self._lock:
            self._cache[key_id] = fresh
        return fresh

    def _lookup(self, key_id: str) -> _Cached:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key_id)
            if cached is not None and now - cached.fetched_at < self._ttl_seconds:
                self._cache.move_to_end(key_id)
                return cached
        fresh = _Cached(record=self._find_credential(key_id), fetched_at=now)
        with self._lock:
            self._cache[key_id] = fresh
            while len(self._cache) > MAX_CACHED_KEYS:
                self._cache.popitem(last=False)
        return fresh

    def _secret_matches(self, credential: ApiKeyCredential, record: Mapping[str, Any], now: float) -> bool:
        pepper = self._pepper()
        if credential_matches(pepper, credential, str(record.get("secretHash", ""))):
            return True
        previous = record.get("previousSecretHash")
        valid_until = record.get("previousSecretValidUntil")
        return bool(
            previous and valid_until and now < float(valid_until) and credential_matches(pepper, credential, previous)
        )

    def _note_use(self, cached: _Cached, record: Mapping[str, Any], key_id: str, now: float) -> None:
        """Record ``lastUsedAt`` at most once per key per cache period (never fails the request)."""
        if self._record_use is None or now - cached.use_recorded_at < self._ttl_seconds:
            return
        cached.use_recorded_at = now
        try:
            org = OrgContext.for_operator(str(record["orgId"]), actor="authorizer")
            self._record_use(org, key_id, to_iso(datetime.fromtimestamp(now, UTC)))
        except ClientError as error:
            logger.warning("Could not record key use", error_code=error.response.get("Error", {}).get("Code"))
