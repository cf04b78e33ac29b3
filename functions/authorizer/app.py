"""REQUEST authorizer: ``X-Api-Key`` → org, key id, scopes and plan (or 401 / 403)."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.auth.authorizer import CredentialIndex, KeyAuthorizer
from spectra.config import get_settings
from spectra.deployment import api_key_pepper, api_key_repository, audit_trail
from spectra.errors import Unauthorized
from spectra.observability import logger, metrics, tracer

settings = get_settings()
dynamodb = boto3.client("dynamodb")
authorizer = KeyAuthorizer(
    find_credential=CredentialIndex(dynamodb, settings.records_table).find,
    pepper=api_key_pepper,
    record_use=api_key_repository().record_use,
    audit=audit_trail(),
    ttl_seconds=settings.authorizer_cache_ttl_seconds,
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return authorizer.authorize(event)
    except Unauthorized as denied:
        logger.info("Request not authorized", reason=denied.detail)
        # API Gateway turns exactly this message into a 401 (the UNAUTHORIZED gateway response).
        raise Exception("Unauthorized") from None
