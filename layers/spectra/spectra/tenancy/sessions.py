"""Org-scoped AWS sessions: data access runs on credentials that can only reach one org's items.

``OrgSessions`` assumes the org data-access role with the org id as the ``org`` session tag. The
role's policy allows only items whose leading key is ``ORG#${aws:PrincipalTag/org}#…``, so even
a bug that builds another org's key is refused by DynamoDB itself. Credentials are cached per
org per container and renewed shortly before they expire.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from spectra.tenancy.context import OrgContext

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

SESSION_SECONDS = 3600
RENEW_BEFORE_SECONDS = 300
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10)


@dataclass
class _CachedSession:
    session: boto3.Session
    expires_at: float
    clients: dict[str, Any] = field(default_factory=dict)


class OrgSessions:
    """Hands out boto3 clients that act with one org's credentials only.

    ``role_arn`` is the shared org-scoped records role, or a function giving each org its own
    role (telemetry: one role per org, reaching only that org's table).
    """

    def __init__(
        self,
        role_arn: str | Callable[[OrgContext], str],
        *,
        sts_client: STSClient | None = None,
        session_seconds: int = SESSION_SECONDS,
        clock: Any = time.time,
    ) -> None:
        self._role_arn = role_arn
        self._sts = sts_client
        self._session_seconds = session_seconds
        self._clock = clock
        self._cache: dict[str, _CachedSession] = {}
        self._lock = threading.Lock()

    def client(self, org: OrgContext, service: str, *, config: Config = CLIENT_CONFIG) -> Any:
        """A client for ``service`` acting as ``org`` (created once per org per credentials and
        per ``config``: a caller with a tighter deadline passes its own)."""
        key = service if config is CLIENT_CONFIG else f"{service}#{id(config)}"
        with self._lock:
            cached = self._cached(org)
            if key not in cached.clients:
                make_client: Any = cached.session.client
                cached.clients[key] = make_client(service, config=config)
            return cached.clients[key]

    def clear(self) -> None:
        """Forget every cached credential (tests, and after a role change)."""
        with self._lock:
            self._cache.clear()

    def _cached(self, org: OrgContext) -> _CachedSession:
        cached = self._cache.get(org.org_id)
        if cached is not None and cached.expires_at - RENEW_BEFORE_SECONDS > self._clock():
            return cached
        if self._sts is None:
            self._sts = boto3.client("sts", config=CLIENT_CONFIG)
        role_arn = self._role_arn(org) if callable(self._role_arn) else self._role_arn
        response = self._sts.assume_role(
            RoleArn=role_arn,
            RoleSessionName=f"org-{org.org_id}"[:64],
            DurationSeconds=self._session_seconds,
            Tags=[{"Key": "org", "Value": org.org_id}],
        )
        credentials = response["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        cached = _CachedSession(session=session, expires_at=credentials["Expiration"].timestamp())
        self._cache[org.org_id] = cached
        return cached
