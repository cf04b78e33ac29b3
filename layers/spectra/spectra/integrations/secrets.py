"""Integration secrets in AWS Secrets Manager: written, replaced and deleted, never read.

One secret per integration, named under the org's own path, encrypted with the platform key,
tagged with the org and the integration. Calls are made with the org's *integration-secrets*
credentials (a role assumed with the org as a session tag, whose policy reaches only
``spectra/{stage}/orgs/${aws:PrincipalTag/org}/*`` and has no way to read a value). Each
secret's resource policy refuses any call without TLS, and, once the VPC endpoint is
configured, any call that does not come through it (operators excepted, so a deleted secret
can still be recovered by hand).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from spectra.errors import SpectraError
from spectra.observability import logger, metrics
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext
from spectra.tenancy.sessions import OrgSessions

RECOVERY_WINDOW_DAYS = 30
DISCARD_WINDOW_DAYS = 7
"""A secret whose record was never written: the shortest window (no role may skip it)."""
CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"


class SecretStoreUnavailable(SpectraError):
    """Secrets Manager refused or failed: 503, nothing was stored; safe to retry."""

    status = 503
    code = "service_unavailable"
    title = "Service Unavailable"


@dataclass(frozen=True)
class StoredSecret:
    arn: str
    version_id: str


class IntegrationSecrets:
    def __init__(
        self,
        sessions: OrgSessions,
        *,
        stage: str,
        kms_key_id: str,
        vpc_endpoint_id: str = "",
        operator_role_arn: str = "",
        writer_role_arn: str = "",
    ) -> None:
        self._sessions = sessions
        self._writer_role_arn = writer_role_arn
        self._stage = stage
        self._kms_key_id = kms_key_id
        self._vpc_endpoint_id = vpc_endpoint_id
        self._operator_role_arn = operator_role_arn

    def create(self, org: OrgContext, integration_id: str, values: Mapping[str, str]) -> StoredSecret:
        """Store a new secret; if its policy cannot be attached, the secret is removed again."""
        client = self._client(org)
        with _store_errors():
            response = client.create_secret(
                Name=keys.integration_secret_name(org, self._stage, integration_id),
                Description="Spectra integration credentials (write-only through the API)",
                KmsKeyId=self._kms_key_id,
                SecretString=_encode(values),
                ClientRequestToken=str(uuid.uuid4()),
                Tags=[
                    {"Key": "org", "Value": org.org_id},
                    {"Key": "integration", "Value": integration_id},
                    {"Key": "spectra:data", "Value": "integration-secret"},
                ],
            )
        stored = StoredSecret(arn=str(response["ARN"]), version_id=str(response["VersionId"]))
        try:
            with _store_errors():
                client.put_resource_policy(SecretId=stored.arn, ResourcePolicy=json.dumps(self._policy()))
        except Exception:
            self.discard(org, stored.arn)
            raise
        return stored

    def stage(self, org: OrgContext, arn: str, values: Mapping[str, str]) -> str:
        """A new *pending* version holding exactly ``values`` (not yet used); returns its id.

        Rotation stages first and promotes only once the integration record names the new
        version, so a rotation that loses a race, or whose record fails, changes nothing.
        """
        with _store_errors():
            response = self._client(org).put_secret_value(
                SecretId=arn,
                SecretString=_encode(values),
                ClientRequestToken=str(uuid.uuid4()),
                VersionStages=[PENDING],
            )
        return str(response["VersionId"])

    def make_current(self, org: OrgContext, arn: str, version_id: str) -> None:
        """Move the current label to ``version_id`` (the version the record names)."""
        client = self._client(org)
        with _store_errors():
            stages = client.describe_secret(SecretId=arn).get("VersionIdsToStages", {})
            current = next((version for version, labels in stages.items() if CURRENT in labels), None)
            if current == version_id:
                return
            arguments = {"RemoveFromVersionId": current} if current else {}
            client.update_secret_version_stage(
                SecretId=arn, VersionStage=CURRENT, MoveToVersionId=version_id, **arguments
            )

    def drop_pending(self, org: OrgContext, arn: str, version_id: str) -> None:
        """Forget a staged version that will never be promoted (best effort: another rotation
        may already have taken the pending label)."""
        try:
            self._client(org).update_secret_version_stage(
                SecretId=arn, VersionStage=PENDING, RemoveFromVersionId=version_id
            )
        except (ClientError, BotoCoreError):
            logger.warning("A staged secret version kept its pending label")

    def schedule_deletion(self, org: OrgContext, arn: str) -> None:
        """Deleted after the recovery window; an operator can restore it until then."""
        with _store_errors():
            self._client(org).delete_secret(SecretId=arn, RecoveryWindowInDays=RECOVERY_WINDOW_DAYS)

    def discard(self, org: OrgContext, arn: str) -> None:
        """Remove a secret whose integration was never created. Even here the deletion waits out
        a (short) recovery window: the role may never delete without one."""
        try:
            self._client(org).delete_secret(SecretId=arn, RecoveryWindowInDays=DISCARD_WINDOW_DAYS)
        except (ClientError, BotoCoreError):
            logger.exception("A secret without an integration could not be discarded")
            metrics.add_metric(name="IntegrationSecretsLeftBehind", unit="Count", value=1)

    def _client(self, org: OrgContext) -> Any:
        return self._sessions.client(org, "secretsmanager")

    def _policy(self) -> dict[str, Any]:
        statements: list[dict[str, Any]] = []
        if self._writer_role_arn:
            # The role that writes secrets may never read one, whatever another policy says.
            statements.append(
                {
                    "Sid": "WriterNeverReads",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"],
                    "Resource": "*",
                    "Condition": {"ArnEquals": {"aws:PrincipalArn": self._writer_role_arn}},
                }
            )
        statements += [
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
        if self._vpc_endpoint_id:
            condition: dict[str, Any] = {"StringNotEquals": {"aws:SourceVpce": self._vpc_endpoint_id}}
            if self._operator_role_arn:
                condition["ArnNotLike"] = {"aws:PrincipalArn": self._operator_role_arn}
            statements.append(
                {
                    "Sid": "ThroughTheVpcEndpointOnly",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "secretsmanager:*",
                    "Resource": "*",
                    "Condition": condition,
                }
            )
        return {"Version": "2012-10-17", "Statement": statements}


@contextmanager
def _store_errors() -> Iterator[None]:
    """Secrets Manager's failures as a 503 that says nothing was stored (and no value)."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise SecretStoreUnavailable("The secret could not be stored; nothing was changed. Retry.") from error


def _encode(values: Mapping[str, str]) -> str:
    return json.dumps(dict(values), separators=(",", ":"), sort_keys=True)
