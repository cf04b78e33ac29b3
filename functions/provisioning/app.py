"""Org lifecycle for operators (never reachable from the public API): the same code as ``spectra org``."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from spectra.config import get_settings
from spectra.errors import FieldError, SpectraError, ValidationFailed
from spectra.observability import logger, metrics, tracer
from spectra.provisioning import ProvisioningCommand, build_provisioner

provisioner = build_provisioner(get_settings())


def parse_command(event: dict[str, Any]) -> ProvisioningCommand:
    """The operator's command, or ``ValidationFailed`` listing every problem."""
    try:
        return ProvisioningCommand.model_validate(event)
    except ValidationError as error:
        # loc is ("command", <action>, field...): name the field as the operator wrote it.
        problems = [FieldError(".".join(str(p) for p in e["loc"][2:]) or "command", e["msg"]) for e in error.errors()]
        raise ValidationFailed(problems) from None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        command = parse_command(event)
        result = provisioner.run(command.command)
    except SpectraError as error:
        return {"error": error.problem(request_id=context.aws_request_id, instance=None)}
    logger.info("Provisioning command done", action=command.command.action)
    return result
