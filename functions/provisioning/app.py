"""Org lifecycle for operators (never reachable from the public API): the same code as ``spectra org``."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.config import get_settings
from spectra.errors import SpectraError
from spectra.observability import logger, metrics, tracer
from spectra.provisioning import ProvisioningCommand, build_provisioner

provisioner = build_provisioner(get_settings())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@event_parser(model=ProvisioningCommand)
def lambda_handler(event: ProvisioningCommand, context: LambdaContext) -> dict[str, Any]:
    try:
        result = provisioner.run(event.command)
    except SpectraError as error:
        return {"error": error.problem(request_id=context.aws_request_id, instance=None)}
    logger.info("Provisioning command done", action=event.command.action)
    return result
