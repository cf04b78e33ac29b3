"""Environment, read once and typed.

Every function reads its configuration from environment variables that ``template.yaml`` sets;
this module is the only place those names are spelled, so a typo fails at import, not mid-request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache


class MissingSetting(RuntimeError):
    """An environment variable the function needs is not set (a deployment error)."""


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise MissingSetting(f"environment variable {name} is not set")
    return value


@dataclass(frozen=True)
class Settings:
    """What a Spectra function needs to know about its deployment."""

    records_table: str
    idempotency_table: str
    org_data_role_arn: str
    api_key_pepper_secret_arn: str
    page_token_secret_arn: str
    stage: str = "dev"
    authorizer_cache_ttl_seconds: int = 60
    usage_plan_ids: dict[str, str] = field(default_factory=dict)
    max_body_bytes: int = 1_048_576
    thing_events_queue_url: str = ""
    telemetry_table_prefix: str = ""
    org_role_prefix: str = ""
    org_role_boundary_arn: str = ""
    org_role_trusted_principals: tuple[str, ...] = ()
    platform_key_arn: str = ""
    platform_key_alias: str = ""
    """The alias every region's stack gives its platform key: it names the key of a replica's region."""
    replica_regions: tuple[str, ...] = ()
    """Other regions holding replicas of the operational tables and of each org's telemetry table."""
    org_role_arn_prefix: str = ""
    integration_secrets_role_arn: str = ""
    """The role whose org-tagged sessions write (never read) the org's integration secrets."""
    secrets_vpc_endpoint_id: str = ""
    operator_role_arn: str = ""
    retention_pass_hour_utc: int = 0
    """The hour (UTC) at which each day's retention pass begins (the daily schedule's hour)."""
    audit_table: str = ""
    """Every org's audit chain (append-only)."""
    audit_retention_days: int = 400
    """How long audit events are kept (then DynamoDB's TTL removes them; no role can delete)."""
    rate_limit_table: str = ""
    """The per-org token buckets (every API function takes a token per request)."""
    usage_identifier_queue_url: str = ""
    """Requests to create or move orgs' usage identifiers, served at a pace API Gateway allows."""
    control_plane_calls_per_second: float = 2.0
    """The most API Gateway management calls the usage identifier worker makes per second."""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings the template gives every function (from ``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        return cls(
            records_table=_required(env, "RECORDS_TABLE"),
            idempotency_table=_required(env, "IDEMPOTENCY_TABLE"),
            org_data_role_arn=_required(env, "ORG_DATA_ROLE_ARN"),
            api_key_pepper_secret_arn=_required(env, "API_KEY_PEPPER_SECRET_ARN"),
            page_token_secret_arn=_required(env, "PAGE_TOKEN_SECRET_ARN"),
            stage=env.get("STAGE_NAME", "dev"),
            authorizer_cache_ttl_seconds=int(env.get("AUTHORIZER_CACHE_TTL_SECONDS", "60")),
            usage_plan_ids=json.loads(env.get("USAGE_PLAN_IDS", "{}") or "{}"),
            max_body_bytes=int(env.get("MAX_BODY_BYTES", "1048576")),
            thing_events_queue_url=env.get("THING_EVENTS_QUEUE_URL", ""),
            telemetry_table_prefix=env.get("TELEMETRY_TABLE_PREFIX", ""),
            org_role_prefix=env.get("ORG_ROLE_PREFIX", ""),
            org_role_boundary_arn=env.get("ORG_ROLE_BOUNDARY_ARN", ""),
            org_role_trusted_principals=tuple(json.loads(env.get("ORG_ROLE_TRUSTED_PRINCIPALS", "[]") or "[]")),
            platform_key_arn=env.get("PLATFORM_KEY_ARN", ""),
            platform_key_alias=env.get("PLATFORM_KEY_ALIAS", ""),
            replica_regions=tuple(region for region in env.get("REPLICA_REGIONS", "").split(",") if region),
            org_role_arn_prefix=env.get("ORG_ROLE_ARN_PREFIX", ""),
            retention_pass_hour_utc=int(env.get("RETENTION_PASS_HOUR_UTC", "0")),
            integration_secrets_role_arn=env.get("INTEGRATION_SECRETS_ROLE_ARN", ""),
            secrets_vpc_endpoint_id=env.get("SECRETS_VPC_ENDPOINT_ID", ""),
            operator_role_arn=env.get("OPERATOR_ROLE_ARN", ""),
            audit_table=env.get("AUDIT_TABLE", ""),
            audit_retention_days=int(env.get("AUDIT_RETENTION_DAYS", "400")),
            rate_limit_table=env.get("RATE_LIMIT_TABLE", ""),
            usage_identifier_queue_url=env.get("USAGE_IDENTIFIER_QUEUE_URL", ""),
            control_plane_calls_per_second=float(env.get("CONTROL_PLANE_CALLS_PER_SECOND", "2")),
        )


@cache
def get_settings() -> Settings:
    """The process-wide settings (read on first use, then cached for the container's life)."""
    return Settings.from_environment()
