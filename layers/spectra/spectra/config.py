"""Environment, read once and typed.

Every function reads its configuration from environment variables that ``template.yaml`` sets;
this module is the only place those names are spelled, so a typo fails at import, not mid-request.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache


class MissingSetting(RuntimeError):
    """An environment variable the function needs is not set (a deployment error)."""


def _required(name: str) -> str:
    value = os.environ.get(name, "")
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
    rest_api_id: str = ""
    max_body_bytes: int = 1_048_576

    @classmethod
    def from_environment(cls) -> Settings:
        """Read the settings the template gives every function."""
        return cls(
            records_table=_required("RECORDS_TABLE"),
            idempotency_table=_required("IDEMPOTENCY_TABLE"),
            org_data_role_arn=_required("ORG_DATA_ROLE_ARN"),
            api_key_pepper_secret_arn=_required("API_KEY_PEPPER_SECRET_ARN"),
            page_token_secret_arn=_required("PAGE_TOKEN_SECRET_ARN"),
            stage=os.environ.get("STAGE_NAME", "dev"),
            authorizer_cache_ttl_seconds=int(os.environ.get("AUTHORIZER_CACHE_TTL_SECONDS", "60")),
            usage_plan_ids=json.loads(os.environ.get("USAGE_PLAN_IDS", "{}") or "{}"),
            rest_api_id=os.environ.get("REST_API_ID", ""),
            max_body_bytes=int(os.environ.get("MAX_BODY_BYTES", "1048576")),
        )


@cache
def get_settings() -> Settings:
    """The process-wide settings (read on first use, then cached for the container's life)."""
    return Settings.from_environment()
