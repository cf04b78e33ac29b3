"""Platform secrets (the API key pepper, the page-token signing key), read through Powertools.

Both live in Secrets Manager, encrypted with the platform KMS key, and are cached in memory for
a few minutes so a warm container does not call Secrets Manager on every request.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

SECRET_CACHE_SECONDS = 300


def platform_secret(secret_arn: str) -> bytes:
    """The secret's bytes (cached for ``SECRET_CACHE_SECONDS``)."""
    value = parameters.get_secret(secret_arn, max_age=SECRET_CACHE_SECONDS)
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
