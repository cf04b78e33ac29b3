"""Usage identifiers: each org's API Gateway key, created and moved at a pace AWS allows.

Provisioning queues an org id whenever the org is created, changes plan, is suspended, resumed
or deleted, in a FIFO group per org; this function (two instances at most) reconciles the org's
identifier with its profile, spacing its API Gateway calls to ``CONTROL_PLANE_CALLS_PER_SECOND``.
A failed message is retried by SQS (partial batch response), then dead-lettered with an alarm.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from spectra.config import get_settings
from spectra.deployment import api_key_repository, organization_repository
from spectra.observability import logger, metrics, tracer
from spectra.ratelimits.identifiers import ControlPlanePacer, UsageIdentifiers
from spectra.services.org_facts import OrgFacts

settings = get_settings()
# Throttling by API Gateway is retried with backoff on top of the pacing.
apigateway = boto3.client("apigateway", config=Config(retries={"mode": "adaptive", "max_attempts": 8}))
identifiers = UsageIdentifiers(
    apigateway,
    settings.usage_plan_ids,
    organization_repository(),
    OrgFacts(organization_repository(), api_key_repository()),
    ControlPlanePacer(settings.control_plane_calls_per_second),
)
# FIFO: after a failed message the rest of the batch is returned unprocessed, to keep each org's order.
processor = SqsFifoPartialProcessor()


@tracer.capture_method
def reconcile(record: SQSRecord) -> dict[str, Any]:
    org_id = str(json.loads(record.body)["orgId"])
    result = identifiers.reconcile(org_id)
    logger.info("Usage identifier reconciled", org_id=org_id, done=result["done"])
    return result


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=reconcile, processor=processor, context=context)
